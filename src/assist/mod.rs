//! Help for the employee while they answer: sensitive words in what is written either way.

pub mod alerts;
pub mod dictionary;
pub mod emotion;
pub mod ops;
pub mod sensitive;
pub mod suggest;
