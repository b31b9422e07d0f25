//! Task runs of a flow run.

use super::db::with_db;
use super::*;

impl Store {
    /// Task runs of a flow run, in call order.
    pub async fn task_runs(&self, flow_run_id: &str) -> Result<Vec<TaskRunRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT * FROM task_runs WHERE flow_run_id = $1 ORDER BY position IS NULL, position, created",
        )
        .bind(flow_run_id)
        .fetch_all(pool)
        .await?;
        rows.iter().map(task_run_from_row).collect()
        })
    }

    pub async fn task_run(&self, id: &str) -> Result<Option<TaskRunRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM task_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| task_run_from_row(&r)).transpose()
        })
    }
}
