//! `weir:flow/variables`: workspace variables and secrets, read-only to guests.

use super::HostState;
use super::weir::flow::variables;

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.charge()?;
        let scope = self.scope("variables.get")?;
        let store = &scope.orch.store;
        let found = match &scope.settings.workspace_id {
            Some(ws) => store.workspace_variable(ws, &name).await,
            None => store.variable(&name).await,
        };
        match found {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::error!("reading variable {name:?}: {e}");
                Ok(None)
            }
        }
    }

    async fn secret(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.charge()?;
        let scope = self.scope("variables.secret")?;
        let (Some(ws), Some(secrets)) = (&scope.settings.workspace_id, &scope.orch.secrets) else {
            return Ok(None);
        };
        match scope.orch.store.secret(ws, &name).await {
            Ok(Some(sealed)) => match secrets.open(&sealed) {
                Ok(plain) => Ok(Some(plain)),
                Err(e) => {
                    tracing::error!("secret {name:?} of workspace {ws} cannot be opened: {e}");
                    Ok(None)
                }
            },
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::error!("reading secret {name:?}: {e}");
                Ok(None)
            }
        }
    }
}
