//! Host implementations of the world's imports: `host-log` and the `artifact` resource.

use wasmtime::component::Resource;

use super::artifact::ArtifactHandle;
use super::bindings::{ArtifactKind, HostArtifact, TypesHost, host_log};
use super::budget::{LogDecision, shown};
use super::sandbox::PluginState;

impl host_log::Host for PluginState {
    /// Each message is cut to 4 KiB; past the plugin's per-run cap messages are dropped and
    /// counted (one line says so when the cap is reached, one more at the end of the run).
    fn log(&mut self, level: host_log::Level, message: String) -> wasmtime::Result<()> {
        let message = shown(&message);
        let decision = self.log_budget.admit(message.len());
        if decision == LogDecision::Drop {
            return Ok(());
        }
        let plugin = self.plugin.as_str();
        match level {
            host_log::Level::Trace => {
                tracing::trace!(target: "stellar::plugin", plugin, "{message}")
            }
            host_log::Level::Debug => {
                tracing::debug!(target: "stellar::plugin", plugin, "{message}")
            }
            host_log::Level::Info => tracing::info!(target: "stellar::plugin", plugin, "{message}"),
            host_log::Level::Warn => tracing::warn!(target: "stellar::plugin", plugin, "{message}"),
            host_log::Level::Error => {
                tracing::error!(target: "stellar::plugin", plugin, "{message}")
            }
        }
        if decision == LogDecision::WriteThenCapReached {
            tracing::warn!(target: "stellar::plugin", plugin,
                "the plugin reached its log cap of {} bytes; its further messages are dropped",
                self.log_budget.cap());
        }
        Ok(())
    }
}

impl TypesHost for PluginState {}

impl HostArtifact for PluginState {
    fn kind(&mut self, this: Resource<ArtifactHandle>) -> wasmtime::Result<ArtifactKind> {
        Ok(self.table.get(&this)?.kind())
    }

    fn size(&mut self, this: Resource<ArtifactHandle>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.size())
    }

    fn sha256(&mut self, this: Resource<ArtifactHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.sha256().to_owned())
    }

    fn file_name(&mut self, this: Resource<ArtifactHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.file_name().to_owned())
    }

    fn read(&mut self, this: Resource<ArtifactHandle>, max: u32) -> wasmtime::Result<Vec<u8>> {
        let artifact = self.table.get_mut(&this)?;
        artifact.read_chunk(max).map_err(|e| {
            wasmtime::Error::msg(format!(
                "reading artifact {}: {e}",
                artifact.path().display()
            ))
        })
    }

    fn rewind(&mut self, this: Resource<ArtifactHandle>) -> wasmtime::Result<()> {
        let artifact = self.table.get_mut(&this)?;
        artifact.rewind().map_err(|e| {
            wasmtime::Error::msg(format!(
                "rewinding artifact {}: {e}",
                artifact.path().display()
            ))
        })
    }

    fn drop(&mut self, this: Resource<ArtifactHandle>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
