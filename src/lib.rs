//! AllHands: a self-hosted customer-service system in which every employee can answer customers.
//! See docs/ARCHITECTURE.md for the map of modules and how a request travels through them.

pub mod assist;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod collaboration;
pub mod config;
pub mod control;
pub mod conversations;
pub mod customers;
pub mod error;
pub mod healthcheck;
pub mod http;
pub mod knowledge;
pub mod ops;
pub mod org;
pub mod routing;
pub mod secrets;
pub mod server;
pub mod state;
pub mod storage;
pub mod systemd;
pub mod telemetry;
pub mod text;
pub mod web_assets;
