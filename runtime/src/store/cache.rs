//! Cached task results, by cache key.

use super::db::{DbRow, with_db};
use super::*;

impl Store {
    /// A cached task result under `key` that has not expired at `now`.
    pub async fn cached_result(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        with_db!(&self.db, pool => {
        if let Some(entry) = self
            .recent_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            && entry.expires.is_none_or(|t| t > now)
        {
            return Ok(Some(entry.result.clone()));
        }
        let row = sqlx::query(
            "SELECT result FROM cache_entries WHERE key = $1 AND (expires IS NULL OR expires > $2)",
        )
        .bind(key)
        .bind(ts(now))
        .fetch_optional(pool)
        .await?;
        Ok(row.map(|r| r.col("result")).transpose()?)
        })
    }
}
