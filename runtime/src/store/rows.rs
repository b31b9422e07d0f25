//! Row helpers every query shares: timestamps as sortable text, JSON and tag columns,
//! and the decoding of run, task run and artifact rows.

use super::db::DbRow;
use super::*;

/// Formats a timestamp so that text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

pub(crate) fn parse_opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_ts).transpose()
}

pub(crate) fn parse_json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON: {e}")))
}

pub(crate) fn parse_opt_json(s: Option<String>) -> Result<Option<Value>> {
    s.as_deref().map(parse_json).transpose()
}

pub(crate) fn state_from_row(r: &impl DbRow, t: &str, n: &str, m: &str, at: &str) -> Result<State> {
    let kind: String = r.col(t)?;
    Ok(State {
        kind: StateType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown state type {kind:?}")))?,
        name: r.col(n)?,
        message: r.col(m)?,
        timestamp: parse_ts(&r.col::<String>(at)?)?,
    })
}

pub(crate) fn tags_from(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad tags: {e}")))
}

pub(crate) fn flow_run_from_row(r: &impl DbRow) -> Result<FlowRunRecord> {
    Ok(FlowRunRecord {
        id: r.col("id")?,
        name: r.col("name")?,
        flow_name: r.col("flow_name")?,
        flow_function: r.col("flow_function")?,
        component_digest: r.col("component_digest")?,
        parameters: parse_json(&r.col::<String>("parameters")?)?,
        tags: tags_from(&r.col::<String>("tags")?)?,
        parent_flow_run_id: r.col("parent_flow_run_id")?,
        parent_position: r.col("parent_position")?,
        state: state_from_row(
            r,
            "state_type",
            "state_name",
            "state_message",
            "state_timestamp",
        )?,
        run_count: r.col("run_count")?,
        result: parse_opt_json(r.col("result")?)?,
        created: parse_ts(&r.col::<String>("created")?)?,
        start_time: parse_opt_ts(r.col("start_time")?)?,
        end_time: parse_opt_ts(r.col("end_time")?)?,
        workspace_id: r.col("workspace_id")?,
        deployment_id: r.col("deployment_id")?,
        idempotency_key: r.col("idempotency_key")?,
        expected_start: parse_opt_ts(r.col("expected_start")?)?,
        schedule_id: r.col("schedule_id")?,
        node_id: r.col("node_id")?,
        fence: r.col("fence")?,
        crash_count: r.col("crash_count")?,
    })
}

pub(crate) fn task_run_from_row(r: &impl DbRow) -> Result<TaskRunRecord> {
    Ok(TaskRunRecord {
        id: r.col("id")?,
        flow_run_id: r.col("flow_run_id")?,
        position: r.col("position")?,
        task_name: r.col("task_name")?,
        name: r.col("name")?,
        input_hash: r.col("input_hash")?,
        cache_key: r.col("cache_key")?,
        tags: tags_from(&r.col::<String>("tags")?)?,
        state: state_from_row(
            r,
            "state_type",
            "state_name",
            "state_message",
            "state_timestamp",
        )?,
        run_count: r.col("run_count")?,
        result: parse_opt_json(r.col("result")?)?,
        created: parse_ts(&r.col::<String>("created")?)?,
        start_time: parse_opt_ts(r.col("start_time")?)?,
        end_time: parse_opt_ts(r.col("end_time")?)?,
        workspace_id: r.col("workspace_id")?,
        upstream: match r.col::<Option<String>>("upstream")? {
            Some(text) => tags_from(&text)?,
            None => vec![],
        },
        transaction_id: r.col("transaction_id")?,
    })
}

pub(crate) fn artifact_from_row(r: &impl DbRow) -> Result<ArtifactRecord> {
    Ok(ArtifactRecord {
        id: r.col("id")?,
        key: r.col("key")?,
        kind: r.col("type")?,
        description: r.col("description")?,
        data: parse_json(&r.col::<String>("data")?)?,
        flow_run_id: r.col("flow_run_id")?,
        task_run_id: r.col("task_run_id")?,
        created: parse_ts(&r.col::<String>("created")?)?,
        updated: parse_ts(&r.col::<String>("updated")?)?,
        workspace_id: r.col("workspace_id")?,
    })
}
