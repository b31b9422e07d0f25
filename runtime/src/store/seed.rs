//! Synthetic history for `weir bench ui`: flow runs with their task runs, log lines,
//! state history and artifacts, generated inside the database (one `INSERT … SELECT`
//! per table and slice of runs), so that millions of rows take minutes, not hours.
//!
//! Run `i` of `n` is created at `start + i * step` milliseconds; ids are UUIDv7 of that
//! time (so ids sort by creation, as the runs list expects), unique by `i` and the row's
//! index within the run.

use super::db::{Db, with_db};
use super::*;

/// What to generate.
pub struct Seed {
    pub workspace_id: String,
    /// `(deployment id, flow name, component digest)`; run `i` belongs to `i % len`.
    pub deployments: Vec<(String, String, String)>,
    pub runs: u64,
    pub tasks_per_run: u64,
    pub logs_per_run: u64,
    /// Creation time of run 0 and the time between runs, in Unix milliseconds.
    pub start_ms: i64,
    pub step_ms: i64,
}

const ADJECTIVES: [&str; 20] = [
    "amber", "brave", "calm", "daring", "eager", "fancy", "gentle", "happy", "icy", "jolly",
    "keen", "lively", "mellow", "nimble", "odd", "proud", "quiet", "rapid", "shy", "tidy",
];
const ANIMALS: [&str; 20] = [
    "otter", "lynx", "heron", "badger", "falcon", "gecko", "ibis", "jackal", "koala", "lemur",
    "marten", "newt", "okapi", "puffin", "quail", "raven", "stoat", "tapir", "viper", "walrus",
];
const TASKS: [&str; 3] = ["extract", "transform", "load"];

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// SQL for one dialect.
struct Sql {
    postgres: bool,
}

impl Sql {
    /// Rows `i` in `[lo, hi)` with their `ms`, and `k` in `[0, per)`.
    fn rows(&self, lo: u64, hi: u64, per: u64, s: &Seed) -> String {
        if self.postgres {
            format!(
                "(SELECT i, {start}::bigint + i * {step}::bigint AS ms FROM generate_series({lo}::bigint, {last}::bigint) AS i) r
                 CROSS JOIN generate_series(0::bigint, {per_last}::bigint) AS k",
                start = s.start_ms,
                step = s.step_ms,
                last = hi - 1,
                per_last = per.max(1) - 1
            )
        } else {
            format!(
                "(WITH RECURSIVE n(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {hi})
                  SELECT i, {start} + i * {step} AS ms FROM n) r,
                 (WITH RECURSIVE m(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM m WHERE k + 1 < {per})
                  SELECT k FROM m) j",
                start = s.start_ms,
                step = s.step_ms,
                per = per.max(1)
            )
        }
    }

    fn hex(&self, e: &str, width: usize) -> String {
        if self.postgres {
            format!("lpad(to_hex(({e})::bigint), {width}, '0')")
        } else {
            format!("printf('%0{width}x', {e})")
        }
    }

    /// A UUIDv7-shaped id: the time, then `a` and `b` (each below 4096) with a variant
    /// nibble between them, and `i`.
    fn id(&self, a: &str, variant: char, b: &str) -> String {
        format!(
            "{} || '-' || {} || '-7' || {} || '-{variant}' || {} || '-' || {}",
            self.hex("ms / 65536", 8),
            self.hex("ms % 65536", 4),
            self.hex(a, 3),
            self.hex(b, 3),
            self.hex("i", 12)
        )
    }

    fn flow_id(&self) -> String {
        self.id("i % 4096", '8', "(i / 4096) % 4096")
    }

    /// The `k`-th task run of run `i` (`k` below 16,777,216).
    fn task_id(&self, k: &str) -> String {
        self.id(&format!("({k}) % 4096"), '9', &format!("({k}) / 4096"))
    }

    /// The RFC 3339 text of Unix milliseconds `e`, as the store writes it.
    fn ts(&self, e: &str) -> String {
        if self.postgres {
            format!(
                "to_char(to_timestamp(({e})::bigint / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || '.' || lpad((({e})::bigint % 1000)::text, 3, '0') || '000Z'"
            )
        } else {
            format!(
                "strftime('%Y-%m-%dT%H:%M:%S', ({e}) / 1000, 'unixepoch') || printf('.%03d000Z', ({e}) % 1000)"
            )
        }
    }

    /// The `index`-th of `items` (a literal list).
    fn pick(&self, items: &[&str], index: &str) -> String {
        let mut out = format!("CASE ({index}) % {}", items.len());
        for (n, item) in items.iter().enumerate() {
            out.push_str(&format!(" WHEN {n} THEN {}", lit(item)));
        }
        out.push_str(" END");
        out
    }

    fn text(&self, e: &str) -> String {
        if self.postgres {
            format!("({e})::text")
        } else {
            format!("({e})")
        }
    }
}

