use super::*;
use serde_json::json;

fn count(logs: &[String], needle: &str) -> usize {
    logs.iter().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn a_cached_result_is_reused_across_runs_until_it_expires() {
    let h = harness().await;
    let c = h.load(BASIC).await;

    let first = h.run(&c, "cache_flow", json!({"x": 4})).await;
    assert_eq!(first.value.as_deref(), Some("40"));
    assert_eq!(count(&h.logs(&first.flow_run_id).await, "computing 4"), 1);

    let second = h.run(&c, "cache_flow", json!({"x": 4})).await;
    assert_eq!(second.value.as_deref(), Some("40"));
    assert_eq!(
        count(&h.logs(&second.flow_run_id).await, "computing"),
        0,
        "the body ran again"
    );
    let tasks = h.store().task_runs(&second.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].state.name, "Cached");

    // Other inputs miss the cache.
    let other = h.run(&c, "cache_flow", json!({"x": 5})).await;
    assert_eq!(count(&h.logs(&other.flow_run_id).await, "computing 5"), 1);

    // Past the 1.5 s expiration the body runs again.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let third = h.run(&c, "cache_flow", json!({"x": 4})).await;
    assert_eq!(
        count(&h.logs(&third.flow_run_id).await, "computing 4"),
        1,
        "expired entry was used"
    );
    let tasks = h.store().task_runs(&third.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].state.name, "Completed");
}

#[tokio::test]
async fn a_custom_key_function_decides_what_is_the_same() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let a = h
        .run(&c, "custom_cache_flow", json!({"region": "eu", "nonce": 1}))
        .await;
    assert_eq!(a.value.as_deref(), Some("\"eu:1\""));
    // Same region, other nonce: same key, so the cached value comes back.
    let b = h
        .run(&c, "custom_cache_flow", json!({"region": "eu", "nonce": 2}))
        .await;
    assert_eq!(b.value.as_deref(), Some("\"eu:1\""));
    assert_eq!(count(&h.logs(&b.flow_run_id).await, "looking up"), 0);
    let other = h
        .run(&c, "custom_cache_flow", json!({"region": "us", "nonce": 2}))
        .await;
    assert_eq!(other.value.as_deref(), Some("\"us:2\""));
}

#[tokio::test]
async fn refresh_cache_always_runs_the_body() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    for _ in 0..2 {
        let out = h.run(&c, "refresh_flow", json!({"x": 1})).await;
        assert_eq!(count(&h.logs(&out.flow_run_id).await, "refreshing 1"), 1);
    }
}

#[tokio::test]
async fn a_second_identical_call_in_one_run_is_a_hit() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "cache_twice", json!({"x": 21})).await;
    assert_eq!(out.value.as_deref(), Some("420"));
    assert_eq!(count(&h.logs(&out.flow_run_id).await, "computing 21"), 1);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.state.name.as_str()).collect();
    assert_eq!(names, ["Completed", "Cached"]);
}
