//! The writer against real databases: SQLite files in a temporary directory, and
//! PostgreSQL (a database of its own on `WEIR_TEST_POSTGRES_URL`) when
//! `WEIR_TEST_DB=postgres`.

use super::*;
use crate::model::state::{State, StateType};
use crate::store::{RunKind, Store};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Connection, SqliteConnection};
use std::path::Path;

fn run(id: &str, key: Option<&str>) -> FlowRunRecord {
    let now = Utc::now();
    FlowRunRecord {
        id: id.to_owned(),
        name: format!("run-{id}"),
        flow_name: "f".into(),
        flow_function: None,
        component_digest: "d".into(),
        parameters: serde_json::json!({}),
        tags: vec![],
        parent_flow_run_id: None,
        parent_position: None,
        state: State::new(StateType::Scheduled),
        run_count: 0,
        result: None,
        created: now,
        start_time: None,
        end_time: None,
        workspace_id: Some("ws".into()),
        deployment_id: Some("dep".into()),
        idempotency_key: key.map(str::to_owned),
        expected_start: None,
        schedule_id: None,
        node_id: None,
        fence: 0,
        crash_count: 0,
    }
}

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn store_on(db: Db, bound: usize, high_water: usize) -> Store {
    let fences = Arc::<Mutex<Fences>>::default();
    let writer = spawn_with(db.clone(), fences.clone(), bound, high_water)
        .await
        .expect("writer");
    Store {
        db,
        writer,
        recent_cache: Arc::default(),
        fences,
    }
}

/// A SQLite store whose connections wait `busy` for a lock (the real store waits 10 s).
async fn sqlite(path: &Path, busy: Duration, bound: usize) -> Store {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(busy);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::migrate!("../migrations/sqlite")
        .run(&pool)
        .await
        .unwrap();
    store_on(Db::Sqlite(pool), bound, bound / 2).await
}

/// Another connection holding SQLite's write lock until dropped or released.
async fn lock(path: &Path) -> SqliteConnection {
    let mut conn = SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

async fn release(mut conn: SqliteConnection) {
    sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
}

/// A fresh PostgreSQL database, or `None` (with the reason printed) when the tests do
/// not run on PostgreSQL.
async fn postgres() -> Option<(Store, String)> {
    if std::env::var("WEIR_TEST_DB").map_or(true, |v| v != "postgres") {
        eprintln!("skipped: set WEIR_TEST_DB=postgres (and run scripts/postgres) to run it");
        return None;
    }
    let admin = std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://weir:weir@127.0.0.1:5432/postgres".into());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let name = format!("weir_u_{}", uuid::Uuid::now_v7().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let store = Store::open_postgres(&format!("{base}/{name}"))
        .await
        .unwrap();
    Some((store, name))
}

async fn drop_postgres(store: Store, name: &str) {
    store.close().await;
    let admin = std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://weir:weir@127.0.0.1:5432/postgres".into());
    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await;
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn completed(run_id: &str) -> Write {
    let mut c = StateChange::new(RunKind::Flow, run_id, State::new(StateType::Completed));
    c.end_time = Some(Utc::now());
    Write::StateChanged(c)
}

async fn dropped_write_fails_the_flush(store: &Store) {
    // A run holding the idempotency key a later write reuses: that write is refused for
    // its row (a unique violation), for good.
    store
        .insert_flow_run_once(&run(&id(), Some("k")))
        .await
        .unwrap();
    let good = id();
    store.write(Write::FlowRunCreated(run(&id(), Some("k"))));
    store.write(Write::FlowRunCreated(run(&good, None)));
    store.write(completed(&good));
    let err = store
        .flush()
        .await
        .expect_err("a write before the flush was dropped");
    assert!(
        matches!(err, StoreError::WritesDropped { count: 1, .. }),
        "{err}"
    );
    // Its neighbours in the batch were written, one by one.
    let stored = store.flow_run(&good).await.unwrap().expect("the good run");
    assert_eq!(stored.state.kind, StateType::Completed);
    // Later flushes cannot promise more: the dropped write never becomes durable.
    assert!(store.flush().await.is_err());
    // An acknowledged group refused for its rows says so.
    let receipt = store
        .write_acked(vec![Write::FlowRunCreated(run(&id(), Some("k")))])
        .unwrap();
    let refused = receipt
        .wait(Instant::now() + Duration::from_secs(10))
        .await
        .expect_err("refused");
    assert!(matches!(refused, NotStored::Refused(_)), "{refused}");
    let health = store.writer_health();
    assert_eq!(health.dropped, 2);
    assert!(health.failing.is_none(), "{health:?}");
    assert!(health.admits().is_ok());
}

#[tokio::test]
async fn a_flush_after_a_dropped_write_is_an_err_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("weir.db"))
        .await
        .unwrap();
    dropped_write_fails_the_flush(&store).await;
}

