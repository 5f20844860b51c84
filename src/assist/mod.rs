//! Help for the employee while they answer: sensitive words in what is written either way.

pub mod sensitive;
