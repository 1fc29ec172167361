//! Request bodies and response shapes of the FC 3.0 REST API, as the vendor's API model
//! defines them (PyPI `alibabacloud_fc20230330` 4.8.3: `client.py` for paths and actions,
//! `models/_create_function_input.py`, `_update_function_input.py`, `_function.py`,
//! `_custom_runtime_config.py`, `_input_code_location.py`, `_create_trigger_input.py`,
//! `_trigger.py`, `_httptrigger.py`, `_list_functions_output.py`, `_list_triggers_output.py`,
//! `_tag.py`), plus the checks FC would make anyway, done first with clearer messages.
//!
//! Field names are camelCase, except `Tag`'s `Key`/`Value`. The zip travels inline as base64
//! in `code.zipFile`, streamed between a prefix and a suffix so it never sits whole in memory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stellar_guest_sdk::{
    Arch, Endpoint, FunctionSpec, Protocol, ProviderError, ProviderResult, base64,
};

use crate::config::Config;

/// Names of the functions stellar creates start with this (`st-<run>-<NN>-<PP>`).
pub(crate) const NAME_PREFIX: &str = "st-";
/// The one HTTP trigger the adapter gives each function.
pub(crate) const TRIGGER_NAME: &str = "stellar-http";
/// Where FC runs the custom runtime from: the zip is unpacked into `/code`.
pub(crate) const COMMAND: &str = "/code/bootstrap";
/// The port the custom runtime listens on (`customRuntimeConfig.port`; FC's default too).
pub(crate) const PORT: u16 = 9000;
/// Unused by custom runtimes, required by the API.
const HANDLER: &str = "bootstrap";
/// The tag marking functions stellar created (the host adds it to every function).
pub(crate) const RUN_TAG: &str = "stellar-run";

/// Function names: 1 to 64 letters, digits, `_`, `-`, not starting with a digit or `-`
/// (`functionName` docstring of `CreateFunctionInput`).
pub(crate) fn check_name(name: &str) -> ProviderResult<()> {
    let first_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if (1..=64).contains(&name.len())
        && first_ok
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "function name {name:?} must be 1 to 64 letters, digits, `-` or `_`, starting with \
             a letter or `_`"
        )))
    }
}

/// Checks what FC would reject anyway (memory, timeout, concurrency, architecture, options,
/// inline zip size), with messages naming the value and the range.
pub(crate) fn check_spec(config: &Config, name: &str, spec: &FunctionSpec) -> ProviderResult<()> {
    check_name(name)?;
    let memory = spec.memory_mb;
    if !(128..=32_768).contains(&memory) || !memory.is_multiple_of(64) {
        return Err(ProviderError::Invalid(format!(
            "memory {memory} MB (FunctionMemoryMB) is not possible on Function Compute: it must \
             be a multiple of 64 MB from 128 to 32768 MB"
        )));
    }
    if !(1..=86_400).contains(&spec.timeout_s) {
        return Err(ProviderError::Invalid(format!(
            "timeout {} s is outside Function Compute's range (1 to 86400 s)",
            spec.timeout_s
        )));
    }
    if spec.instance_concurrency > 200 {
        return Err(ProviderError::Invalid(format!(
            "instance concurrency {} is above Function Compute's 200",
            spec.instance_concurrency
        )));
    }
    if spec.arch != Arch::X8664 {
        return Err(ProviderError::Invalid(
            "Function Compute custom runtimes run x86_64 only (Stellar.Architecture)".to_string(),
        ));
    }
    if let Some((key, _)) = spec.options.first() {
        return Err(ProviderError::Invalid(format!(
            "unknown option `{key}` for the aliyun provider (it takes none)"
        )));
    }
    let cpu = cpu_for(config, memory);
    let gb = f64::from(memory) / 1024.0;
    if cpu < gb / 4.0 - 1e-9 || cpu > gb + 1e-9 {
        return Err(ProviderError::Invalid(format!(
            "cpu {cpu} vCPU and memory {memory} MB: Function Compute needs a vCPU:GB ratio \
             from 1:1 to 1:4 (setting `cpu`)"
        )));
    }
    if let Some(artifact) = &spec.artifact {
        let size = artifact.size();
        if size > config.max_inline_zip_bytes {
            return Err(ProviderError::Invalid(format!(
                "the code zip is {size} bytes, more than the {} bytes sent inline (setting \
                 `max-inline-zip-mb`); Function Compute takes larger packages only through OSS \
                 (ossBucketName/ossObjectName), which this adapter does not support yet: lower \
                 FunctionImageSizeMB",
                config.max_inline_zip_bytes
            )));
        }
    }
    Ok(())
}

