//! Automations, the events their triggers counted, and automation runs: one per event
//! that fired an automation (unique, so an event fires it once whichever node sees it),
//! leased to the node executing its actions, with each action's result.

use super::db::{BeginWrite, DbRow, with_db};
use super::*;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct AutomationRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    /// The trigger, as JSON (`model::automation::Trigger`).
    pub trigger: Value,
    /// The actions, as a JSON list (`model::automation::Action`).
    pub actions: Value,
    /// Events before this time no longer count towards the threshold (it fired then).
    #[serde(skip)]
    pub fired_at: Option<DateTime<Utc>>,
    /// sha256 of the token of its URL `/hooks/automations/<token>` (event triggers).
    #[serde(skip)]
    pub webhook_token_hash: Option<String>,
    /// The URL's HMAC secret, sealed; `None` for unsigned posts.
    #[serde(skip)]
    pub webhook_secret: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

fn automation_from_row(r: &impl DbRow) -> Result<AutomationRecord> {
    Ok(AutomationRecord {
        id: r.col("id")?,
        workspace_id: r.col("workspace_id")?,
        name: r.col("name")?,
        description: r.col("description")?,
        enabled: r.flag("enabled")?,
        trigger: parse_json(&r.col::<String>("trigger_spec")?)?,
        actions: parse_json(&r.col::<String>("actions")?)?,
        fired_at: r
            .col::<Option<String>>("fired_at")?
            .map(|t| parse_ts(&t))
            .transpose()?,
        webhook_token_hash: r.col("webhook_token_hash")?,
        webhook_secret: r.col("webhook_secret")?,
        created: parse_ts(&r.col::<String>("created")?)?,
        updated: parse_ts(&r.col::<String>("updated")?)?,
    })
}

/// Where an automation run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutomationRunState {
    /// Its actions are to run (again, after `next_attempt`).
    Pending,
    /// Every action is done.
    Completed,
    /// An action failed on its last attempt.
    Failed,
}

