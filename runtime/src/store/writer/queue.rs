//! The writer's queue as producers see it: enqueuing, acknowledgements, how full it is
//! and whether the writer is keeping up.
//!
//! Engine writes never wait and are never refused (a run already admitted must be able
//! to record what it did). Producers that admit new work look at [`WriterHealth`] first,
//! and may await room ([`Handle::room`]) or their own write's acknowledgement
//! ([`Receipt::wait`]).

use super::Write;
use crate::store::StoreError;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};

/// Writes queued (or being applied) past which admission stops and async producers wait.
pub(crate) const QUEUE_BOUND: usize = 100_000;
/// Writes queued past which the writer counts as falling behind: new work is refused.
pub(crate) const HIGH_WATER: usize = QUEUE_BOUND / 2;

pub(super) enum Msg {
    Write(Box<Write>),
    /// Writes committed together or not at all, acknowledged through their ticket.
    Acked {
        writes: Vec<Write>,
        ticket: Arc<Ticket>,
    },
    Flush(oneshot::Sender<Result<(), StoreError>>),
    /// Let go of the connection and stop.
    Close(oneshot::Sender<()>),
}

/// State shared by the producers and the writer task.
pub(super) struct Shared {
    /// Writes enqueued and not yet committed, dropped or withdrawn.
    depth: AtomicUsize,
    bound: usize,
    high_water: usize,
    /// Signalled when the writer has finished a batch (room may have freed up).
    room: Notify,
    /// Writes dropped for good since the store opened.
    dropped: AtomicU64,
    first_dropped: Mutex<Option<String>>,
    /// Set while the writer cannot commit; details in `trouble`.
    failing: AtomicBool,
    trouble: Mutex<Option<Trouble>>,
    /// Attempts that failed (transiently) since the store opened.
    failed_attempts: AtomicU64,
}

#[derive(Clone)]
struct Trouble {
    since: Instant,
    error: String,
    attempts: u64,
}

impl Shared {
    pub(super) fn new(bound: usize, high_water: usize) -> Self {
        Self {
            depth: AtomicUsize::new(0),
            bound,
            high_water,
            room: Notify::new(),
            dropped: AtomicU64::new(0),
            first_dropped: Mutex::new(None),
            failing: AtomicBool::new(false),
            trouble: Mutex::new(None),
            failed_attempts: AtomicU64::new(0),
        }
    }

    /// `n` enqueued writes were committed, dropped or withdrawn.
    pub(super) fn done(&self, n: usize) {
        if n > 0 {
            self.depth.fetch_sub(n, Ordering::AcqRel);
            self.room.notify_waiters();
        }
    }

    pub(super) fn dropped(&self, what: &str) {
        self.dropped.fetch_add(1, Ordering::AcqRel);
        let mut first = self.first_dropped.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            let mut what = what.to_owned();
            if what.len() > 500 {
                let mut end = 500;
                while !what.is_char_boundary(end) {
                    end -= 1;
                }
                what.truncate(end);
                what.push('…');
            }
            *first = Some(what);
        }
    }

    /// What a flush answers: everything enqueued before it is committed, unless some
    /// write was dropped (ever: a dropped write never becomes durable).
    pub(super) fn flush_result(&self) -> Result<(), StoreError> {
        match self.dropped.load(Ordering::Acquire) {
            0 => Ok(()),
            n => Err(StoreError::WritesDropped {
                count: n,
                first: self
                    .first_dropped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .unwrap_or_default(),
            }),
        }
    }

    /// An attempt failed with `error`; the writer will try again.
    pub(super) fn failing(&self, error: &str) {
        let mut t = self.trouble.lock().unwrap_or_else(|e| e.into_inner());
        match t.as_mut() {
            Some(t) => {
                t.error = error.to_owned();
                t.attempts += 1;
            }
            None => {
                *t = Some(Trouble {
                    since: Instant::now(),
                    error: error.to_owned(),
                    attempts: 1,
                })
            }
        }
        self.failing.store(true, Ordering::Release);
        self.failed_attempts.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the writer is failing (cheap: one load).
    pub(super) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// The writer committed again; returns how long it had been failing.
    pub(super) fn recovered(&self) -> Option<(Duration, u64)> {
        if !self.is_failing() {
            return None;
        }
        self.failing.store(false, Ordering::Release);
        self.trouble
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(|t| (t.since.elapsed(), t.attempts))
    }

    fn health(&self) -> WriterHealth {
        let failing = self
            .is_failing()
            .then(|| {
                self.trouble
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            })
            .flatten()
            .map(|t| WriterFailing {
                seconds: t.since.elapsed().as_secs_f64(),
                attempts: t.attempts,
                error: t.error,
            });
        WriterHealth {
            queued: self.depth.load(Ordering::Acquire),
            high_water: self.high_water,
            bound: self.bound,
            failing,
            dropped: self.dropped.load(Ordering::Acquire),
            failed_attempts: self.failed_attempts.load(Ordering::Acquire),
        }
    }
}

