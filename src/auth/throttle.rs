//! Login throttling per account and per source address.
//!
//! Failures are counted in memory over a sliding window; a key that reached its limit is refused
//! until its oldest counted failure leaves the window. Kept in memory on purpose: a restart forgets
//! counts (which only ever favours the legitimate user) and counting costs no write. Each failed
//! password check is audited; refusals while throttled are only logged, so a flood of refused
//! attempts cannot grow the audit log.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::clock::Millis;

/// Keys tracked at most, per kind; the stalest are forgotten first beyond that.
const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct LoginThrottle {
    window_ms: i64,
    max_per_account: u32,
    max_per_address: u32,
    accounts: Mutex<HashMap<String, VecDeque<Millis>>>,
    addresses: Mutex<HashMap<String, VecDeque<Millis>>>,
}

impl LoginThrottle {
    pub fn new(window_minutes: u64, max_per_account: u32, max_per_address: u32) -> Self {
        LoginThrottle {
            window_ms: window_minutes as i64 * 60_000,
            max_per_account,
            max_per_address,
            accounts: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait when either the account or the address is throttled.
    pub fn check(&self, account: &str, address: &str, now: Millis) -> Option<u64> {
        let a = Self::wait(
            &self.accounts,
            account,
            self.max_per_account,
            self.window_ms,
            now,
        );
        let b = Self::wait(
            &self.addresses,
            address,
            self.max_per_address,
            self.window_ms,
            now,
        );
        a.max(b)
    }

    pub fn record_failure(&self, account: &str, address: &str, now: Millis) {
        Self::push(&self.accounts, account, now, self.window_ms);
        Self::push(&self.addresses, address, now, self.window_ms);
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn record_success(&self, account: &str) {
        if let Ok(mut map) = self.accounts.lock() {
            map.remove(account);
        }
    }

    fn wait(
        map: &Mutex<HashMap<String, VecDeque<Millis>>>,
        key: &str,
        max: u32,
        window: i64,
        now: Millis,
    ) -> Option<u64> {
        let mut map = map.lock().ok()?;
        let failures = map.get_mut(key)?;
        while failures.front().is_some_and(|t| *t <= now - window) {
            failures.pop_front();
        }
        if failures.len() >= max as usize {
            let oldest = *failures.front()?;
            Some(((oldest + window - now).max(1000) / 1000) as u64)
        } else {
            None
        }
    }

    fn push(map: &Mutex<HashMap<String, VecDeque<Millis>>>, key: &str, now: Millis, window: i64) {
        let Ok(mut map) = map.lock() else { return };
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, failures| failures.back().is_some_and(|t| *t > now - window));
            if map.len() >= MAX_KEYS {
                return;
            }
        }
        let failures = map.entry(key.to_string()).or_default();
        failures.push_back(now);
        // Only the newest failures matter for the limit; keep memory per key bounded.
        while failures.len() > 64 {
            failures.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_is_throttled_after_limit_and_released_after_window() {
        let t = LoginThrottle::new(15, 3, 100);
        let now = 1_000_000;
        for i in 0..3 {
            assert_eq!(t.check("bob", "1.2.3.4", now + i), None);
            t.record_failure("bob", "1.2.3.4", now + i);
        }
        let wait = t.check("bob", "5.6.7.8", now + 10).unwrap();
        assert!((899..=900).contains(&wait), "{wait}");
        assert_eq!(t.check("alice", "1.2.3.4", now + 10), None);
        assert_eq!(t.check("bob", "1.2.3.4", now + 15 * 60_000 + 5), None);
    }

    #[test]
    fn address_is_throttled_across_accounts() {
        let t = LoginThrottle::new(15, 100, 4);
        for i in 0..4 {
            t.record_failure(&format!("user{i}"), "9.9.9.9", 1000 + i);
        }
        assert!(t.check("someone-else", "9.9.9.9", 2000).is_some());
        assert!(t.check("someone-else", "9.9.9.8", 2000).is_none());
    }

    #[test]
    fn success_clears_account_failures() {
        let t = LoginThrottle::new(15, 2, 100);
        t.record_failure("bob", "a", 1);
        t.record_failure("bob", "a", 2);
        assert!(t.check("bob", "a", 3).is_some());
        t.record_success("bob");
        assert!(t.check("bob", "a", 3).is_none());
    }
}
