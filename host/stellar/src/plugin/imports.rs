//! Host implementations of the world's imports: `host-log` and the `artifact` resource.

use wasmtime::component::Resource;

use super::artifact::ArtifactHandle;
use super::bindings::{HostArtifact, TypesHost, host_log};
use super::sandbox::PluginState;

/// Longest plugin log message kept; longer ones are cut so a plugin cannot flood the log.
const MAX_LOG_MESSAGE: usize = 4096;

impl host_log::Host for PluginState {
    fn log(&mut self, level: host_log::Level, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > MAX_LOG_MESSAGE {
            let mut cut = MAX_LOG_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [truncated]");
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
        Ok(())
    }
}

impl TypesHost for PluginState {}

impl HostArtifact for PluginState {
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
