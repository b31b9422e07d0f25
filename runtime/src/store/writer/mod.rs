//! The single writer: applies enqueued writes in batched transactions, and never
//! acknowledges what it did not commit.
//!
//! SQLite has one writer at a time; committing once per state change would cost a
//! commit (and a trip to sqlx's connection thread) per row. The engine enqueues writes
//! without waiting, and this task drains whatever has queued up into one transaction.
//!
//! - A batch that fails with a transient error ([`transient`]: the database restarted,
//!   the connection broke, a lock, a full disk) is applied again, unchanged, with
//!   backoff, until it commits; a broken connection is closed and a new one taken from
//!   the pool. The engine's state writes are never given up for a database that is away.
//! - Only a batch that fails for its rows is applied again write by write (an
//!   acknowledged group as one), and the write that fails alone is dropped.
//! - [`Store::flush`](crate::store::Store::flush) answers once everything enqueued
//!   before it is committed, and fails if any of that was dropped. An acknowledged
//!   group ([`Receipt`]) is answered on its own, and may be withdrawn by its producer
//!   while no attempt at it is under way.
//! - The queue's depth is counted: past a high-water mark (or while the writer fails)
//!   [`WriterHealth::admits`] refuses new work, and past its bound async producers wait
//!   for room. Engine writes of admitted runs are always taken.

mod batch;
mod queue;
mod transient;

pub(super) use queue::Handle;
pub use queue::{NotStored, Receipt, Unavailable, WriterFailing, WriterHealth};

use super::TaskRunRecord;
use super::db::Db;
use super::leases::Fences;
use super::{ArtifactRecord, CacheEntry, FlowRunRecord, LogRecord, StateChange, StoreError};
use batch::{Applied, Conn, Marker, Stage};
use chrono::{DateTime, Utc};
use queue::{HIGH_WATER, Msg, QUEUE_BOUND, Shared, Ticket};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A write to apply.
#[derive(Debug)]
pub enum Write {
    FlowRunCreated(FlowRunRecord),
    TaskRunCreated(TaskRunRecord),
    StateChanged(StateChange),
    Log(LogRecord),
    ArtifactCreated(ArtifactRecord),
    ArtifactUpdated {
        id: String,
        data: Value,
        updated: DateTime<Utc>,
    },
    CachePut(CacheEntry),
}

const MAX_BATCH: usize = 8192;
/// Log lines a batch takes at most (from the backlog where they wait).
const LOG_QUOTA: usize = 2048;

/// An attempt on PostgreSQL that takes longer is abandoned and its connection closed (a
/// peer that stopped answering must not hold the writer forever). SQLite attempts are
/// never abandoned: its statements run on sqlx's thread, which a timeout cannot stop.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// How often old `write_batches` rows are deleted (PostgreSQL).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

pub(super) async fn spawn(db: Db, fences: Arc<Mutex<Fences>>) -> Result<Handle, StoreError> {
    spawn_with(db, fences, QUEUE_BOUND, HIGH_WATER).await
}

async fn spawn_with(
    db: Db,
    fences: Arc<Mutex<Fences>>,
    bound: usize,
    high_water: usize,
) -> Result<Handle, StoreError> {
    // A store that cannot reach its database at all fails to open.
    let conn = acquire(&db).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::new(bound, high_water));
    let writer = Writer {
        db,
        conn: Some(conn),
        fences,
        shared: shared.clone(),
        backoff: BACKOFF_MIN,
        pruned: Instant::now(),
    };
    tokio::spawn(writer.run(rx));
    Ok(Handle::new(tx, shared))
}

/// The pool retries connecting by itself until its own (long) timeout; the writer gives
/// up sooner and retries on its own backoff, staying responsive to withdrawals.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

