//! Flow runs: idempotent creation, reads, the filtered and paged lists of the API,
//! timings and counts for metrics, and states changed outside the batched writer, under
//! the same rule as its writes: a run in a final state stays there.

use super::db::{BeginWrite, Db, DbRow, insert_state, with_db};
use super::*;
use crate::model::state::final_sql;
use sqlx::QueryBuilder;

/// Filters of `GET /api/flow-runs`.
#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    /// Any of these state types (all when empty).
    pub states: Vec<StateType>,
    /// A state name, such as `Late`.
    pub state_name: Option<String>,
    pub deployment_id: Option<String>,
    pub flow: Option<String>,
    pub tag: Option<String>,
    /// Runs whose name contains this text (case-insensitive for ASCII).
    pub name_contains: Option<String>,
    /// Only runs that are not subflow runs.
    pub top_level: bool,
    /// Leaves out scheduled runs expected to start after this time.
    pub scheduled_until: Option<DateTime<Utc>>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Runs older than this one (ids sort by creation time).
    pub before_id: Option<String>,
    pub limit: i64,
}

/// How a name search finds its candidates.
enum NameSearch {
    /// Every run the other filters leave, newest first.
    Scan,
    /// The runs the trigram index of names gives.
    Indexed,
}

/// Names the upkeep adds to the trigram index per pass.
pub const NAMES_PER_PASS: i64 = 20_000;

/// Candidates from the trigram index past which a text is common: walking the workspace's
/// runs newest first (names are in the index walked) finds a page of it sooner than
/// reading and sorting that many candidates. A candidate costs about 30 times what a
/// walked run costs, and a page of `limit` takes about `limit * runs / candidates` runs
/// to walk: the two cost the same at `sqrt(limit * runs / 30)` candidates.
fn common_name(limit: i64, runs: i64) -> i64 {
    let even = ((limit.max(1) as f64) * (runs.max(0) as f64) / 30.0).sqrt();
    (even as i64).clamp(100, 5_000)
}

