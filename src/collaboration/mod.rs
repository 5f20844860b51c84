//! Collaboration: live updates to employees' consoles over one authenticated WebSocket.
//! Events are published only after the change they describe has committed.

pub mod hub;
pub mod mentions;
