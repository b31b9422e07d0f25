//! `weir:flow/deployments`: a flow starts a run of a deployment (Prefect's
//! `run_deployment`), in its own workspace only.

use super::HostState;
use super::weir::flow::deployments;

impl deployments::Host for HostState {
    async fn run(
        &mut self,
        deployment: String,
        parameters: String,
        scheduled_at: Option<String>,
    ) -> wasmtime::Result<Result<String, String>> {
        self.charge()?;
        let scope = self.scope("deployments.run")?;
        let Some(workspace) = scope.settings.workspace_id.clone() else {
            return Ok(Err(
                "runs started with `weir run` have no deployments to run".into(),
            ));
        };
        let Some(runner) = scope.orch.deployment_runner() else {
            return Ok(Err("this host does not run deployments".into()));
        };
        let parameters = match serde_json::from_str::<serde_json::Value>(&parameters) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return Ok(Err("parameters must be a JSON object".into())),
            Err(e) => return Ok(Err(format!("parameters are not JSON: {e}"))),
        };
        let at = match scheduled_at
            .as_deref()
            .map(chrono::DateTime::parse_from_rfc3339)
        {
            None => None,
            Some(Ok(t)) => Some(t.with_timezone(&chrono::Utc)),
            Some(Err(e)) => return Ok(Err(format!("scheduled-at is not RFC 3339: {e}"))),
        };
        Ok(runner
            .run_deployment(&workspace, &deployment, parameters, at)
            .await)
    }
}
