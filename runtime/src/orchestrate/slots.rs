//! Task slots: the instances that run task attempts (and hooks), shared fairly between
//! workspaces and flow runs.
//!
//! A run may hold at most its share of the slots (`Limits::task_slot_share_per_run`), a
//! workspace its own (`task_slot_share_per_workspace`), so whatever one run or tenant
//! does, slots stay for the others. A slot that frees up goes to the waiting run whose
//! workspace holds the fewest, then the run that holds the fewest; a run's own waiters
//! are served in order, a task that lent its slot while it waited for another task
//! first. A task waiting on another task lends its slot (see [`Slot`]), so tasks that
//! call tasks cannot hold every slot while waiting for one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Who asks for a slot: a flow run of a workspace (subflows count as their own runs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Holder {
    pub workspace: Arc<str>,
    pub run: Arc<str>,
}

pub(crate) struct TaskSlots {
    total: usize,
    per_run: usize,
    per_workspace: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    free: usize,
    by_run: HashMap<Arc<str>, usize>,
    by_workspace: HashMap<Arc<str>, usize>,
    /// Runs with waiters, each with its own queue.
    waiting: HashMap<Arc<str>, Waiting>,
    /// Workspaces with a task-slot quota below the share every workspace has.
    caps: HashMap<Arc<str>, usize>,
}

struct Waiting {
    workspace: Arc<str>,
    queue: VecDeque<oneshot::Sender<()>>,
}

/// A held slot, given back when dropped.
pub(crate) struct Slot {
    slots: Arc<TaskSlots>,
    holder: Holder,
}

impl Slot {
    /// Gives the slot back while its task waits for another (see [`Lent::take_back`]).
    pub(crate) fn lend(self) -> Lent {
        Lent {
            slots: self.slots.clone(),
            holder: self.holder.clone(),
        }
    }
}

/// A slot lent while its task waits: taken back, ahead of the run's other waiters.
pub(crate) struct Lent {
    slots: Arc<TaskSlots>,
    holder: Holder,
}

impl Lent {
    pub(crate) async fn take_back(self) -> Slot {
        match self.slots.try_acquire(&self.holder, true) {
            Ok(slot) => slot,
            Err(busy) => busy.wait().await,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release(&self.holder);
    }
}

/// What [`TaskSlots::try_acquire`] says when no slot can be had now: a place in line.
/// Dropped before its slot is handed over, it leaves the line (a slot handed over
/// meanwhile is given back).
pub(crate) struct Busy {
    /// Slots the run holds, and its share.
    pub held: usize,
    pub share: usize,
    rx: oneshot::Receiver<()>,
    handed: bool,
    slots: Arc<TaskSlots>,
    holder: Holder,
}

impl Busy {
    /// Waits for the slot that will be handed over.
    pub(crate) async fn wait(mut self) -> Slot {
        match (&mut self.rx).await {
            Ok(()) => {
                self.handed = true;
                Slot {
                    slots: self.slots.clone(),
                    holder: self.holder.clone(),
                }
            }
            // The sender is only dropped with the slots themselves.
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if !self.handed && self.rx.try_recv().is_ok() {
            self.slots.release(&self.holder);
        }
    }
}

impl TaskSlots {
    pub(crate) fn new(total: usize, run_share: f64, workspace_share: f64) -> Arc<Self> {
        let share = |f: f64| ((total as f64 * f) as usize).clamp(1, total.max(1));
        Arc::new(Self {
            total,
            per_run: share(run_share),
            per_workspace: share(workspace_share),
            state: Mutex::new(State {
                free: total,
                ..State::default()
            }),
        })
    }

    pub(crate) fn total(&self) -> usize {
        self.total
    }

