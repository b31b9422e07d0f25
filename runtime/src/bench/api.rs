//! The benches' HTTP client of a server: triggering runs and timing them, and timing
//! requests.

use crate::store::Store;
use anyhow::{Context, ensure};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Triggers in flight at once when many runs are created.
const TRIGGERS_IN_FLIGHT: usize = 64;

/// A workspace's API key on a server.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

/// The value at quantile `q` of sorted samples.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1))]
}

impl Client {
    pub(crate) fn new(base: String, key: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            base,
            key,
        }
    }

    /// Triggers a run of a deployment (by id or name); returns its id.
    pub(crate) async fn trigger(&self, deployment: &str, params: Value) -> anyhow::Result<String> {
        let res = self
            .http
            .post(format!("{}/api/deployments/{deployment}/runs", self.base))
            .bearer_auth(&self.key)
            .json(&json!({ "parameters": params }))
            .send()
            .await?;
        ensure!(res.status().is_success(), "trigger: {}", res.status());
        let run: Value = res.json().await?;
        Ok(run["id"].as_str().context("no run id")?.to_owned())
    }

    /// Triggers `n` runs, `TRIGGERS_IN_FLIGHT` at a time.
    pub(crate) async fn trigger_many(
        &self,
        deployment: &str,
        params: Value,
        n: u64,
    ) -> anyhow::Result<()> {
        use futures_util::StreamExt;
        let mut s = futures_util::stream::iter(0..n)
            .map(|_| self.trigger(deployment, params.clone()))
            .buffer_unordered(TRIGGERS_IN_FLIGHT);
        while let Some(r) = s.next().await {
            r?;
        }
        Ok(())
    }

    /// Triggers runs at `rate` a second for `seconds`, then waits for them and returns
    /// their trigger-to-completed p50 and p99 (ms), read from the database as `weir bench
    /// runs` does (runs created meanwhile by others that completed count too).
    pub(crate) async fn timed_runs(
        &self,
        store: &Store,
        deployment: &str,
        params: Value,
        rate: u64,
        seconds: u64,
    ) -> anyhow::Result<(f64, f64)> {
        let since = chrono::Utc::now();
        let every = Duration::from_micros(1_000_000 / rate.max(1));
        let start = tokio::time::Instant::now();
        let total = rate * seconds;
        let mut triggers = Vec::with_capacity(total as usize);
        for i in 0..total {
            tokio::time::sleep_until(start + every * i as u32).await;
            let (this, deployment, params) = (self.clone(), deployment.to_owned(), params.clone());
            triggers.push(tokio::spawn(async move {
                this.trigger(&deployment, params).await
            }));
        }
        for t in triggers {
            t.await??;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            store.flush().await?;
            let mut ms: Vec<f64> = store
                .run_timings(since)
                .await?
                .into_iter()
                .filter(|(_, _, state)| state == "COMPLETED")
                .filter_map(|(c, e, _)| {
                    e.map(|e| (e - c).num_microseconds().unwrap_or(0) as f64 / 1000.0)
                })
                .collect();
            if ms.len() as u64 >= total {
                ms.sort_by(f64::total_cmp);
                return Ok((quantile(&ms, 0.5), quantile(&ms, 0.99)));
            }
            ensure!(
                Instant::now() < deadline,
                "{} of {total} runs completed in 60 s",
                ms.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Requests `GET path` `n` times one after another (after two to warm up); returns
    /// p50 and p99 of the time to the last byte (ms).
    pub(crate) async fn timed_get(&self, path: &str, n: usize) -> anyhow::Result<(f64, f64)> {
        let mut ms = Vec::with_capacity(n);
        for i in 0..n + 2 {
            let t = Instant::now();
            let res = self
                .http
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.key)
                .send()
                .await?;
            ensure!(res.status().is_success(), "GET {path}: {}", res.status());
            res.bytes().await?;
            if i >= 2 {
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        ms.sort_by(f64::total_cmp);
        Ok((quantile(&ms, 0.5), quantile(&ms, 0.99)))
    }
}
