use super::*;
use serde_json::json;

#[tokio::test]
async fn logs_prints_and_artifacts_are_stored() {
    let h = harness().await;
    h.store()
        .set_variable("greeting", &json!("hello"))
        .await
        .unwrap();
    let c = h.load(BASIC).await;
    let out = h.run(&c, "observability", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);

    let logs = h.store().logs(&out.flow_run_id).await.unwrap();
    let find = |msg: &str| {
        logs.iter()
            .find(|l| l.message == msg)
            .unwrap_or_else(|| panic!("no log {msg:?} in {logs:#?}"))
    };
    assert_eq!(find("debug line").level, "DEBUG");
    assert_eq!(find("info line").level, "INFO");
    assert_eq!(find("warning line").level, "WARNING");
    assert_eq!(find("error line").level, "ERROR");
    assert_eq!(find("critical line").level, "CRITICAL");
    assert_eq!(
        find("printed from the flow").level,
        "INFO",
        "log_prints captures stdout"
    );
    let task_print = find("printed from a task");
    assert!(
        task_print.task_run_id.is_some(),
        "task output is attributed to the task run"
    );
    assert_eq!(find("written to stderr").level, "WARNING");
    find("bad key rejected: true");
    find("variable greeting = hello");

    let artifacts = h.store().artifacts(&out.flow_run_id).await.unwrap();
    let kinds: Vec<&str> = artifacts.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["markdown", "table", "link", "progress"]);
    assert_eq!(artifacts[0].data, json!("# Report\nall good"));
    assert_eq!(artifacts[0].key.as_deref(), Some("obs-report"));
    assert_eq!(artifacts[0].description.as_deref(), Some("the report"));
    assert_eq!(artifacts[1].data, json!([{"a": 1}, {"a": 2}]));
    assert_eq!(artifacts[2].data["url"], json!("https://example.com/x"));
    assert_eq!(
        artifacts[3].data,
        json!(100.0),
        "progress updates are stored"
    );
    let by_key = h.store().artifacts_by_key("obs-report").await.unwrap();
    assert_eq!(by_key.len(), 1);
}

#[tokio::test]
async fn hooks_run_on_completion_and_failure() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "hooks_flow", json!({})).await;
    assert_eq!(out.value.as_deref(), Some("\"task failed: true\""));
    let logs = h.logs(&out.flow_run_id).await;
    assert!(
        logs.iter()
            .any(|l| l == "hook: hooked_task failed: hooked task broke"),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l == "hook: hooks-flow completed as Completed"),
        "{logs:?}"
    );
}
