//! Runs the executor takes back or ends without an instance: suspended runs resumed by
//! the API, paused runs whose timeout passed with nothing waiting on them, and runs that
//! end before (or without) an execution, with their flow's final-state hooks.

use super::Executor;
use crate::model::state::{State, StateType, Transition};
use crate::orchestrate::RESUMING;
use crate::orchestrate::pause;
use crate::store::{FlowRunRecord, PauseResolution, StoreError};

use std::sync::Arc;
use std::time::Duration;

/// A kept (not suspended) pause still open this long past its timeout has no instance
/// left to end it: its process is gone.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

impl Executor {
    /// Takes a suspended run back after a resume: it runs again from the start (within
    /// its limits, like any run), replaying its completed calls and its resumed pause.
    pub async fn resume_suspended(
        self: &Arc<Self>,
        mut run: FlowRunRecord,
    ) -> Result<(), StoreError> {
        let state = State::named(StateType::Scheduled, RESUMING)
            .with_message("resumed; it runs again, replaying what it completed");
        // Claimed by this node in the same statement, so no other node's claim of due
        // runs takes it too.
        let claimed = self
            .store()
            .claim_run(
                &run.id,
                self.node_id(),
                Transition::Forward,
                &[StateType::Paused],
                &state,
            )
            .await?;
        let Some(claimed) = claimed else {
            return Ok(()); // resumed or ended meanwhile
        };
        run = claimed;
        run.expected_start = None;
        self.submit(run, None);
        Ok(())
    }

    /// Ends a run that has no instance here (suspended, waiting, paused on a node that
    /// is gone, or one whose component cannot be loaded) in a final state, then runs the
    /// flow's hooks for that state (`on_failure`, `on_cancellation`, `on_crashed`, ...)
    /// in the background. The state is durable when this returns. False when the run
    /// was final already (it ended meanwhile): then nothing changed and no hook runs.
    pub async fn end_run(
        self: &Arc<Self>,
        run: &FlowRunRecord,
        state: State,
    ) -> Result<bool, StoreError> {
        if !self.store().end_flow_run(&run.id, &state).await? {
            return Ok(false);
        }
        let this = self.clone();
        let run = run.clone();
        tokio::spawn(async move {
            match this.component(&run.component_digest).await {
                Ok(component) => {
                    this.orch.run_final_hooks(&run, component, &state).await;
                    let _ = this.store().flush().await;
                }
                Err(e) => tracing::warn!(
                    "the hooks of flow run {} cannot run, its component is unavailable: {e:#}",
                    run.id
                ),
            }
        });
        Ok(true)
    }

    /// Fails paused runs whose timeout passed with no instance waiting on them:
    /// suspended ones, and paused ones whose process went away. Returns how many.
    pub async fn sweep_pauses(self: &Arc<Self>) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let abandoned =
            now - chrono::Duration::from_std(ABANDONED_AFTER).unwrap_or(chrono::Duration::zero());
        let mut ended = 0;
        for p in self.store().expired_pauses(now, abandoned).await? {
            if !self
                .store()
                .resolve_pause(&p.id, PauseResolution::TimedOut, None, now)
                .await?
            {
                continue; // resumed meanwhile
            }
            let Some(run) = self.store().flow_run(&p.flow_run_id).await? else {
                continue;
            };
            if run.state.kind != StateType::Paused {
                continue;
            }
            let failure = pause::timed_out(&p);
            if self.end_run(&run, State::failed(failure.message)).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }
}
