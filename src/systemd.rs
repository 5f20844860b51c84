//! `allhands serve` under systemd (`Type=notify`, `WatchdogSec=`): readiness once the store is
//! open and the listeners are bound, keep-alives only while the store still answers, and the
//! reloading and stopping states. Without `NOTIFY_SOCKET` (not started by systemd) every call
//! does nothing.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::state::Core;

pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Sends `WATCHDOG=1` twice per watchdog interval, each time only after a read of the store and
/// a round trip through its writer thread have both finished within that half interval. A server
/// whose store hangs (a stuck disk, a deadlock) therefore stops pinging and systemd restarts it.
pub async fn watchdog(core: Arc<Core>) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (interval / 2).max(Duration::from_millis(50));
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "systemd watchdog enabled"
    );
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match tokio::time::timeout(period, store_answers(&core)).await {
            Ok(Ok(())) => notify(&[NotifyState::Watchdog]),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the store does not answer; not feeding the watchdog")
            }
            Err(_) => tracing::error!(
                "the store did not answer within {} ms; not feeding the watchdog",
                period.as_millis()
            ),
        }
    }
}

async fn store_answers(core: &Core) -> crate::error::AppResult<()> {
    core.store
        .read(|txn| crate::storage::meta_get(txn, crate::storage::migrations::SCHEMA_VERSION_KEY))
        .await?;
    core.store.ping().await
}
