//! The live-update hub: who is connected, and which events each may see.
//!
//! Every console connection registers with the caller it authenticated as; an event about a
//! conversation goes to the connections whose caller may see that conversation. Each connection
//! has a bounded queue: a console that cannot keep up is disconnected (it reconnects and
//! refetches) rather than letting memory grow.
//!
//! Web chat visitors register too, by channel and customer: they receive the frames of their own
//! conversations on that channel (employees' replies, typing, read marks), already rendered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::auth::Caller;
use crate::conversations::service::visible_to;
use crate::conversations::{Conversation, Message};

/// Events queued per console before it counts as stuck: a burst of thousands of messages a
/// second must not drop a console that is merely busy.
const QUEUE: usize = 4096;

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
    /// Someone is typing in the conversation (not stored).
    #[serde(rename = "typing")]
    Typing {
        conversation: Conversation,
        typist: Typist,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Typist {
    Customer,
    Employee { employee_id: u64, name: String },
}

impl Event {
    fn conversation(&self) -> &Conversation {
        match self {
            Event::ConversationUpdated { conversation }
            | Event::MessageCreated { conversation, .. }
            | Event::MessageUpdated { conversation, .. }
            | Event::Typing { conversation, .. } => conversation,
        }
    }
}

struct Connection {
    caller: Caller,
    queue: mpsc::Sender<String>,
}

/// Frames queued per visitor before the widget counts as stuck.
const VISITOR_QUEUE: usize = 64;

#[derive(Default)]
pub struct Hub {
    connections: Mutex<HashMap<u64, Connection>>,
    next_id: AtomicU64,
    visitors: Mutex<Visitors>,
    /// Set at shutdown, under the lock of each map: a connection that registers after
    /// `close_all` is let go at once instead of holding the graceful stop to its timeout.
    closed: AtomicBool,
}

/// What a widget connection is sent: a frame ready to go, or a message its own task renders for
/// the widget (rendering reads the store, which the publisher, inside a request, must not).
#[derive(Debug, Clone)]
pub enum VisitorFrame {
    Text(std::sync::Arc<str>),
    Message {
        message: std::sync::Arc<Message>,
        customer_read_up_to: u64,
    },
}

type VisitorQueue = mpsc::Sender<VisitorFrame>;

#[derive(Default)]
struct Visitors {
    /// (channel id, customer id) -> connection id -> queue.
    by_customer: HashMap<(u64, u64), HashMap<u64, VisitorQueue>>,
    /// Connections whose visitor has not written yet (no customer): only presence reaches them.
    anonymous: HashMap<u64, VisitorQueue>,
}

/// Unregisters a widget connection when dropped.
pub struct VisitorRegistration<'a> {
    hub: &'a Hub,
    pub id: u64,
    key: Option<(u64, u64)>,
}

impl VisitorRegistration<'_> {
    /// The visitor became a customer (their first message): from now on they receive that
    /// customer's frames.
    pub fn identify(&mut self, channel_id: u64, customer_id: u64) {
        let key = (channel_id, customer_id);
        if self.key == Some(key) {
            return;
        }
        let Ok(mut visitors) = self.hub.visitors.lock() else {
            return;
        };
        let queue = match self.key {
            Some(old) => visitors
                .by_customer
                .get_mut(&old)
                .and_then(|c| c.remove(&self.id)),
            None => visitors.anonymous.remove(&self.id),
        };
        if let Some(queue) = queue {
            visitors
                .by_customer
                .entry(key)
                .or_default()
                .insert(self.id, queue);
        }
        self.key = Some(key);
    }
}

