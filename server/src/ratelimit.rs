//! The per-user rate limit: one token bucket per `(app, user)`, refilled continuously.
//!
//! `RATE_LIMIT_PER_MINUTE` tokens per minute with a burst of `RATE_LIMIT_BURST` (default: the
//! per-minute figure). Buckets live in this process: with several replicas each grants its own
//! budget, which bounds abuse per pod without a database write per request.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Shards keep concurrent requests of different users off one lock.
const SHARDS: usize = 16;
/// Past this many buckets in a shard, full (idle) buckets are dropped: they carry no state.
const PRUNE_AT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<(Uuid, String), Bucket>>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes one token of the user's bucket; `Err(wait)` when empty, `wait` being the time
    /// until the next token.
    pub fn check(&self, app_id: Uuid, user_id: &str) -> Result<(), Duration> {
        self.check_at(app_id, user_id, Instant::now())
    }

    fn check_at(&self, app_id: Uuid, user_id: &str, now: Instant) -> Result<(), Duration> {
        let key = (app_id, user_id.to_owned());
        let shard = &self.shards[(self.hasher.hash_one(&key) as usize) % SHARDS];
        // A poisoned lock only means another request panicked mid-update; the map is still valid.
        let mut buckets = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_token_per_interval_per_user() {
        let limiter = RateLimiter::new(60, 3); // one token a second, three at once
        let (app, t0) = (Uuid::new_v4(), Instant::now());
        for _ in 0..3 {
            assert!(limiter.check_at(app, "alice", t0).is_ok());
        }
        let wait = limiter.check_at(app, "alice", t0).err();
        assert!(wait.is_some_and(|w| w > Duration::from_millis(900) && w <= Duration::from_secs(1)));
        // Other users and other apps have their own buckets.
        assert!(limiter.check_at(app, "bob", t0).is_ok());
        assert!(limiter.check_at(Uuid::new_v4(), "alice", t0).is_ok());
        // A second later exactly one more request passes.
        let t1 = t0 + Duration::from_secs(1);
        assert!(limiter.check_at(app, "alice", t1).is_ok());
        assert!(limiter.check_at(app, "alice", t1).is_err());
        // Idle time refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limiter.check_at(app, "alice", t2).is_ok());
        }
        assert!(limiter.check_at(app, "alice", t2).is_err());
    }

    #[test]
    fn idle_buckets_are_pruned() {
        let limiter = RateLimiter::new(60, 1);
        let (app, t0) = (Uuid::new_v4(), Instant::now());
        for i in 0..(PRUNE_AT * SHARDS) {
            let _ = limiter.check_at(app, &format!("u{i}"), t0);
        }
        let later = t0 + Duration::from_secs(10);
        for i in 0..(PRUNE_AT * SHARDS) {
            let _ = limiter.check_at(app, &format!("v{i}"), later);
        }
        let kept: usize = limiter
            .shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum();
        assert!(kept < 2 * PRUNE_AT * SHARDS, "{kept} buckets kept");
    }
}
