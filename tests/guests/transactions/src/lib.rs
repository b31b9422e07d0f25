//! Flows and tasks for the e2e tests of transactions (Prefect's `with transaction()`,
//! `on_commit` and `on_rollback`): the hooks log what they do, so the tests read the
//! order of commits and rollbacks in the run's logs.

use weir_sdk::{
    CommitMode, IsolationLevel, Result, TransactionContext, TransactionOptions, flow, task,
    transaction,
};

weir_sdk::export!();

fn announce(txn: &TransactionContext) -> Result<()> {
    let path: String = txn.get_or("path", "-".to_owned())?;
    weir_sdk::info!("committed {} ({path})", txn.task_run_name);
    Ok(())
}

fn delete_file(txn: &TransactionContext) -> Result<()> {
    let path: String = txn.get("path")?;
    let contents: String =
        serde_json::from_value(txn.parameters["contents"].clone()).map_err(weir_sdk::Error::msg)?;
    weir_sdk::info!(
        "rolled back {}: deleted {path} ({contents})",
        txn.task_run_name
    );
    Ok(())
}

fn second_undo(txn: &TransactionContext) -> Result<()> {
    weir_sdk::info!("second undo of {}", txn.task_run_name);
    Ok(())
}

/// The seeds' side effect: a write, undone by its rollback hooks (newest first).
#[task(on_commit = [announce], on_rollback = [delete_file, second_undo], task_run_name = "write-{contents}")]
fn write_file(contents: String) -> usize {
    contents.len()
}

/// The seeds' quality check: fails on fewer than two lines.
#[task]
fn quality_test(contents: String) -> Result<()> {
    if contents.lines().count() < 2 {
        weir_sdk::bail!("Not enough data!");
    }
    Ok(())
}

fn failing_commit(_: &TransactionContext) -> Result<()> {
    weir_sdk::bail!("the commit hook refuses")
}

/// A task whose commit hook fails: it is rolled back instead, and its record not written.
#[task(cache_policy = "inputs", on_commit = [failing_commit], on_rollback = [delete_file])]
fn refused_commit(contents: String) -> usize {
    contents.len()
}

/// A cached task: its record is written only when its transaction commits.
#[task(cache_policy = "inputs")]
fn cached(contents: String) -> String {
    contents.to_uppercase()
}

