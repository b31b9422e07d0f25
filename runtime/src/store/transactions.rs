//! Transactions of flow runs, as their journal keeps them (one row per transaction an
//! execution began, at its call position), and the keys of committed transactions.

use super::db::{BeginWrite, DbRow, with_db};
use super::{Result, Store, StoreError, parse_opt_ts, parse_ts, ts};
use crate::model::run::{CommitMode, Isolation, TransactionState};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A transaction of a flow run.
#[derive(Debug, Clone, Serialize)]
pub struct TransactionRecord {
    pub id: String,
    pub flow_run_id: String,
    /// Its begin's position among the run's calls.
    pub position: i64,
    /// The transaction it began inside.
    pub parent_id: Option<String>,
    pub key: Option<String>,
    pub isolation: Isolation,
    pub commit_mode: CommitMode,
    pub state: TransactionState,
    pub created: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown transaction {what} {value:?}"))
}

fn transaction_from_row(r: &impl DbRow) -> Result<TransactionRecord> {
    let isolation: String = r.col("isolation")?;
    let mode: String = r.col("commit_mode")?;
    let state: String = r.col("state")?;
    Ok(TransactionRecord {
        id: r.col("id")?,
        flow_run_id: r.col("flow_run_id")?,
        position: r.col("position")?,
        parent_id: r.col("parent_id")?,
        key: r.col("key")?,
        isolation: Isolation::parse(&isolation).ok_or_else(|| corrupt("isolation", &isolation))?,
        commit_mode: CommitMode::parse(&mode).ok_or_else(|| corrupt("commit mode", &mode))?,
        state: TransactionState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        created: parse_ts(&r.col::<String>("created")?)?,
        ended: parse_opt_ts(r.col("ended")?)?,
    })
}

impl Store {
    /// Records a transaction as it begins, durably, before the flow works inside it.
    pub async fn insert_transaction(&self, t: &TransactionRecord) -> Result<()> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query(
            "INSERT INTO transactions (id, flow_run_id, position, parent_id, key, isolation,
               commit_mode, state, created, ended)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&t.id)
        .bind(&t.flow_run_id)
        .bind(t.position)
        .bind(&t.parent_id)
        .bind(&t.key)
        .bind(t.isolation.as_str())
        .bind(t.commit_mode.as_str())
        .bind(t.state.as_str())
        .bind(ts(t.created))
        .bind(t.ended.map(ts))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
        })
    }

    /// Records how transactions ended, with the keys of those that committed (their
    /// records, which later transactions with the key find), in one database transaction.
    /// A transaction ends once: a row that is no longer active is left as it is.
    pub async fn end_transactions(
        &self,
        workspace_id: &str,
        ended: &[(String, TransactionState)],
        keys: &[(String, String)],
        flow_run_id: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        if ended.is_empty() && keys.is_empty() {
            return Ok(());
        }
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        for (id, state) in ended {
            sqlx::query(
                "UPDATE transactions SET state = $1, ended = $2 WHERE id = $3 AND state = 'active'",
            )
            .bind(state.as_str())
            .bind(ts(at))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        for (key, transaction_id) in keys {
            sqlx::query(
                "INSERT INTO transaction_records (workspace_id, key, transaction_id, flow_run_id,
                   committed)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (workspace_id, key) DO UPDATE SET
                   transaction_id = excluded.transaction_id,
                   flow_run_id = excluded.flow_run_id, committed = excluded.committed",
            )
            .bind(workspace_id)
            .bind(key)
            .bind(transaction_id)
            .bind(flow_run_id)
            .bind(ts(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
        })
    }

    /// Whether a transaction with this key committed in the workspace.
    pub async fn transaction_committed(&self, workspace_id: &str, key: &str) -> Result<bool> {
        with_db!(&self.db, pool => {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT transaction_id FROM transaction_records WHERE workspace_id = $1 AND key = $2",
        )
        .bind(workspace_id)
        .bind(key)
        .fetch_optional(pool)
        .await?;
        Ok(found.is_some())
        })
    }

    /// The transactions of a flow run, in the order they began (the first 10,000).
    pub async fn transactions(&self, flow_run_id: &str) -> Result<Vec<TransactionRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT * FROM transactions WHERE flow_run_id = $1 ORDER BY position, created, id
             LIMIT 10000",
        )
        .bind(flow_run_id)
        .fetch_all(pool)
        .await?;
        rows.iter().map(transaction_from_row).collect()
        })
    }
}
