//! `weir:flow/variables`: workspace variables and secrets, read-only to guests.

use super::HostState;
use super::weir::flow::variables;

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.charge()?;
        Ok(self.run("variables.get")?.variable(name).await)
    }

    async fn secret(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.charge()?;
        Ok(self.run("variables.secret")?.secret(name).await)
    }
}
