//! A shared cache of AWS reads: one entry per key (secret or instance, and region), refreshed
//! after its interval with jitter so refreshes do not align, one call in flight per key, and
//! failures remembered with exponential backoff so a broken or throttled secret is not asked
//! again by every resource that references it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::AwsError;

struct Entry<V> {
    value: Option<V>,
    refresh_after: Option<Instant>,
    failure: Option<(AwsError, Instant)>,
    failures: u32,
}

pub struct TtlCache<V> {
    entries: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry<V>>>>>,
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        Self {
            entries: std::sync::Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> TtlCache<V> {
    /// The cached value for `key`, or the result of `fetch` when it is due (or `force`).
    pub async fn get<F, Fut>(
        &self,
        key: &str,
        refresh: Duration,
        force: bool,
        fetch: F,
    ) -> Result<V, AwsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, AwsError>>,
    {
        let entry = {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            entries
                .entry(key.to_owned())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Mutex::new(Entry {
                        value: None,
                        refresh_after: None,
                        failure: None,
                        failures: 0,
                    }))
                })
                .clone()
        };
        // One caller fetches; the others wait here and then find the fresh value.
        let mut entry = entry.lock().await;
        let now = Instant::now();
        if !force {
            if let Some((error, retry_at)) = &entry.failure
                && now < *retry_at
            {
                return Err(error.clone());
            }
            if entry.failure.is_none()
                && let (Some(value), Some(refresh_after)) = (&entry.value, entry.refresh_after)
                && now < refresh_after
            {
                return Ok(value.clone());
            }
        }
        match fetch().await {
            Ok(value) => {
                entry.value = Some(value.clone());
                entry.refresh_after = Some(now + jittered(refresh));
                entry.failure = None;
                entry.failures = 0;
                Ok(value)
            }
            Err(error) => {
                entry.failures = entry.failures.saturating_add(1);
                let base = if error.is_throttling() {
                    Duration::from_secs(10)
                } else {
                    Duration::from_secs(2)
                };
                let wait = (base * 2u32.saturating_pow(entry.failures.saturating_sub(1).min(8)))
                    .min(Duration::from_secs(300));
                entry.failure = Some((error.clone(), now + jittered(wait)));
                Err(error)
            }
        }
    }
}

/// 80–100 % of `interval`, so entries created together do not refresh together.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::random_range(0.8..=1.0))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn not_found() -> AwsError {
        AwsError::NotFound {
            operation: "GetSecretValue",
            resource: "s".into(),
        }
    }

    #[tokio::test]
    async fn concurrent_readers_share_one_fetch_per_interval() {
        let cache = Arc::new(TtlCache::<u32>::default());
        let calls = Arc::new(AtomicU32::new(0));
        let readers = (0..50).map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get("secret", Duration::from_secs(60), false, || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(7)
                    })
                    .await
            })
        });
        for reader in futures::future::join_all(readers).await {
            assert_eq!(reader.expect("task").expect("value"), 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Forcing fetches again.
        let forced = cache
            .get("secret", Duration::from_secs(60), true, || async { Ok(8) })
            .await;
        assert_eq!(forced.expect("forced"), 8);
    }

    #[tokio::test]
    async fn failures_are_remembered_until_the_backoff_ends() {
        let cache = TtlCache::<u32>::default();
        let calls = AtomicU32::new(0);
        for _ in 0..10 {
            let result = cache
                .get("broken", Duration::from_secs(60), false, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(not_found())
                })
                .await;
            assert_eq!(result.expect_err("fails").reason(), "AwsResourceNotFound");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry storm");
    }
}
