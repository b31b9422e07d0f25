//! `weir:flow/logging`: the run logger.

use super::HostState;
use super::weir::flow::logging;
use super::wit::LogLevel as WitLevel;
use crate::orchestrate::LogLevel;

impl logging::Host for HostState {
    async fn log(&mut self, level: WitLevel, message: String) -> wasmtime::Result<()> {
        self.charge()?;
        let scope = self.scope("logging.log")?;
        let level = match level {
            WitLevel::Debug => LogLevel::Debug,
            WitLevel::Info => LogLevel::Info,
            WitLevel::Warning => LogLevel::Warning,
            WitLevel::Error => LogLevel::Error,
            WitLevel::Critical => LogLevel::Critical,
        };
        scope.log(self.task.as_deref(), level, message);
        Ok(())
    }
}
