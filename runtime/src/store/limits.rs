//! Global concurrency and rate limits of a workspace (Prefect's `concurrency("db")` and
//! `rate_limit("api")`): the limits themselves, the slots runs occupy (rows of `slots`,
//! so that a dead node's are given back with its other slots), and rate limits' decaying
//! slots.

use super::db::{BeginWrite, DbRow, with_db};
use super::*;
use sqlx::QueryBuilder;

/// A named limit of a workspace.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GlobalLimit {
    pub name: String,
    /// How many slots may be occupied at once.
    pub slots: i64,
    /// For a rate limit: how many occupied slots come back each second.
    pub slot_decay_per_second: Option<f64>,
    /// An inactive limit limits nothing.
    pub active: bool,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// The key of a limit's rows in `slots`.
fn slot_key(workspace_id: &str, name: &str) -> String {
    format!("limit:{workspace_id}:{name}")
}

/// The `slots` rows of one occupancy are `<lease>:<i>`: this range holds exactly them.
fn lease_range(lease: &str) -> (String, String) {
    (format!("{lease}:"), format!("{lease};"))
}

fn limit_from_row(r: &impl DbRow) -> Result<GlobalLimit> {
    Ok(GlobalLimit {
        name: r.col("name")?,
        slots: r.col("slots")?,
        slot_decay_per_second: r.col("slot_decay_per_second")?,
        active: r.flag("active")?,
        created: parse_ts(&r.col::<String>("created")?)?,
        updated: parse_ts(&r.col::<String>("updated")?)?,
    })
}

/// Slots of a rate limit still in use at `now`, of `decaying` at `since`.
fn decayed(decaying: f64, since: Option<DateTime<Utc>>, rate: f64, now: DateTime<Utc>) -> f64 {
    let elapsed = since.map_or(0.0, |t| {
        (now - t).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
    });
    (decaying - rate * elapsed.max(0.0)).max(0.0)
}

