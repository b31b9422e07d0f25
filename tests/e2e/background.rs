//! Background task runs (Prefect's `task.delay()` and `Task.serve`): started from a flow
//! or through the API, run on their own with the task's options, listed like flow runs.

use crate::support::server::TestServer;
use serde_json::json;

/// Background task runs (Prefect's `task.delay()` and `Task.serve`): started from a flow
/// or through the API, run on their own with the task's options, listed like flow runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_task_runs_start_from_flows_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("background").await;
    let digest = s.upload(&ws.key, "guest_options").await;
    s.deploy(
        &ws.key,
        json!({"name": "bg", "component": digest, "flow": "background",
               "parameters": {"labels": ["a", "b"]}, "tags": ["bg"]}),
    )
    .await;
    let parent = s.trigger(&ws.key, "bg").await;
    let done = s.wait_final(&ws.key, &parent).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    let ids: Vec<String> = serde_json::from_value(done["result"].clone()).unwrap();
    assert_eq!(ids.len(), 2);
    for (id, label) in ids.iter().zip(["a", "b"]) {
        let r = s.wait_final(&ws.key, id).await;
        assert_eq!(r["state"]["type"], "COMPLETED", "{r}");
        assert_eq!(r["flow"], "task/persistent");
        assert_eq!(r["result"], format!("{label} after 3 attempts"));
        assert_eq!(r["parameters"], json!({"label": label}));
        assert!(r["parent_flow_run_id"].is_null(), "a run of its own: {r}");
        let (_, tasks) = s
            .get(&format!("/api/flow-runs/{id}/task-runs"), &ws.key)
            .await;
        let items = tasks["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{tasks}");
        assert_eq!(items[0]["run_count"], 3, "the task's retries: {tasks}");
        assert_eq!(items[0]["name"], format!("persist-{label}"));
    }
    // Listed with the flow runs of the deployment.
    let (_, list) = s.get("/api/flow-runs?flow=task/persistent", &ws.key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");

    // Through the API: checked like a flow's parameters, idempotent by key.
    let (status, r) = s
        .post(
            "/api/deployments/bg/task-runs",
            &ws.key,
            json!({"task": "persistent", "arguments": {"label": "api"}, "idempotency_key": "k1"}),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    let (status, again) = s
        .post(
            "/api/deployments/bg/task-runs",
            &ws.key,
            json!({"task": "persistent", "arguments": {"label": "api"}, "idempotency_key": "k1"}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], id.as_str());
    let r = s.wait_final(&ws.key, &id).await;
    assert_eq!(r["result"], "api after 3 attempts", "{r}");
    let (status, body) = s
        .post(
            "/api/deployments/bg/task-runs",
            &ws.key,
            json!({"task": "persistent", "arguments": {"label": 5}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = s
        .post(
            "/api/deployments/bg/task-runs",
            &ws.key,
            json!({"task": "nope", "arguments": {}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("no task 'nope'"), "{body}");
    assert!(
        body.to_string().contains("persistent"),
        "names the tasks: {body}"
    );
}
