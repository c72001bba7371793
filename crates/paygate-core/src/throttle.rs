//! In-memory throttles for password guessing: how many *failed* attempts a key (an app and
//! mode, or an app, mode and username) may make. Process-local on purpose: a login is refused
//! before its password is hashed, so the check must cost nothing; with several nodes each node
//! throttles on its own (the limits per node are documented in docs/hserve.md).
//!
//! Each key is a GCRA bucket kept as one number, the "theoretical arrival time" `tat`: an attempt
//! at `now` is allowed when `max(tat, now) + interval − now ≤ burst × interval`, i.e. `burst`
//! attempts at once, then one per `interval` seconds. A key whose `tat` has passed holds no
//! state and is dropped, and the map never holds more than `max_keys` keys: when it is full the
//! key closest to refilled makes room (an attacker spraying random usernames cannot grow it,
//! and the app's own limit bounds how fast anyone can push others out).

use paygate_domain::{Problem, Scope};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;

/// `burst` attempts at once, then one more every `interval` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: i64,
    pub interval: i64,
}

/// Failed logins for one username of one app and mode: 5 at once, then one a minute.
pub const PER_USERNAME: Limit = Limit { burst: 5, interval: 60 };
/// Failed logins for all usernames of one app and mode (one client id): 100 at once, then one
/// a second — what a legitimate crowd's typos never reach, and far below a guessing attack.
pub const PER_CLIENT: Limit = Limit { burst: 100, interval: 1 };
/// Keys each throttle remembers at most.
pub const MAX_KEYS: usize = 10_000;

pub(crate) struct Throttle<K> {
    limit: Limit,
    max_keys: usize,
    tats: Mutex<HashMap<K, i64>>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub(crate) fn new(limit: Limit, max_keys: usize) -> Self {
        Throttle { limit, max_keys, tats: Mutex::new(HashMap::new()) }
    }

    /// Takes one attempt for `key`; `Err(seconds)` until the next one is allowed.
    pub(crate) fn take(&self, key: &K, now: i64) -> Result<(), i64> {
        let Limit { burst, interval } = self.limit;
        let mut tats = self.tats.lock().unwrap_or_else(|e| e.into_inner());
        let tat = tats.get(key).copied().unwrap_or(now).max(now);
        // Server times and small constants only: no client number takes part in this arithmetic.
        let next = tat.saturating_add(interval);
        if next.saturating_sub(now) > burst.saturating_mul(interval) {
            return Err(next.saturating_sub(burst.saturating_mul(interval)).saturating_sub(now).max(1));
        }
        if !tats.contains_key(key) && tats.len() >= self.max_keys {
            tats.retain(|_, t| *t > now);
            if tats.len() >= self.max_keys {
                if let Some(oldest) = tats.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) {
                    tats.remove(&oldest);
                }
            }
        }
        tats.insert(key.clone(), next);
        Ok(())
    }

    /// Returns an attempt taken by `take` (it was not a failure).
    pub(crate) fn give_back(&self, key: &K, now: i64) {
        let mut tats = self.tats.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tat) = tats.get_mut(key) {
            *tat = tat.saturating_sub(self.limit.interval);
            if *tat <= now {
                tats.remove(key);
            }
        }
    }

    /// Forgets the key's failures.
    pub(crate) fn reset(&self, key: &K) {
        self.tats.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.tats.lock().unwrap().len()
    }
}

type ClientKey = (String, bool);
/// The username is kept as a keyed hash: a megabyte-long name costs the map eight bytes.
type UserKey = (String, bool, u64);

/// Username/password logins of the 知晓云 face, per client id (app and mode) and per username.
pub struct LoginThrottle {
    clients: Throttle<ClientKey>,
    users: Throttle<UserKey>,
    hasher: RandomState,
}

/// A login attempt the throttle let through: report how it ended with [`LoginThrottle::finish`].
pub struct Attempt {
    client: ClientKey,
    user: UserKey,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(PER_CLIENT, PER_USERNAME, MAX_KEYS)
    }
}

impl LoginThrottle {
    pub fn new(per_client: Limit, per_username: Limit, max_keys: usize) -> Self {
        let (clients, users) = (Throttle::new(per_client, max_keys), Throttle::new(per_username, max_keys));
        LoginThrottle { clients, users, hasher: RandomState::new() }
    }

    /// Counts an attempt as failed in advance — concurrent guesses cannot all pass before the
    /// first failure is recorded — or refuses it (429) when the app or the username has no
    /// attempts left.
    pub fn begin(&self, scope: &Scope, username: &str, now: i64) -> Result<Attempt, Problem> {
        let client = (scope.app_id.clone(), scope.mode.is_live());
        let user = (scope.app_id.clone(), scope.mode.is_live(), self.hasher.hash_one(username));
        let refused = |whom: &str, wait: i64| {
            Problem::too_many_requests(format!("Too many failed logins for this {whom}; try again in {wait} seconds."))
        };
        if let Err(wait) = self.clients.take(&client, now) {
            return Err(refused("app", wait));
        }
        if let Err(wait) = self.users.take(&user, now) {
            self.clients.give_back(&client, now);
            return Err(refused("username", wait).with_param("username"));
        }
        Ok(Attempt { client, user })
    }

    /// A success clears the username's failures and gives the app its attempt back; a failure
    /// stays counted.
    pub fn finish(&self, attempt: Attempt, succeeded: bool, now: i64) {
        if succeeded {
            self.users.reset(&attempt.user);
            self.clients.give_back(&attempt.client, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paygate_domain::Mode;

    fn scope(app: &str) -> Scope {
        Scope { app_id: app.into(), mode: Mode::Test }
    }

    #[test]
    fn burst_then_one_per_interval_and_success_resets() {
        let t = LoginThrottle::new(Limit { burst: 100, interval: 1 }, Limit { burst: 5, interval: 60 }, 100);
        let s = scope("app_1");
        for _ in 0..5 {
            let a = t.begin(&s, "alice", 1_000).unwrap();
            t.finish(a, false, 1_000);
        }
        let e = t.begin(&s, "alice", 1_000).err().unwrap();
        assert_eq!((e.code, e.param.as_deref()), ("rate_limited", Some("username")));
        assert!(e.message.contains("60 seconds"), "{}", e.message);
        assert!(t.begin(&s, "bob", 1_000).is_ok(), "other usernames are not affected");
        assert!(t.begin(&scope("app_2"), "alice", 1_000).is_ok(), "nor other apps");
        assert!(t.begin(&s, "alice", 1_059).is_err());
        let a = t.begin(&s, "alice", 1_060).unwrap();
        t.finish(a, true, 1_060);
        for _ in 0..5 {
            let a = t.begin(&s, "alice", 1_060).unwrap();
            t.finish(a, false, 1_060);
        }
        assert!(t.begin(&s, "alice", 1_060).is_err());
    }

    #[test]
    fn the_app_limit_bounds_spraying_and_the_map_stays_bounded() {
        let t = LoginThrottle::new(Limit { burst: 50, interval: 1 }, Limit { burst: 5, interval: 60 }, 20);
        let s = scope("app_1");
        for i in 0..50 {
            let a = t.begin(&s, &format!("user{i}"), 1_000).unwrap();
            t.finish(a, false, 1_000);
        }
        let e = t.begin(&s, "someone", 1_000).err().unwrap();
        assert_eq!((e.code, e.param), ("rate_limited", None));
        assert!(t.users.len() <= 20 && t.clients.len() == 1, "{}", t.users.len());
        assert!(t.begin(&s, "someone", 1_001).is_ok(), "one more a second");
    }
}
