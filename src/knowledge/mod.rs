//! The knowledge base: articles, the graph of what they are about, and the search that finds
//! the answer to a customer's question in Chinese or English.

mod analysis;
pub mod eval;
pub mod graph;
mod matcher;
pub mod passage;
pub mod search;
pub mod synonyms;