impl Drop for VisitorRegistration<'_> {
    fn drop(&mut self) {
        if let Ok(mut visitors) = self.hub.visitors.lock() {
            match self.key {
                Some(key) => {
                    if let Some(connections) = visitors.by_customer.get_mut(&key) {
                        connections.remove(&self.id);
                        if connections.is_empty() {
                            visitors.by_customer.remove(&key);
                        }
                    }
                }
                None => {
                    visitors.anonymous.remove(&self.id);
                }
            }
        }
    }
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
        if let Ok(mut connections) = self.connections.lock()
            && !self.closed.load(Ordering::Acquire)
        {
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
            self.closed.store(true, Ordering::Release);
            connections.clear();
        }
        if let Ok(mut visitors) = self.visitors.lock() {
            self.closed.store(true, Ordering::Release);
            visitors.by_customer.clear();
            visitors.anonymous.clear();
        }
    }

    pub fn connected(&self) -> usize {
        self.connections.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Sends a frame to every console connection of one employee (their notifications).
    pub fn notify_employee(&self, employee_id: u64, frame: &impl Serialize) {
        let Ok(text) = serde_json::to_string(frame) else {
            return;
        };
        let Ok(mut connections) = self.connections.lock() else {
            return;
        };
        connections.retain(|_, connection| {
            connection.caller.employee_id != employee_id
                || connection.queue.try_send(text.clone()).is_ok()
        });
    }

    /// Sends a frame to every console connection whose employee holds `permission` (alerts for
    /// supervisors).
    pub fn notify_permitted(
        &self,
        permission: crate::auth::rbac::Permission,
        frame: &impl Serialize,
    ) {
        let Ok(text) = serde_json::to_string(frame) else {
            return;
        };
        let Ok(mut connections) = self.connections.lock() else {
            return;
        };
        connections.retain(|_, connection| {
            !connection.caller.access.has(permission)
                || connection.queue.try_send(text.clone()).is_ok()
        });
    }

    /// Registers a widget connection, for a known customer or (before their first message) none.
    pub fn register_visitor(
        &self,
        channel_id: u64,
        customer_id: Option<u64>,
    ) -> (VisitorRegistration<'_>, mpsc::Receiver<VisitorFrame>) {
        let (queue, receiver) = mpsc::channel(VISITOR_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let key = customer_id.map(|c| (channel_id, c));
        if let Ok(mut visitors) = self.visitors.lock()
            && !self.closed.load(Ordering::Acquire)
        {
            match key {
                Some(key) => {
                    visitors
                        .by_customer
                        .entry(key)
                        .or_default()
                        .insert(id, queue);
                }
                None => {
                    visitors.anonymous.insert(id, queue);
                }
            }
        }
        (VisitorRegistration { hub: self, id, key }, receiver)
    }

    pub fn visitors_connected(&self) -> usize {
        self.visitors
            .lock()
            .map(|v| v.anonymous.len() + v.by_customer.values().map(HashMap::len).sum::<usize>())
            .unwrap_or(0)
    }

    /// Whether the customer has the widget open right now.
    pub fn visitor_online(&self, channel_id: u64, customer_id: u64) -> bool {
        self.visitors
            .lock()
            .is_ok_and(|v| v.by_customer.contains_key(&(channel_id, customer_id)))
    }

    /// Sends a widget frame to every open widget of this customer on this channel. Never
    /// blocks; a stuck widget is dropped.
    pub fn publish_to_visitor(&self, channel_id: u64, customer_id: u64, frame: &impl Serialize) {
        let Ok(text) = serde_json::to_string(frame) else {
            return;
        };
        self.send_to_visitor(channel_id, customer_id, VisitorFrame::Text(text.into()));
    }

    /// Whether the customer has a widget open on this web chat right now.
    pub fn visitor_connected(&self, channel_id: u64, customer_id: u64) -> bool {
        self.visitors.lock().is_ok_and(|visitors| {
            visitors
                .by_customer
                .get(&(channel_id, customer_id))
                .is_some_and(|connections| !connections.is_empty())
        })
    }

    pub fn send_to_visitor(&self, channel_id: u64, customer_id: u64, frame: VisitorFrame) {
        let Ok(mut visitors) = self.visitors.lock() else {
            return;
        };
        if let Some(connections) = visitors.by_customer.get_mut(&(channel_id, customer_id)) {
            connections.retain(|_, queue| queue.try_send(frame.clone()).is_ok());
        }
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
