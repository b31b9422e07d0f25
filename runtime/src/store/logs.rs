//! Logs of flow runs and their task runs, whole or by sequence (for paging and
//! following).

use super::db::{DbRow, with_db};
use super::*;
use serde::Serialize;

/// A log line with its sequence number, for paging and following.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub seq: i64,
    #[serde(flatten)]
    pub record: LogRecord,
}

impl Store {
    /// Logs of a flow run and its task runs, oldest first.
    pub async fn logs(&self, flow_run_id: &str) -> Result<Vec<LogRecord>> {
        let lines = self.logs_after(flow_run_id, 0, i64::MAX).await?;
        Ok(lines.into_iter().map(|l| l.record).collect())
    }

    /// Log lines of a flow run after sequence number `after`.
    pub async fn logs_after(
        &self,
        flow_run_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT seq, flow_run_id, task_run_id, level, message, timestamp FROM logs
             WHERE flow_run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(flow_run_id)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LogLine {
                    seq: r.col("seq")?,
                    record: LogRecord {
                        flow_run_id: r.col("flow_run_id")?,
                        task_run_id: r.col("task_run_id")?,
                        level: r.col("level")?,
                        message: r.col("message")?,
                        timestamp: parse_ts(&r.col::<String>("timestamp")?)?,
                    },
                })
            })
            .collect()
        })
    }
}