impl AutomationRunState {
    fn as_str(self) -> &'static str {
        match self {
            AutomationRunState::Pending => "pending",
            AutomationRunState::Completed => "completed",
            AutomationRunState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => AutomationRunState::Pending,
            "completed" => AutomationRunState::Completed,
            "failed" => AutomationRunState::Failed,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown automation run state {other:?}"
                )));
            }
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AutomationRunRecord {
    pub id: String,
    pub automation_id: String,
    pub workspace_id: String,
    /// What fired it, unique per automation: the same event fires it once.
    pub event_key: String,
    /// The event (the flow run and state, or the posted body).
    pub event: Value,
    pub state: AutomationRunState,
    pub attempts: i64,
    pub next_attempt: DateTime<Utc>,
    /// One entry per action done: `{"type", "ok", "message", "output"}`.
    pub results: Value,
    pub error: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

fn run_from_row(r: &impl DbRow) -> Result<AutomationRunRecord> {
    Ok(AutomationRunRecord {
        id: r.col("id")?,
        automation_id: r.col("automation_id")?,
        workspace_id: r.col("workspace_id")?,
        event_key: r.col("event_key")?,
        event: parse_json(&r.col::<String>("event")?)?,
        state: AutomationRunState::parse(&r.col::<String>("state")?)?,
        attempts: r.col("attempts")?,
        next_attempt: parse_ts(&r.col::<String>("next_attempt")?)?,
        results: parse_json(&r.col::<String>("results")?)?,
        error: r.col("error")?,
        created: parse_ts(&r.col::<String>("created")?)?,
        updated: parse_ts(&r.col::<String>("updated")?)?,
    })
}

/// A flow run's state change, as automations watch them.
#[derive(Debug, Clone)]
pub struct StateChangeRow {
    pub seq: i64,
    pub run_id: String,
    pub run_name: String,
    pub flow_name: String,
    pub workspace_id: String,
    pub deployment_id: Option<String>,
    pub deployment: Option<String>,
    pub tags: Vec<String>,
    pub state_type: String,
    pub state_name: String,
    pub message: Option<String>,
    pub timestamp: DateTime<Utc>,
}

fn change_from_row(r: &impl DbRow) -> Result<StateChangeRow> {
    Ok(StateChangeRow {
        seq: r.col("seq")?,
        run_id: r.col("run_id")?,
        run_name: r.col("run_name")?,
        flow_name: r.col("flow_name")?,
        workspace_id: r.col("workspace_id")?,
        deployment_id: r.col("deployment_id")?,
        deployment: r.col("deployment")?,
        tags: tags_from(&r.col::<String>("tags")?)?,
        state_type: r.col("type")?,
        state_name: r.col("name")?,
        message: r.col("message")?,
        timestamp: parse_ts(&r.col::<String>("timestamp")?)?,
    })
}

/// The columns of a flow run's state change, from `run_states rs` joined to its run.
macro_rules! changes {
    ($where:literal) => {
        concat!(
            "SELECT rs.seq, rs.run_id, fr.name AS run_name, fr.flow_name, fr.workspace_id, \
                    fr.deployment_id, d.name AS deployment, fr.tags, rs.type, rs.name, \
                    rs.message, rs.timestamp \
             FROM run_states rs JOIN flow_runs fr ON fr.id = rs.run_id \
             LEFT JOIN deployments d ON d.id = fr.deployment_id ",
            $where
        )
    };
}

impl Store {
    pub async fn insert_automation(&self, a: &AutomationRecord) -> Result<Saved> {
        with_db!(&self.db, pool => {
        let done = sqlx::query(
            "INSERT INTO automations (id, workspace_id, name, description, enabled, trigger_spec,
               actions, created, updated, webhook_token_hash, webhook_secret)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (workspace_id, name) DO NOTHING",
        )
        .bind(&a.id)
        .bind(&a.workspace_id)
        .bind(&a.name)
        .bind(&a.description)
        .bind(a.enabled as i64)
        .bind(a.trigger.to_string())
        .bind(a.actions.to_string())
        .bind(ts(a.created))
        .bind(ts(a.updated))
        .bind(&a.webhook_token_hash)
        .bind(&a.webhook_secret)
        .execute(pool)
        .await?;
        Ok(if done.rows_affected() == 1 { Saved::Done } else { Saved::NameTaken })
        })
    }

    /// Saves an automation's name, description, switch, trigger and actions.
    pub async fn update_automation(&self, a: &AutomationRecord) -> Result<Saved> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        let taken: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM automations WHERE workspace_id = $1 AND name = $2 AND id != $3",
        )
        .bind(&a.workspace_id)
        .bind(&a.name)
        .bind(&a.id)
        .fetch_one(&mut *tx)
        .await?
        .col("n")?;
        if taken > 0 {
            return Ok(Saved::NameTaken);
        }
        let done = sqlx::query(
            "UPDATE automations SET name = $1, description = $2, enabled = $3, trigger_spec = $4,
               actions = $5, updated = $6, webhook_token_hash = $9, webhook_secret = $10
             WHERE id = $7 AND workspace_id = $8",
        )
        .bind(&a.name)
        .bind(&a.description)
        .bind(a.enabled as i64)
        .bind(a.trigger.to_string())
        .bind(a.actions.to_string())
        .bind(ts(a.updated))
        .bind(&a.id)
        .bind(&a.workspace_id)
        .bind(&a.webhook_token_hash)
        .bind(&a.webhook_secret)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if done.rows_affected() == 1 { Saved::Done } else { Saved::Missing })
        })
    }

    /// An automation of the workspace, by id or by name.
    pub async fn automation(
        &self,
        workspace_id: &str,
        id_or_name: &str,
    ) -> Result<Option<AutomationRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT * FROM automations WHERE workspace_id = $1 AND (id = $2 OR name = $2)
             ORDER BY (id = $2) DESC LIMIT 1",
        )
        .bind(workspace_id)
        .bind(id_or_name)
        .fetch_optional(pool)
        .await?;
        row.map(|r| automation_from_row(&r)).transpose()
        })
    }

    /// The automation whose event URL has this token (by its hash).
    pub async fn automation_by_webhook(
        &self,
        token_hash: &str,
    ) -> Result<Option<AutomationRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM automations WHERE webhook_token_hash = $1")
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
        row.map(|r| automation_from_row(&r)).transpose()
        })
    }

    /// The workspace's automations by name, after `after`.
    pub async fn automations_page(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AutomationRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT * FROM automations WHERE workspace_id = $1 AND name > $2
             ORDER BY name LIMIT $3",
        )
        .bind(workspace_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(pool)
        .await?;
        rows.iter().map(automation_from_row).collect()
        })
    }

    /// Every enabled automation, of every workspace (what the nodes watch for).
    pub async fn enabled_automations(&self) -> Result<Vec<AutomationRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query("SELECT * FROM automations WHERE enabled = 1 ORDER BY id LIMIT 100000")
            .fetch_all(pool)
            .await?;
        rows.iter().map(automation_from_row).collect()
        })
    }

    /// Deletes an automation and its runs; false when there is none.
    pub async fn delete_automation(&self, workspace_id: &str, id: &str) -> Result<bool> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        let done = sqlx::query("DELETE FROM automations WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM automation_runs WHERE automation_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM automation_events WHERE automation_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
        })
    }

    /// Counts an event towards an automation's threshold; returns how many counted events
    /// it has since `since` (its window, after it last fired), this one included.
    pub async fn count_automation_event(
        &self,
        automation_id: &str,
        key: &str,
        occurred: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<i64> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query(
            "INSERT INTO automation_events (automation_id, event_key, occurred) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(automation_id)
        .bind(key)
        .bind(ts(occurred))
        .execute(&mut *tx)
        .await?;
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM automation_events e JOIN automations a ON a.id = e.automation_id
             WHERE e.automation_id = $1 AND e.occurred >= $2
               AND (a.fired_at IS NULL OR e.occurred > a.fired_at)",
        )
        .bind(automation_id)
        .bind(ts(since))
        .fetch_one(&mut *tx)
        .await?
        .col("n")?;
        // Events older than any window are no use.
        sqlx::query(
            "DELETE FROM automation_events WHERE automation_id = $1 AND occurred < $2",
        )
        .bind(automation_id)
        .bind(ts(occurred - chrono::Duration::days(31)))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
        })
    }

    /// Records an automation run for an event, and that the automation fired then; false
    /// when that event already fired it (on this node or another).
    pub async fn create_automation_run(&self, r: &AutomationRunRecord) -> Result<bool> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO automation_runs (id, automation_id, workspace_id, event_key, event, state,
               attempts, next_attempt, results, error, created, updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (automation_id, event_key) DO NOTHING",
        )
        .bind(&r.id)
        .bind(&r.automation_id)
        .bind(&r.workspace_id)
        .bind(&r.event_key)
        .bind(r.event.to_string())
        .bind(r.state.as_str())
        .bind(r.attempts)
        .bind(ts(r.next_attempt))
        .bind(r.results.to_string())
        .bind(&r.error)
        .bind(ts(r.created))
        .bind(ts(r.updated))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            sqlx::query("UPDATE automations SET fired_at = $1 WHERE id = $2")
                .bind(ts(r.created))
                .bind(&r.automation_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
        })
    }

    /// Takes the next due automation run for `node` until `until` (a lease: a node that
    /// dies leaves it to another once the lease is over).
    pub async fn claim_automation_run(
        &self,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<AutomationRunRecord>> {
        // A read first: most passes find nothing, and take no write lock for it.
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT id FROM automation_runs WHERE state = 'pending' AND next_attempt <= $1
               AND (lease_until IS NULL OR lease_until < $1)
             ORDER BY next_attempt LIMIT 1",
        )
        .bind(ts(now))
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.col("id")?;
        // The lease is taken by one guarded statement: of two nodes, one gets it.
        let done = sqlx::query(
            "UPDATE automation_runs SET lease_owner = $1, lease_until = $2
             WHERE id = $3 AND state = 'pending' AND (lease_until IS NULL OR lease_until < $4)",
        )
        .bind(node)
        .bind(ts(until))
        .bind(&id)
        .bind(ts(now))
        .execute(pool)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT * FROM automation_runs WHERE id = $1")
            .bind(&id)
            .fetch_one(pool)
            .await?;
        Ok(Some(run_from_row(&row)?))
        })
    }

    /// Saves an automation run's progress and gives its lease back (when `node` holds it).
    pub async fn save_automation_run(&self, node: &str, r: &AutomationRunRecord) -> Result<bool> {
        with_db!(&self.db, pool => {
        let done = sqlx::query(
            "UPDATE automation_runs SET state = $1, attempts = $2, next_attempt = $3, results = $4,
               error = $5, updated = $6, lease_owner = NULL, lease_until = NULL
             WHERE id = $7 AND lease_owner = $8",
        )
        .bind(r.state.as_str())
        .bind(r.attempts)
        .bind(ts(r.next_attempt))
        .bind(r.results.to_string())
        .bind(&r.error)
        .bind(ts(r.updated))
        .bind(&r.id)
        .bind(node)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() == 1)
        })
    }

    /// Extends `node`'s lease on an automation run; false when it no longer holds it.
    pub async fn renew_automation_lease(
        &self,
        node: &str,
        id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        with_db!(&self.db, pool => {
        let done = sqlx::query(
            "UPDATE automation_runs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3",
        )
        .bind(ts(until))
        .bind(id)
        .bind(node)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() == 1)
        })
    }

    /// Keeps the results of the actions done so far (the lease stays).
    pub async fn note_automation_progress(
        &self,
        node: &str,
        id: &str,
        results: &Value,
    ) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "UPDATE automation_runs SET results = $1, updated = $2 WHERE id = $3 AND lease_owner = $4",
        )
        .bind(results.to_string())
        .bind(ts(Utc::now()))
        .bind(id)
        .bind(node)
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    /// The latest run of each of the workspace's automations named in `ids`, in one
    /// round trip (the automations list shows them).
    pub async fn latest_automation_runs(
        &self,
        workspace_id: &str,
        ids: &[String],
    ) -> Result<Vec<AutomationRunRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        with_db!(&self.db, pool, DB => {
        let mut q = sqlx::QueryBuilder::<DB>::new(
            "SELECT ar.* FROM automations a JOIN automation_runs ar ON ar.id = (
               SELECT r.id FROM automation_runs r
               WHERE r.workspace_id = a.workspace_id AND r.automation_id = a.id
               ORDER BY r.id DESC LIMIT 1)
             WHERE a.workspace_id = ",
        );
        q.push_bind(workspace_id.to_owned()).push(" AND a.id IN (");
        let mut ids_list = q.separated(", ");
        for id in ids {
            ids_list.push_bind(id.clone());
        }
        q.push(")");
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(run_from_row).collect()
        })
    }

    /// An automation's runs, newest first, before the run `before` (an id).
    pub async fn automation_runs(
        &self,
        workspace_id: &str,
        automation_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AutomationRunRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT * FROM automation_runs WHERE workspace_id = $1 AND automation_id = $2
               AND ($3 = '' OR id < $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(workspace_id)
        .bind(automation_id)
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(pool)
        .await?;
        rows.iter().map(run_from_row).collect()
        })
    }

    /// The newest state change's position (where a node starts watching).
    pub async fn last_state_change(&self) -> Result<i64> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS n FROM run_states")
            .fetch_one(pool)
            .await?;
        Ok(row.col::<i64>("n")?)
        })
    }

    /// Flow runs' state changes after position `after`, in order, at most `limit`.
    pub async fn flow_state_changes(&self, after: i64, limit: i64) -> Result<Vec<StateChangeRow>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(changes!(
            "WHERE rs.seq > $1 AND fr.workspace_id IS NOT NULL ORDER BY rs.seq LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?;
        rows.iter().map(change_from_row).collect()
        })
    }

    /// The last state change of each flow run of a workspace that has been in a state
    /// (by type, and by name when one is given) since before `before`, oldest first, at
    /// most `limit`; stays the automation fired for already (`stuck:<seq>`) left out.
    pub async fn runs_in_state_since(
        &self,
        automation_id: &str,
        workspace_id: &str,
        state_type: &str,
        state_name: Option<&str>,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<StateChangeRow>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(changes!(
            "WHERE fr.workspace_id = $1 AND fr.state_type = $2 AND fr.state_timestamp < $3
               AND rs.seq = (SELECT MAX(s2.seq) FROM run_states s2 WHERE s2.run_id = fr.id)
               AND ($5 = '' OR LOWER(rs.name) = LOWER($5))
               AND NOT EXISTS (SELECT 1 FROM automation_runs ar
                               WHERE ar.automation_id = $6 AND ar.event_key = 'stuck:' || rs.seq)
             ORDER BY fr.state_timestamp LIMIT $4"
        ))
        .bind(workspace_id)
        .bind(state_type)
        .bind(ts(before))
        .bind(limit)
        .bind(state_name.unwrap_or(""))
        .bind(automation_id)
        .fetch_all(pool)
        .await?;
        rows.iter().map(change_from_row).collect()
        })
    }
}