#[tokio::test]
async fn a_flush_after_a_dropped_write_is_an_err_postgres() {
    let Some((store, name)) = postgres().await else {
        return;
    };
    dropped_write_fails_the_flush(&store).await;
    drop_postgres(store, &name).await;
}

/// PostgreSQL kills every connection of the database (as a restart does): the writer's
/// next batch fails on its dead connection, is retried on a new one, and commits.
#[tokio::test]
async fn a_batch_is_retried_after_reconnecting_postgres() {
    let Some((store, name)) = postgres().await else {
        return;
    };
    let first = id();
    store.write(Write::FlowRunCreated(run(&first, None)));
    store.flush().await.unwrap();
    let Db::Postgres(pool) = &store.db else {
        unreachable!()
    };
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "the writer's connection was there");
    let before = store.writer_health().failed_attempts;
    let second = id();
    store.write(Write::FlowRunCreated(run(&second, None)));
    store.write(completed(&second));
    let flushed = tokio::time::timeout(Duration::from_secs(30), store.flush()).await;
    flushed.expect("the writer recovers").unwrap();
    let health = store.writer_health();
    assert!(
        health.failed_attempts > before,
        "the batch met the dead connection and was retried: {health:?}"
    );
    assert!(health.failing.is_none(), "{health:?}");
    let stored = store.flow_run(&second).await.unwrap().expect("committed");
    assert_eq!(stored.state.kind, StateType::Completed);
    assert_eq!(store.state_history(&second).await.unwrap().len(), 2);
    drop_postgres(store, &name).await;
}

/// A batch whose COMMIT went unanswered is applied again with the same marker: the
/// retry finds it committed and writes nothing twice.
#[tokio::test]
async fn a_retry_of_a_committed_batch_writes_nothing_twice_postgres() {
    let Some((store, name)) = postgres().await else {
        return;
    };
    let Db::Postgres(pool) = &store.db else {
        unreachable!()
    };
    let run_id = id();
    let writes = [
        Write::FlowRunCreated(run(&run_id, None)),
        completed(&run_id),
    ];
    let items: Vec<(&Write, Option<&str>)> = writes.iter().map(|w| (w, None)).collect();
    let fences = Mutex::new(Fences::default());
    let mut conn = Conn::Postgres(pool.acquire().await.unwrap());
    let mut marker = Marker::new();
    let mut stage = Stage::Writing;
    let first = batch::apply(&mut conn, &items, &fences, &marker, true, &mut stage).await;
    assert!(matches!(first, Ok(Applied::Committed)));
    // As if the COMMIT's answer had been lost.
    marker.resolving = true;
    let again = batch::apply(&mut conn, &items, &fences, &marker, false, &mut stage).await;
    assert!(matches!(again, Ok(Applied::AlreadyCommitted)));
    assert_eq!(store.state_history(&run_id).await.unwrap().len(), 2);
    // A fresh marker applies the batch again without failing (inserts skip what is
    // there, updates set the same values).
    let fresh = batch::apply(
        &mut conn,
        &items,
        &fences,
        &Marker::new(),
        false,
        &mut stage,
    )
    .await;
    assert!(
        matches!(fresh, Ok(Applied::Committed)),
        "idempotent inserts"
    );
    drop(conn);
    drop_postgres(store, &name).await;
}

