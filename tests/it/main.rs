//! The one integration-test binary: each module drives the real server over HTTPS.

mod common;

mod accounts;
mod assist;
mod browser;
mod browser_assist;
mod browser_collab;
mod browser_inbox;
mod browser_knowledge;
mod browser_llm;
mod browser_routing;
mod browser_routing_experiments;
mod browser_routing_lanes;
mod browser_routing_shifts;
mod browser_support;
mod browser_widget;
mod cli;
mod email;
mod errors;
mod inbox;
mod knowledge;
mod live;
mod llm;
mod matrix;
mod routing;
mod security;
mod store;
mod systemd;
mod tls;
mod upgrade;
mod webhooks;
mod widget;
