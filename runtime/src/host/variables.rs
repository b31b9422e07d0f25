//! `weir:flow/variables`: workspace variables, read-only to guests.

use super::HostState;
use super::weir::flow::variables;

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.charge()?;
        let scope = self.scope("variables.get")?;
        match scope.orch.store.variable(&name).await {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::error!("reading variable {name:?}: {e}");
                Ok(None)
            }
        }
    }
}