/// While another connection holds SQLite's write lock the writer keeps retrying (and
/// says it is failing); an acknowledged write withdrawn at its deadline never lands,
/// even after the lock is gone; one being attempted at its deadline is waited for.
#[tokio::test]
async fn a_locked_database_is_waited_out_and_a_withdrawn_write_never_lands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weir.db");
    let store = sqlite(&path, Duration::from_millis(300), QUEUE_BOUND).await;
    let locked = lock(&path).await;

    // Taken by the idle writer at once, then in flight while it waits for the lock.
    let attempted = id();
    let receipt = store
        .write_acked(vec![Write::FlowRunCreated(run(&attempted, None))])
        .unwrap();
    let ticket = receipt.ticket.clone();
    until("the writer attempts the group", || ticket.in_flight()).await;
    let asked = Instant::now();
    let answer = receipt.wait(Instant::now()).await;
    assert!(matches!(answer, Err(NotStored::TimedOut)), "{answer:?}");
    assert!(
        asked.elapsed() >= Duration::from_millis(100),
        "the attempt under way was waited for ({:?})",
        asked.elapsed()
    );

    // Engine writes keep queueing; the flush waits for them.
    let engine = id();
    store.write(Write::FlowRunCreated(run(&engine, None)));
    store.write(completed(&engine));
    let flush = tokio::spawn({
        let store = store.clone();
        async move { store.flush().await }
    });
    until("the writer reports failing", || {
        store.writer_health().failing.is_some()
    })
    .await;
    assert!(store.writer_health().admits().is_err(), "no new work");
    // Queued behind the failing batch, withdrawn before any attempt.
    let withdrawn = id();
    let receipt = store
        .write_acked(vec![Write::FlowRunCreated(run(&withdrawn, None))])
        .unwrap();
    let answer = receipt
        .wait(Instant::now() + Duration::from_millis(50))
        .await;
    assert!(matches!(answer, Err(NotStored::TimedOut)), "{answer:?}");
    assert!(!flush.is_finished(), "a flush answers only once committed");

    release(locked).await;
    let flushed = tokio::time::timeout(Duration::from_secs(10), flush).await;
    flushed.expect("the writer recovers").unwrap().unwrap();
    store.flush().await.unwrap();
    let health = store.writer_health();
    assert!(
        health.failing.is_none() && health.failed_attempts > 0,
        "{health:?}"
    );
    assert!(health.admits().is_ok());
    let stored = store
        .flow_run(&engine)
        .await
        .unwrap()
        .expect("engine write");
    assert_eq!(stored.state.kind, StateType::Completed);
    assert!(store.flow_run(&withdrawn).await.unwrap().is_none());
    assert!(store.flow_run(&attempted).await.unwrap().is_none());
}

/// Past the high-water mark new work is refused; at the bound async producers wait for
/// room, which comes back as the writer catches up.
#[tokio::test]
async fn the_queue_bound_holds_back_new_work_until_the_writer_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weir.db");
    let store = sqlite(&path, Duration::from_millis(50), 8).await;
    let locked = lock(&path).await;
    let ids: Vec<String> = (0..10).map(|_| id()).collect();
    for run_id in &ids {
        // Engine writes are taken past the bound.
        store.write(Write::FlowRunCreated(run(run_id, None)));
    }
    let health = store.writer_health();
    assert_eq!(health.queued, 10, "{health:?}");
    let refused = health.admits().expect_err("over the high-water mark");
    assert!(refused.reason.contains("behind") || refused.reason.contains("not accepting"));
    let waited = tokio::time::timeout(Duration::from_millis(200), store.room()).await;
    assert!(waited.is_err(), "no room while the queue is at its bound");
    let room = tokio::spawn({
        let store = store.clone();
        async move { store.room().await }
    });
    release(locked).await;
    tokio::time::timeout(Duration::from_secs(10), room)
        .await
        .expect("room comes back")
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(store.writer_health().queued, 0);
    for run_id in &ids {
        assert!(store.flow_run(run_id).await.unwrap().is_some());
    }
}

/// A run that floods its logs: the neighbour's new run, enqueued after 60,000 of its
/// lines, is committed while most of them still wait; a flush still covers them all.
async fn logs_wait_behind_state_writes(store: &Store) {
    let flooder = id();
    store.write(Write::FlowRunCreated(run(&flooder, None)));
    store.flush().await.unwrap();
    let lines = 60_000;
    for i in 0..lines {
        store.write(Write::Log(LogRecord {
            flow_run_id: flooder.clone(),
            task_run_id: None,
            level: "INFO".into(),
            message: format!("line {i}"),
            timestamp: Utc::now(),
        }));
    }
    let neighbour = id();
    let receipt = store
        .write_acked(vec![Write::FlowRunCreated(run(&neighbour, None))])
        .unwrap();
    receipt
        .wait(Instant::now() + Duration::from_secs(30))
        .await
        .expect("the neighbour's run is stored");
    let written = store.logs(&flooder).await.unwrap().len();
    assert!(
        written < lines / 2,
        "{written} of {lines} log lines were written before the neighbour's run"
    );
    store.flush().await.unwrap();
    assert_eq!(store.logs(&flooder).await.unwrap().len(), lines);
    assert!(store.flow_run(&neighbour).await.unwrap().is_some());
}

#[tokio::test]
async fn a_flood_of_logs_does_not_delay_other_writes_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("weir.db"))
        .await
        .unwrap();
    logs_wait_behind_state_writes(&store).await;
}

#[tokio::test]
async fn a_flood_of_logs_does_not_delay_other_writes_postgres() {
    let Some((store, name)) = postgres().await else {
        return;
    };
    logs_wait_behind_state_writes(&store).await;
    drop_postgres(store, &name).await;
}