/// vCPUs for `memory_mb`: the `cpu` setting, else 1 vCPU per 1.5 GB (FC's console default,
/// 0.35 vCPU for 512 MB) rounded up to 0.05 and kept within the 1:1 to 1:4 vCPU:GB ratio.
pub(crate) fn cpu_for(config: &Config, memory_mb: u32) -> f64 {
    if let Some(cpu) = config.cpu {
        return cpu;
    }
    let gb = f64::from(memory_mb) / 1024.0;
    let up = |v: f64| ((v / 0.05) - 1e-9).ceil() * 0.05;
    let down = |v: f64| ((v / 0.05) + 1e-9).floor() * 0.05;
    let cpu = up(f64::from(memory_mb) / 1536.0).clamp(up(gb / 4.0), down(gb));
    (cpu.max(0.05) * 100.0).round() / 100.0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub(crate) struct Tag {
    #[serde(rename = "Key")]
    pub(crate) key: String,
    #[serde(rename = "Value")]
    pub(crate) value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct CustomRuntimeConfig {
    pub(crate) command: Vec<String>,
    pub(crate) port: u16,
}

impl CustomRuntimeConfig {
    fn stellar() -> Self {
        Self {
            command: vec![COMMAND.to_string()],
            port: PORT,
        }
    }
}

/// `POST /2023-03-30/functions` (CreateFunction) without `code` (streamed after it).
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateFunction<'a> {
    pub(crate) function_name: &'a str,
    pub(crate) runtime: &'a str,
    pub(crate) handler: &'static str,
    pub(crate) memory_size: u32,
    pub(crate) cpu: f64,
    pub(crate) disk_size: u32,
    pub(crate) timeout: u32,
    pub(crate) instance_concurrency: u32,
    pub(crate) internet_access: bool,
    pub(crate) environment_variables: BTreeMap<&'a str, &'a str>,
    pub(crate) custom_runtime_config: CustomRuntimeConfig,
    pub(crate) tags: Vec<Tag>,
}

impl<'a> CreateFunction<'a> {
    pub(crate) fn new(config: &'a Config, spec: &'a FunctionSpec) -> Self {
        Self {
            function_name: &spec.name,
            runtime: &config.runtime,
            handler: HANDLER,
            memory_size: spec.memory_mb,
            cpu: cpu_for(config, spec.memory_mb),
            disk_size: config.disk_mb,
            timeout: spec.timeout_s,
            instance_concurrency: spec.instance_concurrency.max(1),
            internet_access: true,
            environment_variables: map(&spec.env),
            custom_runtime_config: CustomRuntimeConfig::stellar(),
            tags: spec
                .tags
                .iter()
                .map(|(k, v)| Tag {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        }
    }

    /// The body around the streamed zip: `{...,"code":{"zipFile":"` and `"}}`.
    pub(crate) fn prefix_suffix(&self) -> ProviderResult<(Vec<u8>, Vec<u8>)> {
        Ok((
            open_object(self, br#""code":{"zipFile":""#)?,
            br#""}}"#.to_vec(),
        ))
    }
}

/// `PUT /2023-03-30/functions/{name}` (UpdateFunction): only the fields that differ from what
/// FC reports (`code` streamed after them when the code changes).
#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) memory_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cpu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) disk_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) instance_concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) runtime: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) environment_variables: Option<BTreeMap<&'a str, &'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) custom_runtime_config: Option<CustomRuntimeConfig>,
}

impl<'a> UpdateFunction<'a> {
    /// What must change to turn `current` into `spec` under `config`.
    pub(crate) fn diff(config: &'a Config, spec: &'a FunctionSpec, current: &Function) -> Self {
        let cpu = cpu_for(config, spec.memory_mb);
        let env = map(&spec.env);
        let current_env: BTreeMap<&str, &str> = current
            .environment_variables
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let want_runtime = CustomRuntimeConfig::stellar();
        Self {
            memory_size: (current.memory_size != Some(spec.memory_mb)).then_some(spec.memory_mb),
            cpu: current
                .cpu
                .is_none_or(|c| (c - cpu).abs() > 1e-6)
                .then_some(cpu),
            disk_size: (current.disk_size != Some(config.disk_mb)).then_some(config.disk_mb),
            timeout: (current.timeout != Some(spec.timeout_s)).then_some(spec.timeout_s),
            instance_concurrency: (current.instance_concurrency
                != Some(spec.instance_concurrency.max(1)))
            .then_some(spec.instance_concurrency.max(1)),
            runtime: (current.runtime.as_deref() != Some(config.runtime.as_str()))
                .then_some(config.runtime.as_str()),
            environment_variables: (current_env != env).then_some(env),
            custom_runtime_config: (current.custom_runtime_config.as_ref() != Some(&want_runtime))
                .then_some(want_runtime),
        }
    }

    /// Whether nothing but (maybe) the code changes.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The body around the streamed zip: `{...,"code":{"zipFile":"` and `"}}`.
    pub(crate) fn prefix_suffix(&self) -> ProviderResult<(Vec<u8>, Vec<u8>)> {
        Ok((
            open_object(self, br#""code":{"zipFile":""#)?,
            br#""}}"#.to_vec(),
        ))
    }
}

/// `POST /2023-03-30/functions/{name}/triggers` (CreateTrigger): an anonymous HTTP trigger.
/// `triggerConfig` is a JSON document *in a string* (`HTTPTriggerConfig`).
pub(crate) fn create_http_trigger() -> serde_json::Value {
    let trigger_config = serde_json::json!({
        "authType": "anonymous",
        "methods": ["GET", "POST"],
        "disableURLInternet": false,
    });
    serde_json::json!({
        "triggerName": TRIGGER_NAME,
        "triggerType": "http",
        "qualifier": "LATEST",
        "triggerConfig": trigger_config.to_string(),
    })
}

fn map(pairs: &[(String, String)]) -> BTreeMap<&str, &str> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// `value` serialized without its closing `}`, followed by `member_start`.
fn open_object<T: Serialize>(value: &T, member_start: &[u8]) -> ProviderResult<Vec<u8>> {
    let mut json = serde_json::to_vec(value)
        .map_err(|e| ProviderError::Other(format!("cannot encode the request body: {e}")))?;
    if json.pop() != Some(b'}') {
        return Err(ProviderError::Other(
            "request body is not a JSON object".to_string(),
        ));
    }
    if json != b"{" {
        json.push(b',');
    }
    json.extend_from_slice(member_start);
    Ok(json)
}

/// Bytes of `code.zipFile` for a zip of `size` bytes (base64).
pub(crate) fn inline_size(size: u64) -> u64 {
    base64::encoded_len(size)
}

/// A function as FC reports it (`Function`). Unknown fields are ignored; absent ones default.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Function {
    pub(crate) function_name: String,
    pub(crate) function_arn: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) state_reason: Option<String>,
    pub(crate) state_reason_code: Option<String>,
    pub(crate) last_update_status: Option<String>,
    pub(crate) last_update_status_reason: Option<String>,
    pub(crate) last_update_status_reason_code: Option<String>,
    pub(crate) memory_size: Option<u32>,
    pub(crate) cpu: Option<f64>,
    pub(crate) disk_size: Option<u32>,
    pub(crate) timeout: Option<u32>,
    pub(crate) instance_concurrency: Option<u32>,
    pub(crate) runtime: Option<String>,
    pub(crate) environment_variables: BTreeMap<String, String>,
    pub(crate) custom_runtime_config: Option<CustomRuntimeConfig>,
    pub(crate) code_checksum: Option<String>,
    pub(crate) code_size: Option<u64>,
    pub(crate) tags: Vec<Tag>,
}

impl Function {
    /// The value of tag `key`, if set.
    pub(crate) fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

/// `GET /2023-03-30/functions` (ListFunctions).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ListFunctions {
    pub(crate) functions: Vec<Function>,
    pub(crate) next_token: Option<String>,
}

/// A trigger (`Trigger`); for HTTP triggers `httpTrigger` holds the URLs.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Trigger {
    pub(crate) trigger_name: String,
    pub(crate) trigger_type: Option<String>,
    pub(crate) http_trigger: Option<HttpTrigger>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct HttpTrigger {
    pub(crate) url_internet: Option<String>,
    pub(crate) url_intranet: Option<String>,
}

impl Trigger {
    /// The public URL of an HTTP trigger.
    pub(crate) fn url(&self) -> Option<&str> {
        self.http_trigger
            .as_ref()
            .and_then(|h| h.url_internet.as_deref())
            .filter(|u| !u.is_empty())
    }
}

/// `GET /2023-03-30/functions/{name}/triggers` (ListTriggers).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ListTriggers {
    pub(crate) triggers: Vec<Trigger>,
    pub(crate) next_token: Option<String>,
}

/// The endpoint handed to the host.
pub(crate) fn endpoint(config: &Config, function: &Function, trigger_url: &str) -> Endpoint {
    let name = function.function_name.as_str();
    let (url, source) = config.public_url(name, trigger_url);
    let mut meta = vec![("region".to_string(), config.region.clone())];
    if let Some(arn) = &function.function_arn {
        meta.push(("function-arn".to_string(), arn.clone()));
    }
    if let Some(runtime) = &function.runtime {
        meta.push(("runtime".to_string(), runtime.clone()));
    }
    if let Some(memory) = function.memory_size {
        meta.push(("memory-mb".to_string(), memory.to_string()));
    }
    if let Some(cpu) = function.cpu {
        meta.push(("cpu".to_string(), cpu.to_string()));
    }
    if let Some(checksum) = &function.code_checksum {
        meta.push(("code-checksum".to_string(), checksum.clone()));
    }
    meta.push(("url-source".to_string(), source.to_string()));
    Endpoint {
        id: name.to_string(),
        url,
        protocol: Protocol::Http,
        meta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{keys, pairs};
    use serde_json::{Value, json};

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut settings = vec![("region", "cn-hangzhou")];
        settings.extend_from_slice(extra);
        Config::from_settings(pairs(&settings), keys()).unwrap()
    }

    fn spec(memory_mb: u32) -> FunctionSpec {
        FunctionSpec {
            name: "st-r1-00-00".into(),
            memory_mb,
            timeout_s: 30,
            arch: Arch::X8664,
            env: pairs(&[("STELLAR_PROVIDER", "aliyun")]),
            tags: pairs(&[("stellar-run", "r1")]),
            instance_concurrency: 0,
            options: vec![],
            artifact: None,
        }
    }

    #[test]
    fn cpu_follows_the_console_default_within_the_ratio() {
        let c = config(&[]);
        assert_eq!(cpu_for(&c, 512), 0.35);
        assert_eq!(cpu_for(&c, 128), 0.1);
        assert_eq!(cpu_for(&c, 1024), 0.7);
        assert_eq!(cpu_for(&c, 3072), 2.0);
        assert_eq!(cpu_for(&config(&[("cpu", "1")]), 512), 1.0);
        for memory in (128..=32_768).step_by(64) {
            let cpu = cpu_for(&c, memory);
            let gb = f64::from(memory) / 1024.0;
            assert!(
                cpu >= gb / 4.0 - 1e-9 && cpu <= gb + 1e-9,
                "{memory}: {cpu}"
            );
        }
    }

    #[test]
    fn create_body_has_the_custom_runtime_and_streams_the_zip() {
        let c = config(&[]);
        let s = spec(512);
        let (prefix, suffix) = CreateFunction::new(&c, &s).prefix_suffix().unwrap();
        let mut body = prefix;
        body.extend_from_slice(b"UEsDBA==");
        body.extend_from_slice(&suffix);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({
                "functionName": "st-r1-00-00", "runtime": "custom.debian12",
                "handler": "bootstrap", "memorySize": 512, "cpu": 0.35, "diskSize": 512,
                "timeout": 30, "instanceConcurrency": 1, "internetAccess": true,
                "environmentVariables": {"STELLAR_PROVIDER": "aliyun"},
                "customRuntimeConfig": {"command": ["/code/bootstrap"], "port": 9000},
                "tags": [{"Key": "stellar-run", "Value": "r1"}],
                "code": {"zipFile": "UEsDBA=="}
            })
        );
    }

    #[test]
    fn the_trigger_config_is_a_json_string() {
        let t = create_http_trigger();
        assert_eq!(t["triggerType"], "http");
        let inner: Value = serde_json::from_str(t["triggerConfig"].as_str().unwrap()).unwrap();
        assert_eq!(inner["authType"], "anonymous");
    }

    #[test]
    fn updates_carry_only_what_changed() {
        let c = config(&[]);
        let current: Function = serde_json::from_value(json!({
            "functionName": "st-r1-00-00", "memorySize": 512, "cpu": 0.35, "diskSize": 512,
            "timeout": 30, "instanceConcurrency": 1, "runtime": "custom.debian12",
            "environmentVariables": {"STELLAR_PROVIDER": "aliyun"},
            "customRuntimeConfig": {"command": ["/code/bootstrap"], "port": 9000, "args": []},
            "tags": [{"Key": "stellar-run", "Value": "r1"}]
        }))
        .unwrap();
        assert!(UpdateFunction::diff(&c, &spec(512), &current).is_empty());
        assert_eq!(current.tag("stellar-run"), Some("r1"));
        let mut bigger = spec(1024);
        bigger.timeout_s = 60;
        let diff = UpdateFunction::diff(&c, &bigger, &current);
        assert_eq!(
            serde_json::to_value(&diff).unwrap(),
            json!({"memorySize": 1024, "cpu": 0.7, "timeout": 60})
        );
        let (prefix, suffix) = UpdateFunction::default().prefix_suffix().unwrap();
        assert_eq!(prefix, br#"{"code":{"zipFile":""#);
        assert_eq!(suffix, br#""}}"#);
    }

    #[test]
    fn specs_fc_would_refuse_are_named() {
        let c = config(&[]);
        assert!(check_spec(&c, "st-r1-00-00", &spec(512)).is_ok());
        for (memory, needle) in [(100, "multiple of 64"), (500, "multiple of 64")] {
            let err = check_spec(&c, "st-r1-00-00", &spec(memory)).unwrap_err();
            assert!(
                matches!(&err, ProviderError::Invalid(m) if m.contains(needle)),
                "{err:?}"
            );
        }
        let mut arm = spec(512);
        arm.arch = Arch::Arm64;
        assert!(check_spec(&c, "st-r1-00-00", &arm).is_err());
        let err = check_spec(&config(&[("cpu", "4")]), "st-r1-00-00", &spec(512)).unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.contains("ratio")),
            "{err:?}"
        );
        for bad in ["", "9lives", "-x", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn endpoints_use_the_trigger_url_or_the_override() {
        let function: Function = serde_json::from_value(json!({
            "functionName": "st-f", "functionArn": "acs:fc:cn-hangzhou:123:functions/st-f",
            "memorySize": 512, "cpu": 0.35, "runtime": "custom.debian12", "codeChecksum": "42"
        }))
        .unwrap();
        let e = endpoint(
            &config(&[]),
            &function,
            "https://st-f-abc.cn-hangzhou.fcapp.run",
        );
        assert_eq!(e.url, "https://st-f-abc.cn-hangzhou.fcapp.run");
        assert!(
            e.meta
                .contains(&("url-source".into(), "http-trigger".into()))
        );
        assert!(e.meta.contains(&("code-checksum".into(), "42".into())));
        let trigger: Trigger = serde_json::from_value(json!({
            "triggerName": "stellar-http", "triggerType": "http",
            "httpTrigger": {"urlInternet": "https://x.fcapp.run", "urlIntranet": "https://x-in"}
        }))
        .unwrap();
        assert_eq!(trigger.url(), Some("https://x.fcapp.run"));
        assert_eq!(inline_size(3), 4);
    }
}
