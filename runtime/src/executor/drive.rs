//! Driving a claimed run: it waits for its time, its overlap policy and its slots, then
//! executes; a cancel before it starts ends it there.

use super::overlap::RunningGuard;
use super::*;
use crate::store::Start;

impl Executor {
    /// Takes a stored run this node claimed: it runs when due and when its slots are
    /// free. Its writes carry the claim's fencing token until it ends.
    pub fn submit(self: &Arc<Self>, run: FlowRunRecord, deployment: Option<DeploymentRecord>) {
        let (tx, rx) = watch::channel(Stop::Go);
        let mine = tx.clone();
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run.id.clone(), tx);
        let fence = (run.node_id.as_deref() == Some(self.node_id())).then_some(run.fence);
        if let Some(fence) = fence {
            self.store().hold(&run.id, fence);
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        tokio::spawn(async move {
            let id = run.id.clone();
            this.clone().drive(run, deployment, rx).await;
            let _ = this.store().flush().await;
            if let Some(fence) = fence {
                this.store().unhold(&id, fence);
            }
            // A suspended run resumed at once may be held again already: keep that one.
            let mut runs = this.runs.lock().unwrap_or_else(|e| e.into_inner());
            if runs.get(&id).is_some_and(|tx| tx.same_channel(&mine)) {
                runs.remove(&id);
            }
        });
    }

    pub(super) async fn drive(
        self: Arc<Self>,
        run: FlowRunRecord,
        deployment: Option<DeploymentRecord>,
        mut stop: watch::Receiver<Stop>,
    ) {
        let waiting = WaitingGuard(&self.waiting);
        let mut shutdown = self.shutdown.subscribe();
        // Its time.
        if let Some(at) = run.expected_start {
            let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = until_stopped(&mut stop) => return self.end_waiting(&run).await,
                _ = until_stopped_node(&mut shutdown) => return,
            }
        }
        let deployment = match deployment {
            Some(d) => Some(d),
            None => match &run.deployment_id {
                Some(id) => self.store().deployment_by_id(id).await.ok().flatten(),
                None => None,
            },
        };
        // Its schedule's overlap policy.
        let overlap = match (&run.schedule_id, &run.deployment_id) {
            (Some(sid), Some(_)) => self.overlap_of(sid).await,
            _ => Overlap::Allow,
        };
        // Checked and registered in one step, so two runs due together cannot both
        // see the other as absent.
        let _running = match &run.deployment_id {
            Some(dep) => match RunningGuard::enter(&self, dep, &run.id, overlap) {
                Ok((guard, previous)) => {
                    if overlap == Overlap::Cancel {
                        for id in previous {
                            self.cancel(&id);
                        }
                    }
                    Some(guard)
                }
                Err(()) => {
                    let mut change = StateChange::new(
                        RunKind::Flow,
                        &run.id,
                        State::named(StateType::Cancelled, "Skipped")
                            .with_message("the previous run of the deployment was still running"),
                    );
                    change.end_time = Some(Utc::now());
                    self.orch.set_flow_state(&run.name, change);
                    let _ = self.store().flush().await;
                    return;
                }
            },
            None => None,
        };
        let due = self.clock.now();
        let mut late = false;
        // Its slots.
        let mut queued = self.slots.queued(None);
        let guard = loop {
            let wants = match self.limits_and_place(&run, deployment.as_ref()).await {
                Ok(Some((w, place))) => {
                    if queued.place() != place.as_ref() {
                        queued = self.slots.queued(place);
                    }
                    Some(w)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::error!("cannot read the limits of flow run {}: {e}", run.id);
                    Some(vec![(NODE.to_owned(), self.max_active)])
                }
            };
            let wants = wants.map(|mut w| {
                if let (Overlap::Queue, Some(dep)) = (overlap, &run.deployment_id) {
                    w.push((format!("overlap:{dep}"), 1));
                }
                w
            });
            if !late && (self.clock.now() - due).to_std().unwrap_or_default() >= LATE_AFTER {
                late = true;
                self.orch.set_flow_state(
                    &run.name,
                    StateChange::new(
                        RunKind::Flow,
                        &run.id,
                        State::named(StateType::Scheduled, "Late"),
                    ),
                );
            }
            let notified = self.slots.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(wants) = &wants
                && let Some(guard) = self.slots.try_take_ranked(wants, queued.place())
            {
                match self.take_shared_slots(&run.id, wants).await {
                    Ok(shared) => break (guard, shared),
                    Err(e) => {
                        if let Some(e) = e {
                            tracing::error!("cannot take the slots of flow run {}: {e}", run.id);
                        }
                        guard.give_back_quietly();
                    }
                }
            }
            tokio::select! {
                _ = notified => {}
                // Limits and pauses change through the API, which wakes every waiting
                // run; another node's change is seen within the poll.
                // Until it shows as Late, it looks at the clock twice a second.
                _ = tokio::time::sleep(if wants.is_some() || !late { Duration::from_millis(500) } else { Duration::from_secs(5) }) => {}
                _ = until_stopped(&mut stop) => return self.end_waiting(&run).await,
                _ = until_stopped_node(&mut shutdown) => return,
            }
        };
        // It leaves its pool's line (the next in line may go).
        drop(queued);
        // A schedule's run starts only if it still is what this node claimed, in one
        // guarded statement: one cancelled meanwhile (its schedule or deployment paused,
        // through any node) or claimed by another node is dropped here, before any guest
        // code runs. Other runs are cancelled only by the node holding them, so their
        // start is just recorded, batched (thousands of webhook runs start a second).
        if run.schedule_id.is_none() {
            self.orch.set_flow_state(
                &run.name,
                StateChange::new(RunKind::Flow, &run.id, State::pending()),
            );
        } else {
            if late {
                let _ = self.store().flush().await;
            }
            loop {
                match self.store().start_run(&run, &State::pending()).await {
                    Ok(Start::Started) => break,
                    Ok(Start::Gone | Start::Cancelled) => return,
                    Err(e) => tracing::error!("cannot start flow run {}: {e}", run.id),
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = until_stopped(&mut stop) => return self.end_waiting(&run).await,
                    _ = until_stopped_node(&mut shutdown) => return,
                }
            }
        }
        drop(waiting);
        self.active.fetch_add(1, Ordering::Relaxed);
        let _active = ActiveGuard(&self);
        let _slots = guard;

