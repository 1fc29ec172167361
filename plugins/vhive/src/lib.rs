//! The `vhive` provider adapter: benchmarks functions already running on vHive (Knative on
//! Firecracker), listed in an endpoints file, with gRPC as STeLLAR did.
//!
//! Why no deployment: STeLLAR's vHive mode never deployed either; it read the endpoints that
//! vHive's tooling wrote and reused those whose specs match (`GatewayID` files). This adapter
//! takes either shape from the `endpoints-file` setting, which the host reads (adapters have no
//! filesystem; the contract's `endpoints-file` option type hands over the content, the path as
//! `endpoints-file.path`, and makes the file's hosts endpoint hosts):
//!
//! - STeLLAR's: `[{"GatewayID": "host:80", "FunctionMemoryMB": 128, "ImageSizeMB": 50,
//!   "PackageType": "Image"}]`
//! - vHive's `endpoints.json`: `[{"hostname": "fn.default.192.168.1.240.sslip.io",
//!   "eventing": false}]` (eventing endpoints are skipped: they are invoked through a broker)
//!
//! `deploy-function` hands each function the next unused endpoint whose `FunctionMemoryMB`
//! matches the spec's memory (entries without one match any), as STeLLAR's endpoint reuse did;
//! `remove-function` leaves it running (stellar did not create it). Endpoints are `grpc`
//! (`protocol` setting: `grpc`, the default, or `http`). Artifact kind `none`: the functions
//! are whatever the file lists, so replies are not read as stellar's measurement function's.

use std::sync::Mutex;

use serde::Deserialize;
use stellar_guest_sdk::{
    ArtifactKind, ColdStartScope, Configured, Credential, Endpoint, FunctionSpec, Guest,
    OptionType, Protocol, ProviderError, ProviderInfo, ProviderResult, Settings, log, option,
};

/// The setting holding the endpoints file's content.
const FILE_SETTING: &str = "endpoints-file";
/// The setting holding its path (added by the host).
const PATH_SETTING: &str = "endpoints-file.path";
const PROTOCOL_SETTING: &str = "protocol";

/// One endpoint of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    /// `host[:port]` as written (the endpoint id).
    id: String,
    url: String,
    memory_mb: Option<u32>,
}

#[derive(Debug, Clone)]
struct Config {
    endpoints: Vec<Listed>,
    protocol: Protocol,
}

static CONFIG: Configured<Config> = Configured::new();
/// Indices of endpoints already handed to a function in this run.
static USED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// One entry in either file shape; unknown keys are ignored (STeLLAR's files carry more).
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "GatewayID")]
    gateway_id: Option<String>,
    #[serde(rename = "FunctionMemoryMB")]
    function_memory_mb: Option<u32>,
    hostname: Option<String>,
    eventing: Option<bool>,
}

/// The file's endpoints and the eventing ones skipped.
#[derive(Debug)]
struct Parsed {
    listed: Vec<Listed>,
    skipped: Vec<String>,
}