    pub(crate) fn in_use(&self) -> usize {
        self.total - self.lock().free
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for `holder`, waiting for it when none may be had now.
    pub(crate) async fn acquire(self: &Arc<Self>, holder: &Holder) -> Slot {
        match self.try_acquire(holder, false) {
            Ok(slot) => slot,
            Err(busy) => busy.wait().await,
        }
    }

    /// A slot now, or the place in line to wait for one. `first` puts the waiter ahead
    /// of its run's others (a task taking back the slot it lent).
    pub(crate) fn try_acquire(
        self: &Arc<Self>,
        holder: &Holder,
        first: bool,
    ) -> Result<Slot, Busy> {
        let mut state = self.lock();
        let held = state.by_run.get(&holder.run).copied().unwrap_or(0);
        let ws_held = state
            .by_workspace
            .get(&holder.workspace)
            .copied()
            .unwrap_or(0);
        let queued = state.waiting.contains_key(&holder.run);
        let ws_share = state.workspace_share(&holder.workspace, self.per_workspace);
        if state.free > 0 && held < self.per_run && ws_held < ws_share && !queued {
            state.take(holder);
            return Ok(Slot {
                slots: self.clone(),
                holder: holder.clone(),
            });
        }
        let (tx, rx) = oneshot::channel();
        let waiting = state
            .waiting
            .entry(holder.run.clone())
            .or_insert_with(|| Waiting {
                workspace: holder.workspace.clone(),
                queue: VecDeque::new(),
            });
        if first {
            waiting.queue.push_front(tx);
        } else {
            waiting.queue.push_back(tx);
        }
        // A slot may be free for this run although it queued behind its own waiters.
        self.dispatch(&mut state);
        Err(Busy {
            held,
            share: self.per_run,
            rx,
            handed: false,
            slots: self.clone(),
            holder: holder.clone(),
        })
    }

    /// Bounds the slots a workspace may hold (its quota) below its share; `None` lifts
    /// the bound. Slots it holds past a lowered bound are kept until given back.
    pub(crate) fn set_workspace_cap(&self, workspace: &str, cap: Option<usize>) {
        let mut state = self.lock();
        let changed = match cap {
            Some(n) => state.caps.insert(workspace.into(), n) != Some(n),
            None => state.caps.remove(workspace).is_some(),
        };
        if changed {
            self.dispatch(&mut state);
        }
    }

    /// Slots a workspace holds now.
    pub(crate) fn held_by_workspace(&self, workspace: &str) -> usize {
        self.lock()
            .by_workspace
            .get(workspace)
            .copied()
            .unwrap_or(0)
    }

    fn release(&self, holder: &Holder) {
        let mut state = self.lock();
        state.give(holder);
        self.dispatch(&mut state);
    }

    /// Hands free slots to waiters: the workspace holding the fewest first, then the
    /// run holding the fewest, each within its shares.
    fn dispatch(&self, state: &mut State) {
        while state.free > 0 {
            let pick = state
                .waiting
                .iter()
                .filter_map(|(run, w)| {
                    let held = state.by_run.get(run).copied().unwrap_or(0);
                    let ws_held = state.by_workspace.get(&w.workspace).copied().unwrap_or(0);
                    let ws_share = state.workspace_share(&w.workspace, self.per_workspace);
                    (held < self.per_run && ws_held < ws_share).then_some((
                        ws_held,
                        held,
                        run.clone(),
                    ))
                })
                .min();
            let Some((_, _, run)) = pick else { return };
            let Some(waiting) = state.waiting.get_mut(&run) else {
                return;
            };
            let workspace = waiting.workspace.clone();
            let tx = waiting.queue.pop_front();
            if waiting.queue.is_empty() {
                state.waiting.remove(&run);
            }
            let Some(tx) = tx else { continue };
            let holder = Holder { workspace, run };
            state.take(&holder);
            if tx.send(()).is_err() {
                // The waiter went away (its run stopped): the slot is free again.
                state.give(&holder);
            }
        }
    }
}

impl State {
    fn workspace_share(&self, workspace: &str, share: usize) -> usize {
        self.caps
            .get(workspace)
            .map_or(share, |cap| share.min(*cap))
    }