/// Sleeps (to be killed in, or to hold a lock).
#[task(on_commit = [announce])]
fn slow(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// The seeds' pipeline: the write rolls back when the quality test fails.
#[flow]
fn pipeline(contents: String) -> Result<usize> {
    transaction(TransactionOptions::new(), |txn| {
        txn.set("path", "side-effect.txt")?;
        let n = write_file(contents.clone())?;
        quality_test(contents.clone())?;
        Ok(n)
    })
}

/// Idempotency by key: the second run finds the key committed and returns early.
#[flow]
fn load_once(key: String, contents: String) -> Result<String> {
    transaction(TransactionOptions::new().key(key), |txn| {
        if txn.is_committed() {
            return Ok("skipped".to_owned());
        }
        write_file(contents)?;
        Ok("loaded".to_owned())
    })
}

/// Serializable on a key: racing runs take turns; the later one finds it committed.
#[flow]
fn exclusive(key: String, hold_ms: u64, lock_timeout_seconds: Option<f64>) -> Result<String> {
    let mut options = TransactionOptions::new()
        .key(key)
        .isolation(IsolationLevel::Serializable);
    if let Some(s) = lock_timeout_seconds {
        options = options.lock_timeout_seconds(s);
    }
    transaction(options, |txn| {
        if txn.is_committed() {
            return Ok("skipped".to_owned());
        }
        slow(hold_ms)?;
        Ok("won".to_owned())
    })
}

/// An inner transaction that rolls back takes the outer one along, even when the flow
/// handles the inner error; values set outside are seen by inner tasks' hooks.
#[flow]
fn nested(fail_inner: bool) -> Result<Vec<bool>> {
    let mut states = Vec::new();
    transaction(TransactionOptions::new(), |outer| {
        outer.set("path", "outer.txt")?;
        write_file("outer".into())?;
        let inner = transaction(TransactionOptions::new(), |inner| {
            inner.set("path", "inner.txt")?;
            write_file("inner".into())?;
            if fail_inner {
                weir_sdk::bail!("inner fails");
            }
            Ok(())
        });
        states.push(inner.is_ok());
        states.push(outer.is_rolled_back());
        write_file("after".into())?;
        Ok(())
    })?;
    Ok(states)
}

/// An eager inner transaction commits as it ends; the outer one failing later does not
/// undo it. An `off` transaction never commits: it rolls back as it ends.
#[flow]
fn modes() -> Result<()> {
    let outer: Result<()> = transaction(TransactionOptions::new(), |outer| {
        outer.set("path", "outer.txt")?;
        transaction(
            TransactionOptions::new().commit_mode(CommitMode::Eager),
            |txn| {
                txn.set("path", "eager.txt")?;
                write_file("eager".into())?;
                Ok(())
            },
        )?;
        write_file("lazy".into())?;
        weir_sdk::bail!("outer fails")
    });
    weir_sdk::info!("outer: {}", outer.is_ok());
    transaction(
        TransactionOptions::new().commit_mode(CommitMode::Off),
        |txn| {
            txn.set("path", "off.txt")?;
            write_file("off".into())?;
            Ok(())
        },
    )
}

/// Cached results inside a transaction: recorded on commit only.
#[flow]
fn cache_inside(contents: String, fail: bool) -> Result<String> {
    transaction(TransactionOptions::new(), |_| {
        let out = cached(contents)?;
        if fail {
            weir_sdk::bail!("fails after the cached task");
        }
        Ok(out)
    })
}

/// A commit hook that fails rolls its task back.
#[flow]
fn refused(contents: String) -> Result<usize> {
    transaction(TransactionOptions::new(), |txn| {
        txn.set("path", "refused.txt")?;
        refused_commit(contents)
    })
}

/// A flow killed inside a transaction resumes it: the task done before is replayed and
/// committed once, with the rest.
#[flow]
fn long_transaction(ms: u64) -> Result<u64> {
    transaction(TransactionOptions::new().key("long"), |txn| {
        txn.set("path", "long.txt")?;
        write_file("before".into())?;
        let slept = slow(ms)?;
        write_file("after".into())?;
        Ok(slept)
    })
}

/// A task outside transactions is its own: its commit hook runs as it completes.
#[flow]
fn outside() -> Result<usize> {
    write_file("alone".into())
}

/// A flow retried after its transaction rolled back runs the transaction's tasks anew
/// (their work was undone), instead of replaying them.
#[flow(retries = 1)]
fn retried() -> Result<usize> {
    let attempt = weir_sdk::context().attempt;
    let contents = if attempt == 1 { "one" } else { "one\ntwo" };
    transaction(TransactionOptions::new(), |txn| {
        txn.set("path", "retried.txt")?;
        let n = write_file(format!("attempt {attempt}"))?;
        quality_test(contents.to_owned())?;
        Ok(n)
    })
}

/// Tries to open a transaction from a task (refused: tasks belong to their flow's).
#[task]
fn begin_in_task() -> String {
    match transaction(TransactionOptions::new(), |_| Ok(())) {
        Ok(()) => "opened".to_owned(),
        Err(e) => e.to_string(),
    }
}

/// Misuses the raw interface as a hostile guest would; returns each error.
#[flow]
fn misuse() -> Result<Vec<String>> {
    use weir_sdk::__private::bindings::weir::flow::transactions as raw;
    let options = |key: Option<String>| raw::TransactionOptions {
        key,
        isolation: None,
        commit_mode: None,
        overwrite: false,
        lock_timeout_seconds: Some(-1.0),
    };
    let plain = raw::TransactionOptions {
        lock_timeout_seconds: None,
        ..options(None)
    };
    let mut errors = Vec::new();
    errors.push(
        raw::begin(&options(Some("k".repeat(5000))))
            .err()
            .unwrap_or_default(),
    );
    errors.push(
        raw::begin(&options(Some("k".into())))
            .err()
            .unwrap_or_default(),
    );
    let outer = raw::begin(&plain).map_err(weir_sdk::Error::msg)?;
    let inner = raw::begin(&plain).map_err(weir_sdk::Error::msg)?;
    errors.push(outer.end(true).err().unwrap_or_default());
    inner.end(true).map_err(weir_sdk::Error::msg)?;
    errors.push(inner.end(true).err().unwrap_or_default());
    errors.push(outer.set("x", "not json").err().unwrap_or_default());
    outer.end(true).map_err(weir_sdk::Error::msg)?;
    let mut open = Vec::new();
    for _ in 0..100 {
        match raw::begin(&plain) {
            Ok(t) => open.push(t),
            Err(e) => {
                errors.push(e);
                break;
            }
        }
    }
    for t in open.iter().rev() {
        t.end(false).map_err(weir_sdk::Error::msg)?;
    }
    errors.push(begin_in_task()?);
    Ok(errors)
}