        let component = match self.component(&run.component_digest).await {
            Ok(c) => c,
            Err(e) => {
                let state = State::new(crate::model::state::StateType::Crashed)
                    .with_message(format!("{e:#}"));
                if let Err(e) = self.end_run(&run, state).await {
                    tracing::error!("flow run {} could not be stored: {e}", run.id);
                }
                return;
            }
        };
        let settings = RunSettings {
            workspace_id: run.workspace_id.clone(),
            stop: Some(stop),
            memory_bytes: deployment
                .as_ref()
                .and_then(|d| d.memory_mb)
                .map(|mb| (mb.max(1) as usize) << 20),
            timeout_seconds: deployment.as_ref().and_then(|d| d.timeout_seconds),
            allowed_hosts: deployment
                .as_ref()
                .map(|d| d.allowed_hosts.clone())
                .unwrap_or_default(),
            plugin_secrets: deployment
                .as_ref()
                .map(|d| d.plugin_secrets.clone())
                .unwrap_or_default(),
            deployment_id: run.deployment_id.clone(),
            plugin: run
                .tags
                .iter()
                .find_map(|t| t.strip_prefix(super::PLUGIN_TAG))
                .map(std::sync::Arc::from),
        };
        if let Err(e) = self.orch.execute_flow_run(&run, component, settings).await {
            tracing::error!("flow run {} could not be stored: {e}", run.id);
        }
    }

    /// A run cancelled before it started. Guarded like the start: a run already
    /// cancelled (its schedule paused) or taken over keeps the state it has.
    pub(super) async fn end_waiting(&self, run: &FlowRunRecord) {
        // A Late state still queued must not land after this one.
        let _ = self.store().flush().await;
        let state = State::cancelled("the flow run was cancelled before it started");
        if let Err(e) = self.store().end_unstarted_run(run, &state).await {
            tracing::error!("cannot cancel flow run {}: {e}", run.id);
        }
    }
}
