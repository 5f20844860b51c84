//! Channels as the hot paths need them (every API post, every widget connection): read once,
//! with their secrets unsealed, and forgotten whenever any channel is written.
//!
//! A reader that looked a channel up before a write committed must not put its stale copy back
//! after the write's `forget_all`: each lookup notes the generation it started in and only fills
//! the cache if no write happened since.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::{Channel, get, secrets};
use crate::error::AppResult;
use crate::state::Core;

pub struct CachedChannel {
    pub channel: Channel,
    /// The unsealed secrets (`signing_secret`, `identity_secret`, ...).
    pub secrets: serde_json::Value,
}

impl std::fmt::Debug for CachedChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedChannel")
            .field("channel", &self.channel)
            .field("secrets", &"<unsealed, not shown>")
            .finish()
    }
}

#[derive(Default)]
pub struct ChannelCache {
    entries: RwLock<HashMap<u64, Arc<CachedChannel>>>,
    generation: AtomicU64,
}

impl ChannelCache {
    /// Called after every committed channel write.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }

    fn hit(&self, id: u64) -> Option<Arc<CachedChannel>> {
        self.entries.read().ok()?.get(&id).cloned()
    }

    fn fill(&self, id: u64, entry: Arc<CachedChannel>, generation: u64) {
        if let Ok(mut entries) = self.entries.write()
            && self.generation.load(Ordering::Acquire) == generation
        {
            entries.insert(id, entry);
        }
    }
}

/// The channel with its secrets; an unknown id is `not_found` (and is not remembered).
pub async fn cached(core: &Core, id: u64) -> AppResult<Arc<CachedChannel>> {
    if let Some(hit) = core.channel_cache.hit(id) {
        return Ok(hit);
    }
    let generation = core.channel_cache.generation.load(Ordering::Acquire);
    let channel = core.store.read(move |txn| get(txn, id)).await?;
    let secrets = secrets(core, &channel)?;
    let entry = Arc::new(CachedChannel { channel, secrets });
    core.channel_cache.fill(id, entry.clone(), generation);
    Ok(entry)
}