/// Parses the file's content; errors name the file, the line and column or the entry.
fn parse_endpoints(path: &str, text: &str) -> ProviderResult<Parsed> {
    let invalid = |what: String| ProviderError::Invalid(format!("endpoints file {path}: {what}"));
    let entries: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        invalid(format!(
            "{} (line {}, column {}); expected a JSON array of endpoints",
            strip_position(&e.to_string()),
            e.line(),
            e.column()
        ))
    })?;
    let mut listed = Vec::new();
    let mut skipped = Vec::new();
    for (i, value) in entries.into_iter().enumerate() {
        let shape = "{\"GatewayID\": \"host:port\", \"FunctionMemoryMB\": ...} (STeLLAR) or \
                     {\"hostname\": \"...\", \"eventing\": false} (vHive)";
        let entry: Entry = serde_json::from_value(value)
            .map_err(|e| invalid(format!("[{i}]: {e}; expected {shape}")))?;
        let (id, memory_mb) = match (entry.gateway_id, entry.hostname) {
            (Some(gateway), _) => (gateway, entry.function_memory_mb),
            (None, Some(hostname)) => {
                if entry.eventing == Some(true) {
                    skipped.push(hostname);
                    continue;
                }
                (hostname, None)
            }
            (None, None) => return Err(invalid(format!("[{i}]: no endpoint; expected {shape}"))),
        };
        let id = id.trim().to_owned();
        let authority = id
            .strip_prefix("http://")
            .unwrap_or(&id)
            .trim_end_matches('/')
            .to_owned();
        if authority.is_empty()
            || !authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            return Err(invalid(format!("[{i}]: {id:?} is not a host or host:port")));
        }
        // Knative's ingress listens on 80 when the file names no port (vHive's hostnames).
        let url = if authority.contains(':') {
            format!("http://{authority}")
        } else {
            format!("http://{authority}:80")
        };
        listed.push(Listed { id, url, memory_mb });
    }
    if listed.is_empty() {
        return Err(invalid("lists no usable endpoint".to_owned()));
    }
    Ok(Parsed { listed, skipped })
}

/// serde_json's message without its own " at line L column C" suffix.
fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

fn config_from(settings: Vec<(String, String)>) -> ProviderResult<Config> {
    let settings = Settings::from(settings);
    settings.deny_unknown(&[FILE_SETTING, PATH_SETTING, PROTOCOL_SETTING])?;
    let text = settings.require(FILE_SETTING)?;
    let path = settings.get(PATH_SETTING).unwrap_or("(no path)");
    let protocol = match settings.get(PROTOCOL_SETTING).map(str::trim) {
        None | Some("grpc") => Protocol::Grpc,
        Some("http") => Protocol::Http,
        Some(other) => {
            return Err(ProviderError::Invalid(format!(
                "setting `{PROTOCOL_SETTING}`: expected grpc or http, got {other:?}"
            )));
        }
    };
    let parsed = parse_endpoints(path, text)?;
    for hostname in &parsed.skipped {
        log::warn(format!(
            "endpoints file {path}: {hostname} is an eventing endpoint (invoked through a \
             broker), skipped"
        ));
    }
    Ok(Config {
        endpoints: parsed.listed,
        protocol,
    })
}

/// The next unused endpoint for `spec` (STeLLAR's reuse of matching endpoints).
fn assign(config: &Config, used: &mut Vec<usize>, spec: &FunctionSpec) -> ProviderResult<usize> {
    let found = config
        .endpoints
        .iter()
        .enumerate()
        .find(|(i, e)| !used.contains(i) && e.memory_mb.is_none_or(|mb| mb == spec.memory_mb));
    let Some((index, _)) = found else {
        return Err(ProviderError::Quota(format!(
            "no unused endpoint with FunctionMemoryMB {} left in the endpoints file for `{}` \
             ({} listed, {} in use); the vhive adapter does not deploy functions",
            spec.memory_mb,
            spec.name,
            config.endpoints.len(),
            used.len()
        )));
    };
    used.push(index);
    Ok(index)
}

fn endpoint(config: &Config, listed: &Listed) -> Endpoint {
    let mut meta = vec![("source".to_string(), "endpoints-file".to_string())];
    if let Some(mb) = listed.memory_mb {
        meta.push(("memory-mb".to_string(), mb.to_string()));
    }
    Endpoint {
        id: listed.id.clone(),
        url: listed.url.clone(),
        protocol: config.protocol,
        meta,
    }
}

struct Vhive;