/// An FTS5 query for names containing `text` (three characters or more): up to four of
/// its trigrams spread over it, all required. It finds a superset; LIKE then checks.
fn trigram_query(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let last = chars.len() - 3;
    let mut starts: Vec<usize> = (0..4).map(|k| k * last / 3).collect();
    starts.dedup();
    starts
        .iter()
        .map(|&i| {
            let t: String = chars[i..i + 3].iter().collect();
            format!("\"{}\"", t.replace('"', "\"\""))
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// How far [`Store::insert_flow_runs_once_until`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum InsertStage {
    /// Waiting for a connection, or beginning: nothing sent that could be written.
    Connecting,
    /// Inserting: an earlier transaction inserting the same keys is waited for here.
    Inserting,
    /// The inserts went through (any earlier transaction with the same keys is over).
    Inserted,
    /// COMMIT sent.
    Committing,
}

impl Store {
    /// Stores a run unless its deployment already has a run with the same idempotency
    /// key; returns the stored run either way, and whether it is new.
    pub async fn insert_flow_run_once(&self, run: &FlowRunRecord) -> Result<(FlowRunRecord, bool)> {
        let mut out = self
            .insert_flow_runs_once(std::slice::from_ref(run))
            .await?;
        Ok(out.pop().expect("one run in, one out"))
    }

    /// [`Store::insert_flow_run_once`] for many runs: a few multi-row statements in
    /// one transaction, whatever the number of runs.
    pub async fn insert_flow_runs_once(
        &self,
        runs: &[FlowRunRecord],
    ) -> Result<Vec<(FlowRunRecord, bool)>> {
        self.insert_flow_runs_once_until(runs, None, &mut InsertStage::Connecting)
            .await
    }

    /// [`Store::insert_flow_runs_once`] that waits for a connection until `until` at
    /// most (then fails with nothing written), and tells in `stage` how far it got, so
    /// that a caller can tell a failure that wrote nothing from one that may have
    /// committed (a COMMIT left unanswered).
    pub(crate) async fn insert_flow_runs_once_until(
        &self,
        runs: &[FlowRunRecord],
        until: Option<std::time::Instant>,
        stage: &mut InsertStage,
    ) -> Result<Vec<(FlowRunRecord, bool)>> {
        *stage = InsertStage::Connecting;
        if runs.is_empty() {
            // No transaction: on SQLite it would take the write lock for nothing.
            return Ok(Vec::new());
        }
        with_db!(&self.db, pool, DB => {
        let mut tx = match until {
            Some(t) => tokio::time::timeout_at(t.into(), pool.begin_write())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??,
            None => pool.begin_write().await?,
        };
        *stage = InsertStage::Inserting;
        let mut inserted = std::collections::HashSet::new();
        for chunk in runs.chunks(500) {
            let mut q = QueryBuilder::<DB>::new(
                "INSERT INTO flow_runs (id, name, flow_name, flow_function, component_digest,
                   parameters, tags,
                   workspace_id, deployment_id, idempotency_key, expected_start, schedule_id,
                   node_id, fence,
                   state_type, state_name, state_message, state_timestamp, run_count, created) ",
            );
            q.push_values(chunk, |mut b, run| {
                b.push_bind(run.id.clone())
                    .push_bind(run.name.clone())
                    .push_bind(run.flow_name.clone())
                    .push_bind(run.flow_function.clone())
                    .push_bind(run.component_digest.clone())
                    .push_bind(run.parameters.to_string())
                    .push_bind(serde_json::to_string(&run.tags).unwrap_or_default())
                    .push_bind(run.workspace_id.clone())
                    .push_bind(run.deployment_id.clone())
                    .push_bind(run.idempotency_key.clone())
                    .push_bind(run.expected_start.map(ts))
                    .push_bind(run.schedule_id.clone())
                    .push_bind(run.node_id.clone())
                    .push_bind(run.fence)
                    .push_bind(run.state.kind.as_str())
                    .push_bind(run.state.name.clone())
                    .push_bind(run.state.message.clone())
                    .push_bind(ts(run.state.timestamp))
                    .push_bind(0i64)
                    .push_bind(ts(run.created));
            });
            q.push(
                " ON CONFLICT (deployment_id, idempotency_key) WHERE idempotency_key IS NOT NULL
                  DO NOTHING RETURNING id",
            );
            for row in q.build().fetch_all(&mut *tx).await? {
                inserted.insert(row.col::<String>("id")?);
            }
        }
        *stage = InsertStage::Inserted;
        let new: Vec<&FlowRunRecord> = runs.iter().filter(|r| inserted.contains(&r.id)).collect();
        for chunk in new.chunks(500) {
            let mut q = QueryBuilder::<DB>::new(
                "INSERT INTO run_states (run_id, type, name, message, timestamp) ",
            );
            q.push_values(chunk, |mut b, run| {
                b.push_bind(run.id.clone())
                    .push_bind(run.state.kind.as_str())
                    .push_bind(run.state.name.clone())
                    .push_bind(run.state.message.clone())
                    .push_bind(ts(run.state.timestamp));
            });
            q.build().execute(&mut *tx).await?;
        }
        let mut out = Vec::with_capacity(runs.len());
        for run in runs {
            if inserted.contains(&run.id) {
                out.push((run.clone(), true));
            } else {
                let row = sqlx::query(
                    "SELECT * FROM flow_runs WHERE deployment_id = $1 AND idempotency_key = $2",
                )
                .bind(&run.deployment_id)
                .bind(&run.idempotency_key)
                .fetch_one(&mut *tx)
                .await?;
                out.push((flow_run_from_row(&row)?, false));
            }
        }
        *stage = InsertStage::Committing;
        tx.commit().await?;
        Ok(out)
        })
    }

    pub async fn flow_run(&self, id: &str) -> Result<Option<FlowRunRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM flow_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| flow_run_from_row(&r)).transpose()
        })
    }

    /// A flow run of the workspace.
    pub async fn workspace_flow_run(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Option<FlowRunRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM flow_runs WHERE id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(workspace_id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| flow_run_from_row(&r)).transpose()
        })
    }

    /// Flow runs of a workspace, newest first.
    ///
    /// Every filter has an index to walk newest first, so a page costs about the same
    /// at a million runs as at a hundred: the tag filter walks the run tags table, name
    /// search (three characters or more) the trigram index of names.
    pub async fn list_flow_runs(
        &self,
        workspace_id: &str,
        f: &RunFilter,
    ) -> Result<Vec<FlowRunRecord>> {
        let postgres = self.db.is_postgres();
        // A text with a NUL matches nothing stored (PostgreSQL takes no NUL in text, and
        // SQLite's full-text query none in its terms): answered without asking either.
        let texts = [
            &f.name_contains,
            &f.flow,
            &f.tag,
            &f.state_name,
            &f.deployment_id,
        ];
        if texts.into_iter().flatten().any(|t| t.contains('\0')) {
            return Ok(Vec::new());
        }
        // Name search on SQLite: a rare text takes its candidates from the trigram index,
        // a common one (the index has many candidates) scans newest first, where it soon
        // fills the page. PostgreSQL's planner weighs its trigram index itself.
        let how = match &f.name_contains {
            Some(text) if !postgres && text.chars().count() >= 3 => {
                while self.index_run_names(NAMES_PER_PASS).await? == NAMES_PER_PASS {}
                let common = common_name(f.limit, self.flow_runs_rowid().await?);
                if self.name_candidates(text, common).await? < common {
                    NameSearch::Indexed
                } else {
                    NameSearch::Scan
                }
            }
            _ => NameSearch::Scan,
        };
        with_db!(&self.db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new("SELECT r.* FROM ");
        if let Some(tag) = &f.tag {
            // Driven by the tag's rows, newest first (CROSS JOIN keeps SQLite's order).
            q.push(if postgres {
                "flow_run_tags t JOIN flow_runs r ON r.id = t.run_id WHERE t.workspace_id = "
            } else {
                "flow_run_tags t CROSS JOIN flow_runs r ON r.id = t.run_id WHERE t.workspace_id = "
            })
                .push_bind(workspace_id.to_owned())
                .push(" AND t.tag = ")
                .push_bind(tag.clone())
                .push(" AND r.workspace_id = ")
                .push_bind(workspace_id.to_owned());
        } else {
            q.push("flow_runs r WHERE r.workspace_id = ")
                .push_bind(workspace_id.to_owned());
        }
        if !f.states.is_empty() {
            q.push(" AND r.state_type IN (");
            let mut list = q.separated(", ");
            for state in &f.states {
                list.push_bind(state.as_str());
            }
            q.push(")");
        }
        if let Some(name) = &f.state_name {
            q.push(" AND r.state_name = ").push_bind(name.clone());
        }
        if let Some(d) = &f.deployment_id {
            q.push(" AND r.deployment_id = ").push_bind(d.clone());
        }
        if let Some(flow) = &f.flow {
            q.push(" AND r.flow_name = ").push_bind(flow.clone());
        }
        if let Some(text) = &f.name_contains {
            match how {
                NameSearch::Scan => {}
                NameSearch::Indexed => {
                    q.push(" AND r.rowid IN (SELECT rowid FROM flow_run_names WHERE flow_run_names MATCH ")
                        .push_bind(trigram_query(text))
                        .push(")");
                }
            }
            // LIKE with the pattern's own wildcards escaped: the text is matched as is.
            let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            q.push(if postgres { " AND r.name ILIKE " } else { " AND r.name LIKE " })
                .push_bind(format!("%{escaped}%"))
                .push(" ESCAPE '\\'");
        }
        if f.top_level {
            q.push(" AND r.parent_flow_run_id IS NULL");
        }
        if let Some(t) = f.scheduled_until {
            q.push(" AND NOT (r.state_type = 'SCHEDULED' AND r.expected_start > ")
                .push_bind(ts(t))
                .push(")");
        }
        if let Some(t) = f.since {
            q.push(" AND r.created >= ").push_bind(ts(t));
        }
        if let Some(t) = f.until {
            q.push(" AND r.created < ").push_bind(ts(t));
        }
        if let Some(id) = &f.before_id {
            q.push(if f.tag.is_some() { " AND t.run_id < " } else { " AND r.id < " })
                .push_bind(id.clone());
        }
        q.push(if f.tag.is_some() {
            " ORDER BY t.run_id DESC LIMIT "
        } else {
            " ORDER BY r.id DESC LIMIT "
        })
        .push_bind(f.limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(flow_run_from_row).collect()
        })
    }

    /// Adds at most `max` runs not yet in the trigram index of names to it, oldest first,
    /// and returns how many (SQLite; PostgreSQL's index is kept by the database). The
    /// server's upkeep calls this every second, so the index costs one batch a second
    /// instead of a write per run.
    pub async fn index_run_names(&self, max: i64) -> Result<i64> {
        let Db::Sqlite(pool) = &self.db else {
            return Ok(0);
        };
        let behind: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM flow_runs WHERE rowid >
               (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'run_names_rowid'))",
        )
        .fetch_one(pool)
        .await?;
        if !behind {
            return Ok(0);
        }
        let mut conn = pool.acquire().await?;
        let done: Result<i64> = async {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            let (n, last): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MAX(rowid) FROM (SELECT rowid FROM flow_runs
                   WHERE rowid > (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'run_names_rowid')
                   ORDER BY rowid LIMIT $1)",
            )
            .bind(max)
            .fetch_one(&mut *conn)
            .await?;
            if let Some(last) = last {
                sqlx::query(
                    "INSERT INTO flow_run_names (rowid, name) SELECT rowid, name FROM flow_runs
                     WHERE rowid > (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'run_names_rowid')
                       AND rowid <= $1",
                )
                .bind(last)
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE settings SET value = $1 WHERE key = 'run_names_rowid'")
                    .bind(last.to_string())
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok(n)
        }
        .await;
        if done.is_err() {
            // A write that failed (a full disk) can leave the connection inside its
            // transaction: it is closed instead of going back to the pool.
            drop(conn.detach());
        }
        done
    }

    /// The highest rowid of flow runs (SQLite): about how many there are, at the cost of
    /// one seek.
    async fn flow_runs_rowid(&self) -> Result<i64> {
        let Db::Sqlite(pool) = &self.db else {
            return Ok(0);
        };
        let n: Option<i64> = sqlx::query_scalar("SELECT MAX(rowid) FROM flow_runs")
            .fetch_one(pool)
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// How many runs (of any workspace, up to `max`) the trigram index of names gives
    /// for `text` (SQLite).
    async fn name_candidates(&self, text: &str, max: i64) -> Result<i64> {
        with_db!(&self.db, pool => {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT rowid FROM flow_run_names WHERE flow_run_names MATCH $1
             LIMIT $2)",
        )
        .bind(trigram_query(text))
        .bind(max)
        .fetch_one(pool)
        .await?;
        Ok(n)
        })
    }

    /// Subflow runs of a flow run, in call order.
    pub async fn subflow_runs(&self, parent_id: &str) -> Result<Vec<FlowRunRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT * FROM flow_runs WHERE parent_flow_run_id = $1 ORDER BY parent_position, created",
        )
        .bind(parent_id)
        .fetch_all(pool)
        .await?;
        rows.iter().map(flow_run_from_row).collect()
        })
    }

    /// Every state a run went through, oldest first.
    pub async fn state_history(&self, run_id: &str) -> Result<Vec<State>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT type, name, message, timestamp FROM run_states WHERE run_id = $1 ORDER BY seq",
        )
        .bind(run_id)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| state_from_row(r, "type", "name", "message", "timestamp"))
            .collect()
        })
    }

    /// Creation time, end time and state type of every deployment run created at or
    /// after `since` (for the load benchmark's report).
    pub async fn run_timings(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, Option<DateTime<Utc>>, String)>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT created, end_time, state_type FROM flow_runs
             WHERE deployment_id IS NOT NULL AND created >= $1",
        )
        .bind(ts(since))
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_ts(&r.col::<String>("created")?)?,
                    super::parse_opt_ts(r.col("end_time")?)?,
                    r.col("state_type")?,
                ))
            })
            .collect()
        })
    }

    /// Flow runs of a workspace created in `[since, until)` per time bucket (the first
    /// `prefix` characters of the creation time: 13 for hours, 16 for minutes) and state
    /// type, from the index alone.
    pub async fn run_counts(
        &self,
        workspace_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        prefix: i64,
    ) -> Result<Vec<(String, String, i64)>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT substr(created, 1, CAST($4 AS INTEGER)) AS bucket, state_type, COUNT(*) AS n
             FROM flow_runs WHERE workspace_id = $1 AND created >= $2 AND created < $3
             GROUP BY bucket, state_type",
        )
        .bind(workspace_id)
        .bind(ts(since))
        .bind(ts(until))
        .bind(prefix)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.col("bucket")?, r.col("state_type")?, r.col("n")?)))
            .collect()
        })
    }

    /// For every run of a schedule due after `since`: how long after its fire time it
    /// was created (negative: ahead of time), in seconds.
    pub async fn schedule_run_lead_times(&self, since: DateTime<Utc>) -> Result<Vec<f64>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT created, expected_start FROM flow_runs
             WHERE schedule_id IS NOT NULL AND expected_start > $1",
        )
        .bind(ts(since))
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| {
                let created = parse_ts(&r.col::<String>("created")?)?;
                let due = parse_ts(&r.col::<String>("expected_start")?)?;
                Ok((created - due).num_microseconds().unwrap_or(0) as f64 / 1e6)
            })
            .collect()
        })
    }

    /// Flow runs by state type, over every workspace (for metrics).
    pub async fn flow_run_counts(&self) -> Result<Vec<(String, i64)>> {
        with_db!(&self.db, pool => {
        let rows =
            sqlx::query("SELECT state_type, COUNT(*) AS n FROM flow_runs GROUP BY state_type")
                .fetch_all(pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.col("state_type")?, r.col("n")?)))
            .collect()
        })
    }

    /// Renames a flow or task run (a run-name function's result): the writes queued
    /// before are flushed first, so the run's row exists, then one UPDATE.
    pub async fn rename_run(&self, kind: RunKind, run_id: &str, name: &str) -> Result<()> {
        self.flush().await?;
        let sql = match kind {
            RunKind::Flow => "UPDATE flow_runs SET name = $1 WHERE id = $2",
            RunKind::Task => "UPDATE task_runs SET name = $1 WHERE id = $2",
        };
        with_db!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(sql).bind(name).bind(run_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Ends a flow run in the final `state` unless it is final already (it completed,
    /// failed or was ended by someone else first): one guarded UPDATE and its history
    /// row, committed when this returns. Returns whether the run changed.
    pub async fn end_flow_run(&self, run_id: &str, state: &State) -> Result<bool> {
        debug_assert!(state.is_final(), "end_flow_run takes a final state");
        let at = ts(state.timestamp);
        with_db!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(concat!(
                "UPDATE flow_runs SET state_type = $1, state_name = $2, state_message = $3,
                   state_timestamp = $4, end_time = $4
                 WHERE id = $5 AND state_type NOT IN ",
                final_sql!()
            ))
            .bind(state.kind.as_str())
            .bind(&state.name)
            .bind(&state.message)
            .bind(&at)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            insert_state!(&mut *tx, run_id, state, &at)?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_common_where_walking_costs_what_its_candidates_cost() {
        // A million runs, a page of 51: about 1,300 candidates.
        assert_eq!(common_name(51, 1_000_000), 1303);
        // Few runs: walking them all is cheap, the index is used for only the rarest.
        assert_eq!(common_name(51, 1_000), 100);
        assert_eq!(common_name(0, 0), 100);
        // Never more candidates read than this.
        assert_eq!(common_name(500, i64::MAX), 5_000);
    }

    #[test]
    fn trigram_queries_take_up_to_four_trigrams_spread_over_the_text() {
        assert_eq!(trigram_query("abc"), "\"abc\"");
        assert_eq!(
            trigram_query("brave-otter"),
            "\"bra\" AND \"ave\" AND \"-ot\" AND \"ter\""
        );
        assert_eq!(trigram_query("a\"bc"), "\"a\"\"b\" AND \"\"\"bc\"");
    }
}
