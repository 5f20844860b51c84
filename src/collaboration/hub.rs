//! The live-update hub: who is connected, and which events each may see.
//!
//! Every console connection registers with the caller it authenticated as; an event about a
//! conversation goes to the connections whose caller may see that conversation. Each connection
//! has a bounded queue: a console that cannot keep up is disconnected (it reconnects and
//! refetches) rather than letting memory grow.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::auth::Caller;
use crate::conversations::service::visible_to;
use crate::conversations::{Conversation, Message};

/// Events queued per connection before it counts as stuck.
const QUEUE: usize = 256;

/// What the console is told. The JSON form (`type` + fields) is the WebSocket protocol.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "conversation.updated")]
    ConversationUpdated { conversation: Conversation },
    #[serde(rename = "message.created")]
    MessageCreated {
        conversation: Conversation,
        message: Message,
    },
    /// A message's delivery state changed.
    #[serde(rename = "message.updated")]
    MessageUpdated {
        conversation: Conversation,
        message: Message,
    },
}

impl Event {
    fn conversation(&self) -> &Conversation {
        match self {
            Event::ConversationUpdated { conversation }
            | Event::MessageCreated { conversation, .. }
            | Event::MessageUpdated { conversation, .. } => conversation,
        }
    }
}

struct Connection {
    caller: Caller,
    queue: mpsc::Sender<String>,
}

#[derive(Default)]
pub struct Hub {
    connections: Mutex<HashMap<u64, Connection>>,
    next_id: AtomicU64,
}

/// Unregisters its connection when dropped, however the connection ends.
pub struct Registration<'a> {
    hub: &'a Hub,
    pub id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Ok(mut connections) = self.hub.connections.lock() {
            connections.remove(&self.id);
        }
    }
}

impl Hub {
    pub fn register(&self, caller: Caller) -> (Registration<'_>, mpsc::Receiver<String>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut connections) = self.connections.lock() {
            connections.insert(id, Connection { caller, queue });
        }
        (Registration { hub: self, id }, receiver)
    }

    /// Replaces a connection's caller (after its grants or department changed).
    pub fn update_caller(&self, id: u64, caller: Caller) {
        if let Ok(mut connections) = self.connections.lock()
            && let Some(connection) = connections.get_mut(&id)
        {
            connection.caller = caller;
        }
    }

    /// Lets every connection go (at shutdown): each closes its socket instead of holding the
    /// server's graceful stop until its timeout.
    pub fn close_all(&self) {
        if let Ok(mut connections) = self.connections.lock() {
            connections.clear();
        }
    }

    pub fn connected(&self) -> usize {
        self.connections.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Sends the event to every connection allowed to see it. Never blocks.
    pub fn publish(&self, event: &Event) {
        let Ok(text) = serde_json::to_string(event) else {
            return;
        };
        let Ok(mut connections) = self.connections.lock() else {
            return;
        };
        connections.retain(|_, connection| {
            if !visible_to(&connection.caller, event.conversation()) {
                return true;
            }
            match connection.queue.try_send(text.clone()) {
                Ok(()) => true,
                // Full: the console is not reading; closed: it is gone. Drop it either way.
                Err(_) => false,
            }
        });
    }
}