impl Guest for Vhive {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "vhive".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            // No API calls: the endpoints come from the file.
            allowed_hosts: Vec::new(),
            // Only the hosts written in the endpoints file (the host adds them).
            endpoint_hosts: Vec::new(),
            artifacts: vec![ArtifactKind::None],
            credentials: Vec::new(),
            options: vec![
                option(
                    FILE_SETTING,
                    OptionType::EndpointsFile,
                    None,
                    "STeLLAR's vHive endpoints file ([{\"GatewayID\": \"host:80\", ...}]) or \
                     vHive's endpoints.json ([{\"hostname\": ..., \"eventing\": false}])",
                ),
                option(
                    PROTOCOL_SETTING,
                    OptionType::Text,
                    Some("grpc"),
                    "grpc (STeLLAR's InvokeNext over h2c) or http",
                ),
            ],
            cold_start_scope: ColdStartScope::Function,
            instance_concurrency: 1,
        }
    }

    fn configure(
        settings: Vec<(String, String)>,
        _credentials: Vec<Credential>,
    ) -> ProviderResult<()> {
        let config = config_from(settings)?;
        log::info(format!(
            "{} endpoints listed in the endpoints file",
            config.endpoints.len()
        ));
        CONFIG.set(config);
        if let Ok(mut used) = USED.lock() {
            used.clear();
        }
        Ok(())
    }

    fn list_apis() -> ProviderResult<Vec<Endpoint>> {
        let config = CONFIG.get()?;
        Ok(config
            .endpoints
            .iter()
            .map(|e| endpoint(&config, e))
            .collect())
    }

    fn deploy_function(spec: FunctionSpec) -> ProviderResult<Endpoint> {
        let config = CONFIG.get()?;
        let mut used = USED
            .lock()
            .map_err(|_| ProviderError::Other("endpoint bookkeeping poisoned".into()))?;
        let index = assign(&config, &mut used, &spec)?;
        let listed = &config.endpoints[index];
        log::info(format!(
            "`{}` uses the listed endpoint {}",
            spec.name, listed.url
        ));
        Ok(endpoint(&config, listed))
    }

    fn update_function(id: String, _spec: FunctionSpec) -> ProviderResult<Endpoint> {
        let config = CONFIG.get()?;
        let listed = config
            .endpoints
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| ProviderError::NotFound(format!("{id} is not in the endpoints file")))?;
        Ok(endpoint(&config, listed))
    }

    /// Listed endpoints are not stellar's to delete: they stay running.
    fn remove_function(id: String) -> ProviderResult<()> {
        log::info(format!(
            "{id} is left running (listed, not created by stellar)"
        ));
        Ok(())
    }
}

stellar_guest_sdk::export!(Vhive);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_parse() {
        let stellar = r#"[{"GatewayID": "10.0.0.5:80", "FunctionMemoryMB": 128,
                           "ImageSizeMB": 50, "PackageType": "Image"}]"#;
        let listed = parse_endpoints("e.json", stellar).unwrap().listed;
        assert_eq!(listed[0].url, "http://10.0.0.5:80");
        assert_eq!(listed[0].memory_mb, Some(128));
        let vhive = r#"[{"hostname": "fn.default.192.168.1.240.sslip.io", "eventing": false},
                        {"hostname": "ev.default.example.com", "eventing": true}]"#;
        let parsed = parse_endpoints("e.json", vhive).unwrap();
        assert_eq!(parsed.skipped, ["ev.default.example.com"]);
        let listed = parsed.listed;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].url, "http://fn.default.192.168.1.240.sslip.io:80");
    }

    #[test]
    fn malformed_files_name_line_and_column() {
        let err = parse_endpoints("/x/e.json", "[\n  {\"GatewayID\": \"a:80\",,}\n]").unwrap_err();
        let ProviderError::Invalid(message) = err else {
            panic!()
        };
        assert!(
            message.starts_with("endpoints file /x/e.json: "),
            "{message}"
        );
        assert!(message.contains("(line 2, column"), "{message}");
        let err = parse_endpoints("e.json", r#"[{"name": "x"}]"#).unwrap_err();
        let ProviderError::Invalid(message) = err else {
            panic!()
        };
        assert!(message.contains("[0]: no endpoint"), "{message}");
        let err = parse_endpoints("e.json", r#"[{"GatewayID": "a b"}]"#).unwrap_err();
        assert!(matches!(err, ProviderError::Invalid(m) if m.contains("not a host")));
    }
}
