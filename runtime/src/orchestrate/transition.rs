//! The one way a run's state changes while Weir runs it: the change is checked against
//! the allowed transitions (`model::state::Transition`), handed to the store's writer
//! (which applies it, with its history row, under the SQL guard that keeps final states
//! final), and reported as an event. Changes made outside an execution (ending a run
//! nobody holds, a retry, crash recovery) are the store's guarded statements
//! (`Store::end_flow_run`, `Store::claim_run`, `Store::crash_unfinished_children`).

use super::{Event, Orchestrator};
use crate::store::{RunKind, StateChange, Write};

impl Orchestrator {
    /// Changes the state of the flow run `run_name`.
    pub fn set_flow_state(&self, run_name: &str, change: StateChange) {
        debug_assert_eq!(change.kind, RunKind::Flow);
        let state = change.state.clone();
        let id = change.run_id.clone();
        self.store.write(Write::StateChanged(change));
        self.emit(|| Event::FlowRunState {
            id,
            name: run_name.to_owned(),
            state,
        });
    }

    /// Changes the state of task run `task_run_name` of flow run `flow_run_name`.
    pub(crate) fn set_task_state(
        &self,
        flow_run_name: &str,
        task_run_name: &str,
        change: StateChange,
    ) {
        debug_assert_eq!(change.kind, RunKind::Task);
        let state = change.state.clone();
        self.store.write(Write::StateChanged(change));
        self.emit(|| Event::TaskRunState {
            flow_run_name: flow_run_name.to_owned(),
            name: task_run_name.to_owned(),
            state,
        });
    }
}
