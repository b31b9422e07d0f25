//! Flow run states changed outside the batched writer, under the same rule as its
//! writes: a run in a final state stays there.

use super::db::{BeginWrite, insert_state, with_db};
use super::{Result, Store, ts};
use crate::model::state::{State, final_sql};

impl Store {
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
