use super::*;
use serde_json::json;
use weir::model::state::StateType;

#[tokio::test]
async fn parameters_are_coerced_and_defaulted() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h
        .run(
            &c,
            "typed",
            json!({"n": "5", "ratio": "0.25", "flag": "true", "window": {"days": "7"}}),
        )
        .await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("\"5|0.25|world|true|7\""));
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(run.parameters["n"], json!(5));
    assert_eq!(run.parameters["name"], json!("world"));
}

#[tokio::test]
async fn invalid_parameters_fail_the_run_before_it_runs() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h
        .run(&c, "typed", json!({"n": "five", "ratio": 1, "unknown": 1}))
        .await;
    assert_eq!(out.state.kind, StateType::Failed);
    let message = out.state.message.clone().unwrap();
    assert!(message.contains("'n'"), "{message}");
    assert!(
        message.contains("flag"),
        "missing required field not named: {message}"
    );
    assert!(message.contains("unknown"), "{message}");
    let history = h.store().state_history(&out.flow_run_id).await.unwrap();
    assert!(
        history.iter().all(|s| s.kind != StateType::Running),
        "the run entered Running: {history:?}"
    );
    assert!(
        h.store()
            .task_runs(&out.flow_run_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_unknown_flow_is_an_error_that_lists_the_flows() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let err = h
        .orch
        .run_flow(weir::orchestrate::FlowRequest::new(
            c.clone(),
            "nope",
            json!({}),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no flow 'nope'") && err.contains("retry-flow"),
        "{err}"
    );
}

#[tokio::test]
async fn run_names_follow_templates() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "names_flow", json!({"who": "ada"})).await;
    assert_eq!(out.flow_run_name, "names-for-ada");
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].name, "greet-ada");
    // Without a template: a generated two-word name, and "task-N" for tasks.
    let out = h.run(&c, "map_flow", json!({"n": 2})).await;
    assert_eq!(
        out.flow_run_name.split('-').count(),
        2,
        "{}",
        out.flow_run_name
    );
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[1].name, "square-1");
}
