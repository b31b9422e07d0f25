//! Concurrency slots shared by nodes on one PostgreSQL database: a run holds one slot
//! per limited key (its pool, its deployment, each limited tag) while it runs, and the
//! slots of nodes that stopped heartbeating are given back.

use super::db::{Db, with_db};
use super::{Result, Store, ts};
use chrono::{DateTime, Utc};

impl Store {
    /// Takes one slot of every limited key in `wants` (key, limit) for `run_id`, all or
    /// none, counting the slots every node holds; false when a limit is reached. Only
    /// for PostgreSQL (nodes sharing a database); elsewhere always true.
    pub async fn take_slots(
        &self,
        run_id: &str,
        node: &str,
        wants: &[(String, i64)],
    ) -> Result<bool> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(true);
        };
        let mut keys: Vec<&(String, i64)> = wants.iter().collect();
        keys.sort();
        let mut tx = pool.begin().await?;
        for (key, limit) in &keys {
            // One taker per key at a time, whichever node it is on.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(key)
                .execute(&mut *tx)
                .await?;
            let taken: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM slots WHERE key = $1 AND run_id != $2")
                    .bind(key)
                    .bind(run_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if taken >= *limit {
                return Ok(false);
            }
        }
        let now = ts(Utc::now());
        for (key, _) in &keys {
            sqlx::query(
                "INSERT INTO slots (key, run_id, node_id, taken) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(key)
            .bind(run_id)
            .bind(node)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Gives back every slot a run holds on `node`.
    pub async fn release_slots(&self, run_id: &str, node: &str) -> Result<()> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(());
        };
        sqlx::query("DELETE FROM slots WHERE run_id = $1 AND node_id = $2")
            .bind(run_id)
            .bind(node)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Slots held right now under `key`, on every node.
    pub async fn slots_taken(&self, key: &str) -> Result<i64> {
        with_db!(&self.db, pool => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM slots WHERE key = $1")
                .bind(key)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Gives back the slots of nodes silent since `cutoff` (their runs are taken over
    /// and take slots again when they run).
    pub async fn release_dead_slots(&self, node: &str, cutoff: DateTime<Utc>) -> Result<u64> {
        with_db!(&self.db, pool => {
            let done = sqlx::query(
                "DELETE FROM slots WHERE node_id != $1
                   AND node_id NOT IN (SELECT id FROM nodes WHERE heartbeat >= $2)",
            )
            .bind(node)
            .bind(ts(cutoff))
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
