//! Pauses of flow runs: what a paused or suspended run waits for, and how the wait
//! ended. A pause is resolved once (`resolution IS NULL` guards every resolving update),
//! so a resume racing a timeout, or two resumes, have exactly one winner.

use super::db::{DbRow, with_db};
use super::{Result, Store, StoreError, parse_json, parse_opt_ts, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// How a pause ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseResolution {
    /// A resume brought its input.
    Resumed,
    /// Nobody resumed it in time.
    TimedOut,
    /// The run was cancelled or run again while it waited.
    Cancelled,
}

impl PauseResolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resumed => "resumed",
            Self::TimedOut => "timed-out",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "resumed" => Self::Resumed,
            "timed-out" => Self::TimedOut,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A pause of a flow run at one call position.
#[derive(Debug, Clone)]
pub struct PauseRecord {
    pub id: String,
    pub flow_run_id: String,
    /// The pause call's position among the run's calls.
    pub position: i64,
    pub key: Option<String>,
    pub description: Option<String>,
    /// JSON Schema of the input a resume must bring; `None`: it brings none.
    pub input_schema: Option<Value>,
    /// Whether the run released its instance (it runs again on resume).
    pub suspend: bool,
    pub timeout_seconds: f64,
    pub timeout_at: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub resolution: Option<PauseResolution>,
    pub resolved: Option<DateTime<Utc>>,
    /// The resume's input, JSON text.
    pub input: Option<String>,
}

fn pause_from_row(r: &impl DbRow) -> Result<PauseRecord> {
    let resolution = r
        .col::<Option<String>>("resolution")?
        .map(|s| {
            PauseResolution::parse(&s)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown pause resolution {s:?}")))
        })
        .transpose()?;
    Ok(PauseRecord {
        id: r.col::<String>("id")?,
        flow_run_id: r.col::<String>("flow_run_id")?,
        position: r.col::<i64>("position")?,
        key: r.col::<Option<String>>("key")?,
        description: r.col::<Option<String>>("description")?,
        input_schema: r
            .col::<Option<String>>("input_schema")?
            .as_deref()
            .map(parse_json)
            .transpose()?,
        suspend: r.flag("suspend")?,
        timeout_seconds: r.col::<f64>("timeout_seconds")?,
        timeout_at: parse_ts(&r.col::<String>("timeout_at")?)?,
        created: parse_ts(&r.col::<String>("created")?)?,
        resolution,
        resolved: parse_opt_ts(r.col::<Option<String>>("resolved")?)?,
        input: r.col::<Option<String>>("input")?,
    })
}

impl Store {
    /// Records a pause, durably, before the run shows as paused.
    pub async fn insert_pause(&self, p: &PauseRecord) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO pauses (id, flow_run_id, position, key, description, input_schema,
               suspend, timeout_seconds, timeout_at, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&p.id)
        .bind(&p.flow_run_id)
        .bind(p.position)
        .bind(&p.key)
        .bind(&p.description)
        .bind(p.input_schema.as_ref().map(Value::to_string))
        .bind(i64::from(p.suspend))
        .bind(p.timeout_seconds)
        .bind(ts(p.timeout_at))
        .bind(ts(p.created))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    pub async fn pause(&self, id: &str) -> Result<Option<PauseRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM pauses WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| pause_from_row(&r)).transpose()
        })
    }

    /// The latest pause of a run at a call position.
    pub async fn latest_pause_at(
        &self,
        flow_run_id: &str,
        position: i64,
    ) -> Result<Option<PauseRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT * FROM pauses WHERE flow_run_id = $1 AND position = $2
             ORDER BY id DESC LIMIT 1",
        )
        .bind(flow_run_id)
        .bind(position)
        .fetch_optional(pool)
        .await?;
        row.map(|r| pause_from_row(&r)).transpose()
        })
    }

    /// The pause a run waits on, if any.
    pub async fn open_pause(&self, flow_run_id: &str) -> Result<Option<PauseRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT * FROM pauses WHERE flow_run_id = $1 AND resolution IS NULL
             ORDER BY id DESC LIMIT 1",
        )
        .bind(flow_run_id)
        .fetch_optional(pool)
        .await?;
        row.map(|r| pause_from_row(&r)).transpose()
        })
    }

    /// Resolves an open pause; false when it was resolved already (the other side won).
    pub async fn resolve_pause(
        &self,
        id: &str,
        resolution: PauseResolution,
        input: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        with_db!(&self.db, pool => {
        let done = sqlx::query(
            "UPDATE pauses SET resolution = $1, input = $2, resolved = $3
             WHERE id = $4 AND resolution IS NULL",
        )
        .bind(resolution.as_str())
        .bind(input)
        .bind(ts(at))
        .bind(id)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() == 1)
        })
    }

    /// Resolves every open pause of a run (it is cancelled, or runs again from a retry).
    pub async fn resolve_open_pauses(
        &self,
        flow_run_id: &str,
        resolution: PauseResolution,
    ) -> Result<u64> {
        with_db!(&self.db, pool => {
        let done = sqlx::query(
            "UPDATE pauses SET resolution = $1, resolved = $2
             WHERE flow_run_id = $3 AND resolution IS NULL",
        )
        .bind(resolution.as_str())
        .bind(ts(Utc::now()))
        .bind(flow_run_id)
        .execute(pool)
        .await?;
        Ok(done.rows_affected())
        })
    }

    /// Positions and inputs of a run's resumed pauses, for replay (later ones win).
    pub async fn resumed_pauses(&self, flow_run_id: &str) -> Result<Vec<(i64, String)>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT position, input FROM pauses WHERE flow_run_id = $1 AND resolution = $2
             ORDER BY id",
        )
        .bind(flow_run_id)
        .bind(PauseResolution::Resumed.as_str())
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.col::<i64>("position")?,
                    r.col::<Option<String>>("input")?
                        .unwrap_or_else(|| "null".to_owned()),
                ))
            })
            .collect()
        })
    }

    /// Open pauses of runs still paused that nothing will end: suspended ones past their
    /// timeout (no instance waits for them), and kept ones past `abandoned_before` (their
    /// instance would have ended them by then; its process is gone).
    pub async fn expired_pauses(
        &self,
        now: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
    ) -> Result<Vec<PauseRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT p.* FROM pauses p JOIN flow_runs f ON f.id = p.flow_run_id
             WHERE p.resolution IS NULL AND f.state_type = $1
               AND ((p.suspend = 1 AND p.timeout_at <= $2)
                 OR (p.suspend = 0 AND p.timeout_at <= $3))
             ORDER BY p.timeout_at LIMIT 500",
        )
        .bind(crate::model::state::StateType::Paused.as_str())
        .bind(ts(now))
        .bind(ts(abandoned_before))
        .fetch_all(pool)
        .await?;
        rows.iter().map(pause_from_row).collect()
        })
    }
}
