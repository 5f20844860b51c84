//! `Core`: what every domain operation needs (store, clock, settings, password hashing, the
//! login throttle and the cached access index). Built once at start-up; knows nothing of HTTP.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::auth::password::PasswordHashing;
use crate::auth::rbac::{AccessIndex, DepartmentTree, Grant};
use crate::auth::throttle::LoginThrottle;
use crate::clock::{Millis, SharedClock};
use crate::config::Config;
use crate::error::AppResult;
use crate::org::Department;
use crate::storage::{Store, all_records, tables};

pub struct Core {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: SharedClock,
    pub hashing: PasswordHashing,
    pub secrets: crate::secrets::SecretBox,
    pub hub: Arc<crate::collaboration::hub::Hub>,
    /// Woken when something is put in the outbox.
    pub outbox_ready: tokio::sync::Notify,
    /// Woken when a channel is added or changed (mailbox readers restart).
    pub channels_changed: tokio::sync::Notify,
    /// The live connection status of channels that keep one (e-mail).
    pub channel_status: crate::channels::email::StatusBoard,
    pub channel_cache: crate::channels::cache::ChannelCache,
    /// The live router's thread (started by `serve`).
    pub routing: crate::routing::live::RoutingHandle,
    pub throttle: LoginThrottle,
    /// The web chat widget's article searches per client address.
    pub widget_searches: LoginThrottle,
    /// The knowledge base's search index, kept in step with the store.
    pub knowledge: Arc<crate::knowledge::library::Library>,
    /// The compiled sensitive-word dictionaries.
    pub sensitive: Arc<crate::assist::dictionary::Guard>,
    /// The optional connector to the organisation's model server (off by default).
    pub llm: crate::assist::llm::Connector,
    pub data_dir: PathBuf,
    access: ArcSwap<AccessIndex>,
    /// Serialises reloads so that an older snapshot never replaces a newer one.
    reload: tokio::sync::Mutex<()>,
}

impl Core {
    pub fn new(config: Arc<Config>, store: Store, clock: SharedClock) -> AppResult<Core> {
        let hashing = PasswordHashing::new(&config.auth)?;
        let secrets = crate::secrets::SecretBox::open(&config.storage.data_dir)?;
        let throttle = LoginThrottle::new(
            config.auth.lockout_window_minutes,
            config.auth.max_failures_per_account,
            config.auth.max_failures_per_address,
        );
        let access = ArcSwap::from_pointee(store.read_blocking(load_access_index)?);
        let sensitive = Arc::new(crate::assist::dictionary::Guard::default());
        store.read_blocking(|txn| sensitive.load(txn))?;
        let llm = crate::assist::llm::Connector::new(&config.assist.llm)?;
        Ok(Core {
            llm,
            data_dir: config.storage.data_dir.clone(),
            config,
            store,
            clock,
            hashing,
            secrets,
            hub: Default::default(),
            outbox_ready: tokio::sync::Notify::new(),
            channels_changed: tokio::sync::Notify::new(),
            channel_status: Default::default(),
            channel_cache: Default::default(),
            routing: Default::default(),
            throttle,
            widget_searches: crate::channels::web::search_throttle(),
            knowledge: Arc::new(crate::knowledge::library::Library::in_memory()?),
            sensitive,
            access,
            reload: tokio::sync::Mutex::new(()),
        })
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    pub fn access(&self) -> Arc<AccessIndex> {
        self.access.load_full()
    }

    /// Rebuilds the cached roles, grants and department tree after a write changed them.
    pub async fn reload_access(&self) -> AppResult<()> {
        // The snapshot is taken after the lock, so each reload sees at least what the one
        // before it saw.
        let _serialised = self.reload.lock().await;
        let index = self.store.read(load_access_index).await?;
        self.access.store(Arc::new(index));
        Ok(())
    }
}

pub fn load_access_index(txn: &redb::ReadTransaction) -> AppResult<AccessIndex> {
    let roles: Vec<crate::auth::rbac::CustomRole> = all_records(&txn.open_table(tables::ROLES)?)?;
    let grants: Vec<Grant> = all_records(&txn.open_table(tables::ROLE_GRANTS)?)?;
    let departments: Vec<Department> = all_records(&txn.open_table(tables::DEPARTMENTS)?)?;
    Ok(AccessIndex {
        custom_roles: roles.into_iter().map(|r| (r.id, r)).collect(),
        grants,
        departments: DepartmentTree::new(departments.iter().map(|d| (d.id, d.parent_id))),
    })
}
