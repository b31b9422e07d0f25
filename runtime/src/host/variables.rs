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
        let run = self.run("variables.secret")?;
        // A plugin reads a secret only when the run's deployment names it.
        if let Some(plugin) = &self.plugin
            && !run.plugin_secrets().contains(&name)
        {
            run.log(
                self.task.as_deref(),
                crate::model::log::LogLevel::Warning,
                format!(
                    "plugin {plugin} may not read the secret '{name}': the deployment lets                      plugins read only the secrets it names in capabilities.plugin_secrets"
                ),
            );
            return Ok(None);
        }
        Ok(run.secret(name).await)
    }
}