impl Store {
    /// At most `limit` limits of a workspace in name order, after the name `after`.
    pub async fn global_limits_page(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<GlobalLimit>> {
        with_db!(&self.db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new(
            "SELECT name, slots, slot_decay_per_second, active, created, updated
             FROM global_concurrency_limits WHERE workspace_id = ",
        );
        q.push_bind(workspace_id.to_owned());
        if let Some(name) = after {
            q.push(" AND name > ").push_bind(name.to_owned());
        }
        q.push(" ORDER BY name LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(limit_from_row).collect()
        })
    }

    pub async fn global_limit(
        &self,
        workspace_id: &str,
        name: &str,
    ) -> Result<Option<GlobalLimit>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT name, slots, slot_decay_per_second, active, created, updated
             FROM global_concurrency_limits WHERE workspace_id = $1 AND name = $2",
        )
        .bind(workspace_id)
        .bind(name)
        .fetch_optional(pool)
        .await?;
        row.as_ref().map(limit_from_row).transpose()
        })
    }

    /// Creates or replaces a limit; its occupied slots stay.
    pub async fn put_global_limit(
        &self,
        workspace_id: &str,
        name: &str,
        slots: i64,
        slot_decay_per_second: Option<f64>,
        active: bool,
    ) -> Result<()> {
        let now = ts(Utc::now());
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO global_concurrency_limits (workspace_id, name, slots, slot_decay_per_second,
               active, created, updated) VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (workspace_id, name) DO UPDATE SET slots = excluded.slots,
               slot_decay_per_second = excluded.slot_decay_per_second,
               active = excluded.active, updated = excluded.updated",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(slots)
        .bind(slot_decay_per_second)
        .bind(active as i64)
        .bind(&now)
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    /// Deletes a limit and gives back its occupied slots.
    pub async fn delete_global_limit(&self, workspace_id: &str, name: &str) -> Result<bool> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        let done = sqlx::query("DELETE FROM global_concurrency_limits WHERE workspace_id = $1 AND name = $2")
            .bind(workspace_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM slots WHERE key = $1")
            .bind(slot_key(workspace_id, name))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
        })
    }

    /// Slots of a limit in use now: occupied by runs, plus a rate limit's decaying ones.
    pub async fn global_limit_in_use(&self, workspace_id: &str, name: &str) -> Result<f64> {
        with_db!(&self.db, pool => {
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM slots WHERE key = $1")
            .bind(slot_key(workspace_id, name))
            .fetch_one(pool)
            .await?;
        let row = sqlx::query(
            "SELECT decaying, decayed_at, slot_decay_per_second FROM global_concurrency_limits
             WHERE workspace_id = $1 AND name = $2",
        )
        .bind(workspace_id)
        .bind(name)
        .fetch_optional(pool)
        .await?;
        let decaying = match row {
            Some(r) => {
                let since = r.col::<Option<String>>("decayed_at")?.map(|t| parse_ts(&t)).transpose()?;
                let rate = r.col::<Option<f64>>("slot_decay_per_second")?.unwrap_or(0.0);
                decayed(r.col("decaying")?, since, rate, Utc::now())
            }
            None => 0.0,
        };
        Ok(held as f64 + decaying)
        })
    }

    /// Occupies `occupy` slots of every limit in `limits` (name, slots) for the lease, all
    /// or none, counting what every node holds. False: one of them is full now.
    pub async fn take_concurrency_slots(
        &self,
        workspace_id: &str,
        limits: &[(String, i64)],
        lease: &str,
        node: &str,
        occupy: u32,
    ) -> Result<bool> {
        let keys: Vec<(String, i64)> = limits
            .iter()
            .map(|(name, slots)| (slot_key(workspace_id, name), *slots))
            .collect();
        self.take_limit_slots(keys, lease, node, occupy).await
    }

    /// Takes the lock of a serializable transaction's key (one slot); false when another
    /// holds it. Given back like concurrency slots, by lease.
    pub async fn take_transaction_lock(
        &self,
        workspace_id: &str,
        key: &str,
        lease: &str,
        node: &str,
    ) -> Result<bool> {
        let keys = vec![(format!("txn:{workspace_id}:{key}"), 1)];
        self.take_limit_slots(keys, lease, node, 1).await
    }

    /// Takes `occupy` slots of every key (each with its number of slots), all or none.
    async fn take_limit_slots(
        &self,
        mut keys: Vec<(String, i64)>,
        lease: &str,
        node: &str,
        occupy: u32,
    ) -> Result<bool> {
        keys.sort();
        let postgres = self.is_postgres();
        let now = ts(Utc::now());
        with_db!(&self.db, pool => {
        // SQLite's write transaction is exclusive already; PostgreSQL takes one lock per
        // key, in key order, so that takers on every node count one at a time.
        let mut tx = pool.begin_write().await?;
        for (key, slots) in &keys {
            if postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
            let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM slots WHERE key = $1")
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
            if held + i64::from(occupy) > *slots {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        for (key, _) in &keys {
            for i in 0..occupy {
                sqlx::query("INSERT INTO slots (key, run_id, node_id, taken) VALUES ($1, $2, $3, $4)")
                    .bind(key)
                    .bind(format!("{lease}:{i}"))
                    .bind(node)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
        })
    }

    /// Gives back the slots of one occupancy.
    pub async fn release_concurrency_slots(&self, lease: &str) -> Result<()> {
        let (from, to) = lease_range(lease);
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("DELETE FROM slots WHERE run_id >= $1 AND run_id < $2")
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
        })
    }

    /// Occupies `occupy` decaying slots of a rate limit. `None`: taken; `Some(s)`: not
    /// before `s` seconds from now (when enough will have decayed).
    pub async fn take_rate_limit(
        &self,
        workspace_id: &str,
        name: &str,
        occupy: u32,
    ) -> Result<Option<f64>> {
        let postgres = self.is_postgres();
        let now = Utc::now();
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        if postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(slot_key(workspace_id, name))
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(
            "SELECT slots, decaying, decayed_at, slot_decay_per_second FROM global_concurrency_limits
             WHERE workspace_id = $1 AND name = $2",
        )
        .bind(workspace_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let slots = row.col::<i64>("slots")? as f64;
        let rate = row.col::<Option<f64>>("slot_decay_per_second")?.unwrap_or(0.0);
        let since = row.col::<Option<String>>("decayed_at")?.map(|t| parse_ts(&t)).transpose()?;
        let in_use = decayed(row.col("decaying")?, since, rate, now);
        let wanted = f64::from(occupy);
        if in_use + wanted > slots {
            tx.rollback().await?;
            let wait = if rate > 0.0 { (in_use + wanted - slots) / rate } else { 1.0 };
            return Ok(Some(wait.max(0.001)));
        }
        sqlx::query(
            "UPDATE global_concurrency_limits SET decaying = $1, decayed_at = $2
             WHERE workspace_id = $3 AND name = $4",
        )
        .bind(in_use + wanted)
        .bind(ts(now))
        .bind(workspace_id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(None)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_decay_at_their_rate_and_never_below_zero() {
        let t = Utc::now();
        let later = t + chrono::Duration::milliseconds(500);
        assert!((decayed(3.0, Some(t), 2.0, later) - 2.0).abs() < 1e-9);
        assert_eq!(decayed(1.0, Some(t), 10.0, later), 0.0);
        assert_eq!(decayed(2.0, None, 10.0, later), 2.0);
    }

    #[test]
    fn a_lease_range_holds_its_rows_only() {
        let (from, to) = lease_range("abc");
        for row in ["abc:0", "abc:17"] {
            assert!(row >= from.as_str() && row < to.as_str(), "{row}");
        }
        for row in ["abcd:0", "ab:0", "abc"] {
            assert!(!(row >= from.as_str() && row < to.as_str()), "{row}");
        }
    }
}