    fn take(&mut self, holder: &Holder) {
        self.free -= 1;
        *self.by_run.entry(holder.run.clone()).or_default() += 1;
        *self
            .by_workspace
            .entry(holder.workspace.clone())
            .or_default() += 1;
    }

    fn give(&mut self, holder: &Holder) {
        self.free += 1;
        for (map, key) in [
            (&mut self.by_run, &holder.run),
            (&mut self.by_workspace, &holder.workspace),
        ] {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(ws: &str, run: &str) -> Holder {
        Holder {
            workspace: ws.into(),
            run: run.into(),
        }
    }

    #[tokio::test]
    async fn a_run_holds_its_share_and_leaves_the_rest() {
        let slots = TaskSlots::new(8, 0.25, 0.5);
        let greedy = holder("a", "r1");
        let held: Vec<Slot> = (0..2)
            .map(|_| slots.try_acquire(&greedy, false).ok().unwrap())
            .collect();
        let busy = slots
            .try_acquire(&greedy, false)
            .err()
            .expect("over its share");
        assert_eq!((busy.held, busy.share), (2, 2));
        // Another run of the same workspace, up to the workspace's share.
        let sibling = holder("a", "r2");
        let _s: Vec<Slot> = (0..2)
            .map(|_| slots.try_acquire(&sibling, false).ok().unwrap())
            .collect();
        assert!(slots.try_acquire(&holder("a", "r3"), false).is_err());
        // Another workspace still finds slots.
        let neighbour = slots.try_acquire(&holder("b", "n"), false);
        assert!(neighbour.is_ok());
        assert_eq!(slots.in_use(), 5);
        // The greedy run's waiter gets the slot it gives back.
        drop(held);
        let slot = tokio::time::timeout(std::time::Duration::from_secs(5), busy.wait())
            .await
            .expect("handed over");
        assert_eq!(slot.holder, greedy);
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_workspace_holding_the_fewest() {
        let slots = TaskSlots::new(4, 1.0, 1.0);
        let big = holder("big", "r");
        let held: Vec<Slot> = (0..4)
            .map(|_| slots.try_acquire(&big, false).ok().unwrap())
            .collect();
        let big_waiter = slots.try_acquire(&big, false).err().unwrap();
        let small_waiter = slots
            .try_acquire(&holder("small", "s"), false)
            .err()
            .unwrap();
        drop(held.into_iter().next());
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), small_waiter.wait())
            .await
            .expect("the small workspace first");
        assert_eq!(&*got.holder.workspace, "small");
        drop(big_waiter);
    }

    #[tokio::test]
    async fn a_waiter_that_left_does_not_keep_a_slot() {
        let slots = TaskSlots::new(1, 1.0, 1.0);
        let h = holder("a", "r");
        let slot = slots.try_acquire(&h, false).ok().unwrap();
        let gone = slots.try_acquire(&h, false).err().unwrap();
        drop(gone);
        drop(slot);
        assert_eq!(slots.in_use(), 0);
        assert!(slots.try_acquire(&h, false).is_ok());
    }

    #[tokio::test]
    async fn a_workspace_quota_bounds_its_slots_and_raising_it_hands_them_out() {
        let slots = TaskSlots::new(10, 1.0, 1.0);
        slots.set_workspace_cap("a", Some(2));
        let held: Vec<Slot> = (0..2)
            .map(|i| {
                slots
                    .try_acquire(&holder("a", &format!("r{i}")), false)
                    .ok()
                    .unwrap()
            })
            .collect();
        let waiter = slots.try_acquire(&holder("a", "r9"), false).err().unwrap();
        assert_eq!(slots.held_by_workspace("a"), 2);
        assert!(slots.try_acquire(&holder("b", "n"), false).is_ok());
        slots.set_workspace_cap("a", None);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter.wait())
            .await
            .expect("handed over once the quota is lifted");
        assert_eq!(&*got.holder.workspace, "a");
        drop(held);
    }
}
