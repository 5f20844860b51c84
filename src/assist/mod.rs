//! Help for the employee while they answer: sensitive words in what is written either way,
//! suggestions, and drafts from the organisation's own model server when one is configured.

pub mod alerts;
pub mod dictionary;
pub mod draft;
pub mod emotion;
pub mod llm;
pub mod ops;
pub mod sensitive;
pub mod suggest;