async fn acquire(db: &Db) -> Result<Conn, sqlx::Error> {
    let conn = async {
        Ok(match db {
            Db::Sqlite(pool) => Conn::Sqlite(pool.acquire().await?),
            Db::Postgres(pool) => Conn::Postgres(pool.acquire().await?),
        })
    };
    tokio::time::timeout(ACQUIRE_TIMEOUT, conn)
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

/// Writes that commit together: one engine write, or an acknowledged group. Each comes
/// with the held flow run it belongs to (`None`: not fenced).
struct Unit {
    writes: Writes,
    ticket: Option<Arc<Ticket>>,
}

enum Writes {
    One(Box<Write>, Option<String>),
    Group(Vec<(Write, Option<String>)>),
}

impl Unit {
    fn items(&self) -> impl Iterator<Item = (&Write, Option<&str>)> {
        let (one, group) = match &self.writes {
            Writes::One(w, owner) => (Some((&**w, owner.as_deref())), &[][..]),
            Writes::Group(g) => (None, g.as_slice()),
        };
        one.into_iter()
            .chain(group.iter().map(|(w, owner)| (w, owner.as_deref())))
    }

    /// Whether the unit stays in the attempt about to be made (false: withdrawn).
    fn take(&self) -> bool {
        self.ticket.as_ref().is_none_or(|t| t.take())
    }

    fn len(&self) -> usize {
        match &self.writes {
            Writes::One(..) => 1,
            Writes::Group(g) => g.len(),
        }
    }

    fn describe(&self) -> String {
        match &self.writes {
            Writes::One(w, _) => format!("{w:?}"),
            Writes::Group(g) => {
                let writes: Vec<&Write> = g.iter().map(|(w, _)| w).collect();
                format!("{} writes committed together: {writes:?}", g.len())
            }
        }
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        // The writer stopped (or panicked) with the group unanswered.
        if let Some(t) = &self.ticket
            && !t.is_final()
        {
            t.dropped("the store's writer stopped".into());
        }
    }
}

/// How a set of units ended.
enum Outcome {
    Committed,
    /// Rejected for its rows; nothing of it was written.
    Refused(sqlx::Error),
    /// The store is closing.
    Closed,
}

struct Writer {
    db: Db,
    conn: Option<Conn>,
    fences: Arc<Mutex<Fences>>,
    shared: Arc<Shared>,
    backoff: Duration,
    pruned: Instant,
}

impl Writer {
    /// Applies batches until closed. Log lines wait in a backlog of their own and go at
    /// most [`LOG_QUOTA`] to a batch, behind every other write that has arrived: a run
    /// that floods its logs delays no one's state changes. A flush (or close) that
    /// arrives behind waiting log lines waits for them.
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut msgs = Vec::with_capacity(MAX_BATCH);
        let mut backlog: VecDeque<Msg> = VecDeque::new();
        loop {
            if backlog.is_empty() {
                if rx.recv_many(&mut msgs, MAX_BATCH).await == 0 {
                    return;
                }
            } else {
                while msgs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(m) => msgs.push(m),
                        Err(_) => break,
                    }
                }
            }
            let mut units = Vec::with_capacity(msgs.len());
            let mut flushes = Vec::new();
            let mut close = None;
            let mut count = 0;
            // Which held run each write belongs to, learning on the way which subflow
            // and task runs belong to which held run.
            {
                let mut fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
                let one = |w: Box<Write>, units: &mut Vec<Unit>, fences: &mut Fences| {
                    let owner = batch::owner_of(&w, fences);
                    units.push(Unit {
                        writes: Writes::One(w, owner),
                        ticket: None,
                    });
                };
                for msg in msgs.drain(..) {
                    match msg {
                        Msg::Write(w) if matches!(*w, Write::Log(_)) => {
                            backlog.push_back(Msg::Write(w))
                        }
                        m @ (Msg::Flush(_) | Msg::Close(_)) if !backlog.is_empty() => {
                            backlog.push_back(m)
                        }
                        Msg::Write(w) => {
                            count += 1;
                            one(w, &mut units, &mut fences);
                        }
                        Msg::Acked { writes, ticket } => {
                            count += writes.len();
                            let group = writes
                                .into_iter()
                                .map(|w| {
                                    let owner = batch::owner_of(&w, &mut fences);
                                    (w, owner)
                                })
                                .collect();
                            units.push(Unit {
                                writes: Writes::Group(group),
                                ticket: Some(ticket),
                            });
                        }
                        Msg::Flush(ack) => flushes.push(ack),
                        Msg::Close(ack) => close = Some(ack),
                    }
                }
                let mut logs = 0;
                while let Some(front) = backlog.front() {
                    if matches!(front, Msg::Write(_)) && logs == LOG_QUOTA {
                        break;
                    }
                    match backlog.pop_front() {
                        Some(Msg::Write(w)) => {
                            logs += 1;
                            count += 1;
                            one(w, &mut units, &mut fences);
                        }
                        Some(Msg::Flush(ack)) => flushes.push(ack),
                        Some(Msg::Close(ack)) => {
                            close = Some(ack);
                            break;
                        }
                        Some(Msg::Acked { .. }) | None => {}
                    }
                }
            }
            if !units.is_empty() {
                self.commit(units).await;
            }
            self.shared.done(count);
            for ack in flushes {
                let _ = ack.send(self.shared.flush_result());
            }
            if let Some(ack) = close {
                if let Some(conn) = self.conn.take() {
                    drop(conn);
                }
                let _ = ack.send(());
                return;
            }
        }
    }

    /// Commits the units in one transaction if their rows allow, else one by one.
    async fn commit(&mut self, mut units: Vec<Unit>) {
        match self.commit_together(&mut units).await {
            Outcome::Committed => {}
            Outcome::Refused(e) if units.len() > 1 => {
                tracing::warn!(
                    "batch of {} writes failed ({e}); applying them one by one",
                    units.iter().map(Unit::len).sum::<usize>()
                );
                for unit in units {
                    let mut one = vec![unit];
                    match self.commit_together(&mut one).await {
                        Outcome::Committed => {}
                        Outcome::Refused(e) => self.drop_units(one, &e.to_string()),
                        Outcome::Closed => self.drop_units(one, "the store is closed"),
                    }
                }
            }
            Outcome::Refused(e) => self.drop_units(units, &e.to_string()),
            Outcome::Closed => self.drop_units(units, "the store is closed"),
        }
    }

    fn drop_units(&self, units: Vec<Unit>, error: &str) {
        for u in units {
            let what = u.describe();
            tracing::error!("write failed and was dropped: {error}: {what}");
            self.shared.dropped(&what);
            if let Some(t) = &u.ticket {
                t.dropped(error.to_owned());
            }
        }
    }

    /// Applies the units in one transaction, again and again through transient errors
    /// (reconnecting when the connection broke), until it commits or is refused.
    async fn commit_together(&mut self, units: &mut Vec<Unit>) -> Outcome {
        let mut marker = Marker::new();
        loop {
            // A connection first: while there is none, the units stay withdrawable.
            let mut conn = match self.conn.take() {
                Some(c) => c,
                None => match acquire(&self.db).await {
                    Ok(c) => c,
                    Err(sqlx::Error::PoolClosed) => return Outcome::Closed,
                    Err(e) => {
                        self.failed(&format!("cannot connect: {e}")).await;
                        continue;
                    }
                },
            };
            // Withdrawn units leave; the others are in flight until this attempt ends.
            units.retain(|u| u.take());
            if units.is_empty() {
                // Everything was withdrawn; while the writer was failing, make sure the
                // database answers again before saying so.
                if self.shared.is_failing() {
                    if let Err(e) = conn.probe(ATTEMPT_TIMEOUT).await {
                        conn.discard();
                        self.failed(&e.to_string()).await;
                        continue;
                    }
                    self.recovered();
                }
                self.conn = Some(conn);
                return Outcome::Committed;
            }
            let items: Vec<(&Write, Option<&str>)> = units.iter().flat_map(Unit::items).collect();
            let prune = conn.is_postgres() && self.pruned.elapsed() >= PRUNE_EVERY;
            let mut stage = Stage::Writing;
            let result = if conn.is_postgres() {
                let attempt =
                    batch::apply(&mut conn, &items, &self.fences, &marker, prune, &mut stage);
                tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
                    .await
                    .unwrap_or_else(|_| Err(timed_out()))
            } else {
                batch::apply(&mut conn, &items, &self.fences, &marker, false, &mut stage).await
            };
            drop(items);
            match result {
                Ok(applied) => {
                    if matches!(applied, Applied::AlreadyCommitted) {
                        tracing::info!(
                            "a batch whose COMMIT went unanswered had committed; not applied again"
                        );
                    }
                    if prune {
                        self.pruned = Instant::now();
                    }
                    self.conn = Some(conn);
                    self.recovered();
                    for u in units.iter() {
                        if let Some(t) = &u.ticket {
                            t.committed();
                        }
                    }
                    return Outcome::Committed;
                }
                Err(e) => {
                    let transient = transient::is_transient(&e);
                    // On PostgreSQL a COMMIT that went unanswered (the connection broke,
                    // the attempt timed out) may have committed, and so may the earlier
                    // attempt a resolving one has not yet settled. An error the server
                    // sent in answer to COMMIT means it did not commit. SQLite answers
                    // every COMMIT (it runs in this process).
                    let maybe_committed = conn.is_postgres()
                        && match stage {
                            Stage::Resolving => true,
                            Stage::Committing => !matches!(e, sqlx::Error::Database(_)),
                            Stage::Writing => false,
                        };
                    // Whatever failed, the connection may be left inside a transaction
                    // (a failed COMMIT leaves sqlx's transaction open on SQLite): the
                    // next attempt takes a fresh one.
                    conn.discard();
                    if !transient && !maybe_committed {
                        // Still in flight: the caller drops them or tries them one by one.
                        return Outcome::Refused(e);
                    }
                    if maybe_committed {
                        // Find out before anything else; the units stay in flight.
                        marker.resolving = true;
                    } else {
                        marker = Marker::new();
                        for u in units.iter() {
                            if let Some(t) = &u.ticket {
                                t.requeue();
                            }
                        }
                    }
                    // (A refusal whose COMMIT answer is unknown is resolved first, too.)
                    self.failed(&e.to_string()).await;
                }
            }
        }
    }

    async fn failed(&mut self, error: &str) {
        if !self.shared.is_failing() {
            tracing::warn!("the store cannot commit ({error}); retrying until it can");
        } else {
            tracing::debug!("the store still cannot commit: {error}");
        }
        self.shared.failing(error);
        let jitter = rand::random_range(0.75..1.25);
        tokio::time::sleep(self.backoff.mul_f64(jitter)).await;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn recovered(&mut self) {
        self.backoff = BACKOFF_MIN;
        if let Some((down, attempts)) = self.shared.recovered() {
            tracing::warn!(
                "the store commits again after {:.1} s and {attempts} failed attempts",
                down.as_secs_f64()
            );
        }
    }
}

/// Whether an error is worth waiting out (see [`transient`]).
pub(super) fn is_transient(e: &sqlx::Error) -> bool {
    transient::is_transient(e)
}

fn timed_out() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the database did not answer within {} s",
            ATTEMPT_TIMEOUT.as_secs()
        ),
    ))
}

#[cfg(test)]
mod tests;
