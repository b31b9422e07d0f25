use super::*;
use serde_json::json;

#[tokio::test]
async fn subflows_are_linked_to_their_parent() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "parent", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("15"));
    let children = h.store().subflow_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(children.len(), 2);
    for (i, child) in children.iter().enumerate() {
        assert_eq!(child.flow_name, "child");
        assert_eq!(
            child.parent_flow_run_id.as_deref(),
            Some(out.flow_run_id.as_str())
        );
        assert_eq!(child.parent_position, Some(i as i64));
        assert!(child.state.is_completed());
        let tasks = h.store().task_runs(&child.id).await.unwrap();
        assert_eq!(tasks.len(), 1, "the child's task belongs to the child run");
    }
    assert_eq!(children[0].parameters, json!({"x": 2}));
}