/// How the store's writer is doing, for admission control and monitoring.
#[derive(Debug, Clone, Serialize)]
pub struct WriterHealth {
    /// Writes enqueued and not yet committed.
    pub queued: usize,
    /// Past this many queued writes the writer counts as falling behind.
    pub high_water: usize,
    /// Past this many, async producers wait for room.
    pub bound: usize,
    /// Set while the writer cannot commit (it keeps retrying).
    pub failing: Option<WriterFailing>,
    /// Writes dropped for good (permanent errors) since the store opened.
    pub dropped: u64,
    /// Attempts at a batch that failed and were made again, since the store opened.
    pub failed_attempts: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WriterFailing {
    pub seconds: f64,
    pub attempts: u64,
    pub error: String,
}

/// Why the store does not take new work now, and when to ask again.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct Unavailable {
    pub reason: String,
    pub retry_after: Duration,
}

impl WriterHealth {
    /// Whether new work (a run to create) may be admitted now.
    pub fn admits(&self) -> Result<(), Unavailable> {
        if let Some(f) = &self.failing {
            return Err(Unavailable {
                reason: format!(
                    "the database is not accepting writes (failing for {:.1} s: {})",
                    f.seconds, f.error
                ),
                retry_after: Duration::from_secs(2),
            });
        }
        if self.queued >= self.high_water {
            return Err(Unavailable {
                reason: format!(
                    "the database is behind: {} writes are waiting (the limit is {})",
                    self.queued, self.high_water
                ),
                retry_after: Duration::from_secs(1),
            });
        }
        Ok(())
    }
}

/// Where an acknowledged group of writes is.
const QUEUED: u8 = 0;
const IN_FLIGHT: u8 = 1;
const WITHDRAWN: u8 = 2;
const COMMITTED: u8 = 3;
const DROPPED: u8 = 4;

/// The writer's and the producer's shared view of one group of writes: the producer
/// may withdraw it only while it is queued (not being attempted), so a withdrawn group
/// is never written, and a group being attempted is waited for.
pub(super) struct Ticket {
    state: AtomicU8,
    changed: Notify,
    error: Mutex<Option<String>>,
}

impl Ticket {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(QUEUED),
            changed: Notify::new(),
            error: Mutex::new(None),
        }
    }

    fn set(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// The writer is about to attempt the group: false if it was withdrawn (leave it out).
    pub(super) fn take(&self) -> bool {
        match self
            .state
            .compare_exchange(QUEUED, IN_FLIGHT, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == IN_FLIGHT,
        }
    }

    /// The attempt failed without writing anything: the producer may withdraw again.
    pub(super) fn requeue(&self) {
        if self
            .state
            .compare_exchange(IN_FLIGHT, QUEUED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.changed.notify_waiters();
        }
    }

    pub(super) fn committed(&self) {
        self.set(COMMITTED);
    }

    pub(super) fn dropped(&self, error: String) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        self.set(DROPPED);
    }

    #[cfg(test)]
    pub(super) fn in_flight(&self) -> bool {
        self.state.load(Ordering::Acquire) == IN_FLIGHT
    }

    pub(super) fn is_final(&self) -> bool {
        matches!(
            self.state.load(Ordering::Acquire),
            WITHDRAWN | COMMITTED | DROPPED
        )
    }
}