impl Store {
    /// Generates the runs `[lo, hi)` of `seed` with their task runs, logs, state history
    /// and artifacts, in one transaction.
    pub async fn seed_runs(&self, seed: &Seed, lo: u64, hi: u64) -> Result<()> {
        let sql = Sql {
            postgres: matches!(self.db, Db::Postgres(_)),
        };
        let ws = lit(&seed.workspace_id);
        let deployment = |what: usize| {
            let items: Vec<&str> = seed
                .deployments
                .iter()
                .map(|d| match what {
                    0 => d.0.as_str(),
                    1 => d.1.as_str(),
                    _ => d.2.as_str(),
                })
                .collect();
            sql.pick(&items, "i")
        };
        let state = |states: [&str; 4]| {
            format!(
                "CASE WHEN i % 100 < 4 THEN '{}' WHEN i % 100 = 4 THEN '{}' WHEN i % 100 = 5 THEN '{}' ELSE '{}' END",
                states[0], states[1], states[2], states[3]
            )
        };
        let flows = format!(
            "INSERT INTO flow_runs (id, name, flow_name, component_digest, parameters, tags,
               state_type, state_name, state_message, state_timestamp, run_count, result, created,
               start_time, end_time, workspace_id, deployment_id, expected_start)
             SELECT {id}, {adj} || '-' || {animal} || '-' || {i}, {flow}, {digest},
               '{{\"name\": \"bench\", \"n\": ' || {i} || '}}',
               '[\"bench\", \"team-' || {team} || '\"]',
               {state_type}, {state_name},
               CASE WHEN i % 100 < 5 THEN 'Task run load-9 failed: connection reset' ELSE NULL END,
               {end}, 1, CASE WHEN i % 100 >= 6 THEN '{{\"rows\": ' || {i} || '}}' ELSE NULL END,
               {created}, {started}, {end}, {ws}, {deployment_id}, {created}
             FROM {rows}",
            id = sql.flow_id(),
            adj = sql.pick(&ADJECTIVES, "i"),
            animal = sql.pick(&ANIMALS, "i / 20"),
            i = sql.text("i"),
            team = sql.text("i % 10"),
            flow = deployment(1),
            digest = deployment(2),
            deployment_id = deployment(0),
            state_type = state(["FAILED", "CRASHED", "CANCELLED", "COMPLETED"]),
            state_name = state(["Failed", "Crashed", "Cancelled", "Completed"]),
            created = sql.ts("ms"),
            started = sql.ts("ms + 20"),
            end = sql.ts(&format!("ms + 40 + {} * 140", seed.tasks_per_run)),
            rows = sql.rows(lo, hi, 1, seed),
        );
        let history = format!(
            "INSERT INTO run_states (run_id, type, name, message, timestamp)
             SELECT {id},
               CASE k WHEN 0 THEN 'PENDING' WHEN 1 THEN 'RUNNING' ELSE {state_type} END,
               CASE k WHEN 0 THEN 'Pending' WHEN 1 THEN 'Running' ELSE {state_name} END,
               NULL, {at}
             FROM {rows} ORDER BY i, k",
            id = sql.flow_id(),
            state_type = state(["FAILED", "CRASHED", "CANCELLED", "COMPLETED"]),
            state_name = state(["Failed", "Crashed", "Cancelled", "Completed"]),
            at = sql.ts(&format!(
                "ms + CASE k WHEN 0 THEN 0 WHEN 1 THEN 20 ELSE 40 + {} * 140 END",
                seed.tasks_per_run
            )),
            rows = sql.rows(lo, hi, 3, seed),
        );
        let last = seed.tasks_per_run.saturating_sub(1);
        let tasks = format!(
            "INSERT INTO task_runs (id, flow_run_id, position, task_name, name, input_hash,
               cache_key, tags, workspace_id, upstream, state_type, state_name, state_message,
               state_timestamp, run_count, result, created, start_time, end_time)
             SELECT {id}, {flow_id}, k, {task}, {task} || '-' || {k}, 'h' || {i}, NULL, '[]', {ws},
               CASE WHEN k > 0 THEN '[\"' || {prev} || '\"]' ELSE NULL END,
               CASE WHEN i % 100 < 5 AND k = {last} THEN 'FAILED' ELSE 'COMPLETED' END,
               CASE WHEN i % 100 < 5 AND k = {last} THEN 'Failed' ELSE 'Completed' END,
               CASE WHEN i % 100 < 5 AND k = {last} THEN 'connection reset' ELSE NULL END,
               {end}, 1, '{{\"ok\": true}}', {created}, {started}, {end}
             FROM {rows} ORDER BY i, k",
            id = sql.task_id("k"),
            prev = sql.task_id("k - 1"),
            flow_id = sql.flow_id(),
            task = sql.pick(&TASKS, "k"),
            k = sql.text("k"),
            i = sql.text("i % 1000"),
            created = sql.ts("ms + 25 + k * 140"),
            started = sql.ts("ms + 30 + k * 140"),
            end = sql.ts("ms + 150 + k * 140"),
            rows = sql.rows(lo, hi, seed.tasks_per_run, seed),
        );
        let logs = format!(
            "INSERT INTO logs (flow_run_id, task_run_id, level, message, timestamp)
             SELECT {flow_id},
               CASE WHEN k > 0 AND k <= {tasks} THEN {task_id} ELSE NULL END,
               CASE WHEN k = {last_log} AND i % 100 < 5 THEN 'ERROR' WHEN k % 7 = 3 THEN 'DEBUG' ELSE 'INFO' END,
               'step ' || {k} || ' of run ' || {i} || ': processed ' || {n} || ' records',
               {at}
             FROM {rows} ORDER BY i, k",
            flow_id = sql.flow_id(),
            tasks = seed.tasks_per_run,
            task_id = sql.task_id("k - 1"),
            last_log = seed.logs_per_run.saturating_sub(1),
            k = sql.text("k"),
            i = sql.text("i"),
            n = sql.text("(i * 7 + k) % 1000"),
            at = sql.ts("ms + 20 + k * 7"),
            rows = sql.rows(lo, hi, seed.logs_per_run, seed),
        );
        // One markdown artifact per ten runs, under 500 keys.
        let artifacts = format!(
            "INSERT INTO artifacts (id, key, type, description, data, flow_run_id, task_run_id,
               created, updated, workspace_id)
             SELECT {id}, 'report-' || {key}, 'markdown', 'Nightly report',
               '\"# Report ' || {i} || '\\n\\n| rows | status |\\n|---|---|\\n| ' || {i} || ' | ok |\"',
               {flow_id}, NULL, {at}, {at}, {ws}
             FROM {rows} WHERE i % 10 = 0",
            id = sql.id("i % 4096", 'a', "(i / 4096) % 4096"),
            key = sql.text("(i / 10) % 500"),
            i = sql.text("i"),
            flow_id = sql.flow_id(),
            at = sql.ts("ms + 100"),
            rows = sql.rows(lo, hi, 1, seed),
        );
        with_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for q in [&flows, &history, &tasks, &logs, &artifacts] {
                sqlx::query(sqlx::AssertSqlSafe(q.as_str()))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Refreshes the planner's statistics after a bulk load.
    pub async fn analyze(&self) -> Result<()> {
        with_db!(&self.db, pool => {
            sqlx::query("ANALYZE").execute(pool).await?;
            Ok(())
        })
    }
}
