//! An orders report built from Weir's built-in plugins, with no HTTP, jq or templating
//! code of its own: `http` fetches the orders, `jq` sums them up, `template` writes the
//! report (kept as a Markdown artifact too), and `notify` posts it to a Slack, Discord or
//! Microsoft Teams webhook (or any webhook, as JSON).
//!
//! Each plugin call is a task run of the flow run: retried, logged and replayed like a
//! task of this component. The deployment grants the hosts the plugins reach
//! (`capabilities.allowed_hosts`), and a webhook URL kept as a secret is read by `notify`
//! only when the deployment names it in `capabilities.plugin_secrets`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weir_sdk::{CallOptions, Result, flow, plugin};

weir_sdk::export!();

/// The report, in Markdown (a minijinja template).
const REPORT: &str = "\
## Orders

| Orders | Total | Largest |
|-------:|------:|---------|
| {{ count }} | {{ total }} | {{ top }} |
";

/// Sums up the orders: how many, their total, the customer of the largest.
const SUMMARY: &str = "{count: (.json | length), total: ([.json[].amount] | add // 0), top: (.json | max_by(.amount) | .customer // \"-\")}";

/// What the flow returns: the summary it posted.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    count: u64,
    total: f64,
    top: String,
}

/// Fetches the orders at `orders_url` (a JSON list of `{customer, amount}`), reports them
/// and posts the report to a webhook: `webhook_url`, or the URL kept in the workspace
/// secret `webhook_secret`; `kind` is slack, discord, teams or webhook (default: guessed
/// from the URL).
#[flow(name = "orders-report")]
fn orders_report(
    orders_url: String,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    kind: Option<String>,
) -> Result<Summary> {
    // A flaky source: the call is retried, as a task with retries would be.
    let response: Value = plugin("http/request")
        .with_options(CallOptions::new().retries(2).retry_delay_seconds([1.0]))
        .call(json!({"url": orders_url, "timeout_seconds": 10}))?;
    let summary: Summary =
        plugin("jq/first").call(json!({"filter": SUMMARY, "input": response}))?;
    let report: String = plugin("template/render").call(json!({
        "template": REPORT,
        "context": summary,
        "artifact_key": "orders-report",
        "artifact_description": "The orders report",
    }))?;
    let _sent: Value = plugin("notify/send").call(json!({
        "url": webhook_url,
        "url_secret": webhook_secret,
        "kind": kind,
        "title": "Orders report",
        "message": report,
    }))?;
    Ok(summary)
}
