//! `weir:flow/logging`: the run logger.

use super::HostState;
use super::weir::flow::logging;
use super::wit::LogLevel;

impl logging::Host for HostState {
    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.charge()?;
        let run = self.run("logging.log")?;
        let level = super::convert::log_level_from_wit(level);
        run.log(self.task.as_deref(), level, message);
        Ok(())
    }
}
