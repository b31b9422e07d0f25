//! The commands the API (and the UI) give a run: cancel, retry, resume. Each checks the
//! run's state, changes it through the store's guarded statements, and hands the run to
//! whoever must act (the node holding it, or this executor).

use super::*;
use crate::model::state::Transition;
use crate::orchestrate::pause::validate_input;
use crate::store::{PauseResolution, StoreError};
use serde_json::Value;

/// Why a command was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The run is not in a state the command applies to (or left it meanwhile).
    #[error("{0}")]
    Conflict(String),
    /// A resume's input does not match the pause's schema: one message per problem.
    #[error("Invalid input")]
    InvalidInput(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Executor {
    /// Cancels a run: the node holding it stops it (within about a second, on any node);
    /// a run nobody holds (suspended, a subflow, not claimed yet) ends here, with its
    /// flow's `on_cancellation` hooks. A run that reached a final state first keeps it.
    pub async fn cancel_run(self: &Arc<Self>, run: &FlowRunRecord) -> Result<(), CommandError> {
        let already =
            |kind: StateType| CommandError::Conflict(format!("the flow run is already {kind}"));
        if run.state.is_final() {
            return Err(already(run.state.kind));
        }
        if self.cancel(&run.id) || self.store().request_cancel(&run.id).await? {
            return Ok(());
        }
        self.store()
            .resolve_open_pauses(&run.id, PauseResolution::Cancelled)
            .await?;
        if self
            .end_run(run, State::cancelled("cancelled by request"))
            .await?
        {
            return Ok(());
        }
        // It reached a final state meanwhile; that state stands.
        let now = self.store().flow_run(&run.id).await?;
        Err(already(now.map_or(run.state.kind, |r| r.state.kind)))
    }

    /// Runs a failed, crashed or cancelled run again on this node, replaying its
    /// completed tasks. Returns the run as claimed (Scheduled, AwaitingRetry).
    pub async fn retry_run(
        self: &Arc<Self>,
        run: &FlowRunRecord,
    ) -> Result<FlowRunRecord, CommandError> {
        if !Transition::Retry.allows(run.state.kind, StateType::Scheduled) {
            return Err(CommandError::Conflict(format!(
                "only a failed, crashed or cancelled run can be retried; this one is {}",
                run.state.kind
            )));
        }
        if run.parent_flow_run_id.is_some() {
            return Err(CommandError::Conflict(
                "retry the parent flow run instead of its subflow".into(),
            ));
        }
        // A pause the run left open belongs to the execution that ended.
        self.store()
            .resolve_open_pauses(&run.id, PauseResolution::Cancelled)
            .await?;
        let claimed = self
            .store()
            .claim_run(
                &run.id,
                self.node_id(),
                Transition::Retry,
                &[StateType::Failed, StateType::Crashed, StateType::Cancelled],
                &State::awaiting_retry("retried by request"),
            )
            .await?;
        let Some(mut run) = claimed else {
            return Err(CommandError::Conflict(
                "the flow run changed meanwhile; it is no longer final".into(),
            ));
        };
        run.expected_start = None;
        self.submit(run.clone(), None);
        Ok(run)
    }

    /// Resumes a paused or suspended run with `input`, which must match the pause's
    /// schema. A paused run continues in its instance; a suspended one runs again from
    /// the start, replaying what it completed, and its pause returns the input.
    pub async fn resume_run(
        self: &Arc<Self>,
        run: &FlowRunRecord,
        input: Value,
    ) -> Result<(), CommandError> {
        let not_paused = || {
            CommandError::Conflict(format!(
                "only a paused flow run can be resumed; this one is {}",
                run.state.kind
            ))
        };
        if run.state.kind != StateType::Paused {
            return Err(not_paused());
        }
        let Some(pause) = self.store().open_pause(&run.id).await? else {
            return Err(not_paused());
        };
        validate_input(pause.input_schema.as_ref(), &input).map_err(CommandError::InvalidInput)?;
        let resumed = self
            .store()
            .resolve_pause(
                &pause.id,
                PauseResolution::Resumed,
                Some(&input.to_string()),
                Utc::now(),
            )
            .await?;
        if !resumed {
            return Err(CommandError::Conflict(
                "the pause ended meanwhile (resumed, timed out or cancelled)".into(),
            ));
        }
        if pause.suspend {
            self.resume_suspended(run.clone()).await?;
        } else {
            self.orch.notify_resumed(&run.id);
        }
        Ok(())
    }
}