/// A group of writes enqueued with [`crate::store::Store::write_acked`].
pub struct Receipt {
    pub(super) ticket: Arc<Ticket>,
}

/// Why an acknowledged write is not in the database.
#[derive(Debug, thiserror::Error)]
pub enum NotStored {
    /// Not committed by the deadline: withdrawn before any attempt, never written.
    #[error("the database did not commit the write in time; it was withdrawn, nothing was written")]
    TimedOut,
    /// The database refused it for good.
    #[error("the write was refused: {0}")]
    Refused(String),
}

impl Receipt {
    /// Waits until the writes are committed. At `deadline` they are withdrawn if no
    /// attempt at them is under way; if one is, it is waited for (its outcome decides).
    pub async fn wait(self, deadline: Instant) -> Result<(), NotStored> {
        let deadline = tokio::time::Instant::from_std(deadline);
        loop {
            let changed = self.ticket.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.ticket.state.load(Ordering::Acquire) {
                COMMITTED => return Ok(()),
                WITHDRAWN => return Err(NotStored::TimedOut),
                DROPPED => {
                    let error = self.ticket.error.lock().unwrap_or_else(|e| e.into_inner());
                    return Err(NotStored::Refused(error.clone().unwrap_or_default()));
                }
                QUEUED if tokio::time::Instant::now() >= deadline => {
                    if self
                        .ticket
                        .state
                        .compare_exchange(QUEUED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return Err(NotStored::TimedOut);
                    }
                    continue;
                }
                _ => {}
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// The producers' end of the writer.
#[derive(Clone)]
pub(in crate::store) struct Handle {
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Shared>,
}

impl Handle {
    pub(super) fn new(tx: mpsc::UnboundedSender<Msg>, shared: Arc<Shared>) -> Self {
        Self { tx, shared }
    }

    pub(in crate::store) fn send(&self, write: Write) {
        self.shared.depth.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.tx.send(Msg::Write(Box::new(write))) {
            self.shared.done(1);
            let mpsc::error::SendError(Msg::Write(w)) = e else {
                unreachable!("a write was sent")
            };
            tracing::error!("store writer has stopped; a write was dropped: {w:?}");
            self.shared.dropped(&format!("{w:?}"));
        }
    }

    /// Enqueues writes to commit in one transaction, acknowledged through the receipt.
    pub(in crate::store) fn send_acked(&self, writes: Vec<Write>) -> Result<Receipt, StoreError> {
        let ticket = Arc::new(Ticket::new());
        let n = writes.len();
        self.shared.depth.fetch_add(n, Ordering::AcqRel);
        let msg = Msg::Acked {
            writes,
            ticket: ticket.clone(),
        };
        if self.tx.send(msg).is_err() {
            self.shared.done(n);
            return Err(StoreError::WriterGone);
        }
        Ok(Receipt { ticket })
    }

    pub(in crate::store) async fn flush(&self) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .map_err(|_| StoreError::WriterGone)?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    pub(in crate::store) async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Close(ack)).is_ok() {
            let _ = done.await;
        }
    }

    pub(in crate::store) fn health(&self) -> WriterHealth {
        self.shared.health()
    }

    /// Whether the queue is at its bound (cheap: one load).
    pub(in crate::store) fn is_full(&self) -> bool {
        self.shared.depth.load(Ordering::Acquire) >= self.shared.bound
    }

    /// Returns once the queue is under its bound.
    pub(in crate::store) async fn room(&self) {
        while self.is_full() {
            let freed = self.shared.room.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if !self.is_full() {
                return;
            }
            freed.await;
        }
    }
}
