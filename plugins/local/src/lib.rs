//! The `local` provider adapter: deploys functions to stellar's embedded local runtime.
//!
//! It is a wasm component like every cloud adapter and reaches the runtime's control API
//! through wasi:http, so running stellar against `local` exercises the same plugin boundary
//! (allow-list, artifact streaming, error mapping) as the clouds do.
//!
//! It declares no options and needs no credentials: the host, which starts the runtime, passes
//! the settings `control-url` (`http://127.0.0.1:<port>`) and `token` itself.
//!
//! Control API (every request carries `authorization: Bearer <token>`):
//! - `PUT /v1/artifacts/<sha256>`, body = the raw executable → 201 `{"sha256","size"}`
//! - `PUT /v1/functions/<name>`, JSON [`FunctionRequest`] → 200/201 [`FunctionInfo`]
//! - `GET /v1/functions` → `{"functions":[FunctionInfo]}`
//! - `DELETE /v1/functions/<name>` → 204 (404 when absent)
//!
//! Errors come back as `{"error":{"kind","message"}}`, where `kind` names the WIT
//! `provider-error` variant.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stellar_guest_sdk::http::{BaseUrl, Method, Request, Scheme};
use stellar_guest_sdk::{
    Artifact, ArtifactKind, ColdStartScope, Configured, Credential, Endpoint, FunctionSpec, Guest,
    Protocol, ProviderError, ProviderInfo, ProviderResult, Settings, log,
};

/// Setting keys `configure` understands. Both are supplied by the host (which starts the
/// runtime), not by the user, so `describe` declares no options.
const SETTINGS: [&str; 2] = ["control-url", "token"];
/// Function-spec `options` keys this provider understands.
const OPTIONS: [&str; 5] = [
    "keep-alive-ms",
    "max-instances",
    "min-instances",
    "restart-on-crash",
    "protocol",
];
/// The measurement function's protocol variable (`stellar_measure::grpc::PROTOCOL_ENV`).
const PROTOCOL_ENV: &str = "STELLAR_PROTOCOL";
/// The only host the adapter may call: the runtime listens on loopback.
const CONTROL_HOST: &str = "127.0.0.1";

/// What `configure` established.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    control: BaseUrl,
    token: String,
}

impl Config {
    fn from_settings(settings: Vec<(String, String)>) -> ProviderResult<Self> {
        let settings = Settings::from(settings);
        settings.deny_unknown(&SETTINGS)?;
        let url = settings.require("control-url")?;
        let control = BaseUrl::parse(url)?;
        if control.scheme() != Scheme::Http
            || control.host() != CONTROL_HOST
            || control.port().is_none()
        {
            return Err(ProviderError::Invalid(format!(
                "setting `control-url` must look like http://{CONTROL_HOST}:<port>, got {url:?}"
            )));
        }
        let token = settings.require("token")?.to_string();
        Ok(Self { control, token })
    }

    fn request(&self, method: Method, path: &str) -> Request<'static> {
        self.control.request(method, path).bearer(&self.token)
    }
}

static CONFIG: Configured<Config> = Configured::new();

/// Body of `PUT /v1/functions/<name>`.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct FunctionRequest<'a> {
    artifact_sha256: &'a str,
    memory_mb: u32,
    timeout_s: u32,
    env: BTreeMap<&'a str, &'a str>,
    tags: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance_concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_instances: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_instances: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_on_crash: Option<bool>,
}

/// A function as the runtime reports it (unknown fields are ignored).
#[derive(Debug, Deserialize, PartialEq, Eq)]
struct FunctionInfo {
    name: String,
    url: String,
    #[serde(default)]
    artifact_sha256: Option<String>,
    #[serde(default)]
    created_unix_ms: Option<u64>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl FunctionInfo {
    /// The endpoint; `meta` carries the artifact, the creation time (`created-unix-ms`, read
    /// by `stellar cleanup --older-than`) and the `stellar-run` tag when the runtime has them.
    fn into_endpoint(self) -> Endpoint {
        let mut meta = Vec::new();
        if let Some(sha) = self.artifact_sha256 {
            meta.push(("artifact-sha256".to_string(), sha));
        }
        if let Some(ms) = self.created_unix_ms.filter(|ms| *ms > 0) {
            meta.push(("created-unix-ms".to_string(), ms.to_string()));
        }
        if let Some(run) = self.tags.get("stellar-run") {
            meta.push(("stellar-run".to_string(), run.clone()));
        }
        Endpoint {
            id: self.name,
            url: self.url,
            protocol: Protocol::Http,
            meta,
        }
    }
}

#[derive(Debug, Deserialize)]
struct FunctionList {
    functions: Vec<FunctionInfo>,
}

/// Reply to `PUT /v1/artifacts/<sha256>`.
#[derive(Debug, Deserialize)]
struct StoredArtifact {
    sha256: String,
    size: u64,
}

/// The provider-specific knobs of a function spec.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    keep_alive_ms: Option<u64>,
    max_instances: Option<u32>,
    /// Always-ready instances started at deploy time.
    min_instances: Option<u32>,
    /// Restart a crashed process in its instance slot.
    restart_on_crash: Option<bool>,
    /// The functions speak gRPC (`protocol=grpc`): started with `STELLAR_PROTOCOL=grpc`,
    /// their endpoints are `grpc` ones.
    grpc: bool,
}

impl Options {
    fn parse(options: &[(String, String)]) -> ProviderResult<Self> {
        let settings = Settings::from(options.to_vec());
        if let Some((key, _)) = settings.iter().find(|(k, _)| !OPTIONS.contains(k)) {
            return Err(ProviderError::Invalid(format!(
                "unknown option `{key}` for the local provider (known: {})",
                OPTIONS.join(", ")
            )));
        }
        let parse_error = |e: ProviderError| match e {
            ProviderError::Invalid(m) => ProviderError::Invalid(m.replacen("setting", "option", 1)),
            other => other,
        };
        Ok(Self {
            keep_alive_ms: settings.parse("keep-alive-ms").map_err(parse_error)?,
            max_instances: settings.parse("max-instances").map_err(parse_error)?,
            min_instances: settings.parse("min-instances").map_err(parse_error)?,
            restart_on_crash: settings.parse("restart-on-crash").map_err(parse_error)?,
            grpc: match settings.get("protocol") {
                None | Some("http") => false,
                Some("grpc") => true,
                Some(other) => {
                    return Err(ProviderError::Invalid(format!(
                        "option `protocol`: expected http or grpc, got {other:?}"
                    )));
                }
            },
        })
    }
}

/// Function names go into URL paths: letters, digits and `-` only.
fn check_name(name: &str) -> ProviderResult<()> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "function name {name:?} must be non-empty and use only letters, digits and `-`"
        )))
    }
}

fn check_sha256(sha: &str) -> ProviderResult<()> {
    if sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "artifact sha256 {sha:?} is not 64 lower-case hex digits"
        )))
    }
}

/// Streams the artifact to the runtime and returns its SHA-256.
fn upload(config: &Config, artifact: &Artifact) -> ProviderResult<String> {
    let sha = artifact.sha256();
    check_sha256(&sha)?;
    let size = artifact.size();
    log::info(format!(
        "uploading artifact `{}` ({size} bytes, sha256 {sha})",
        artifact.file_name()
    ));
    let stored: StoredArtifact = config
        .request(Method::Put, &format!("/v1/artifacts/{sha}"))
        .artifact(artifact)
        .send()?
        .error_for_status()?
        .json()?;
    if stored.sha256 != sha || stored.size != size {
        return Err(ProviderError::Other(format!(
            "the local runtime stored artifact {} ({} bytes) but {sha} ({size} bytes) was sent",
            stored.sha256, stored.size
        )));
    }
    Ok(sha)
}

fn list_functions(config: &Config) -> ProviderResult<Vec<FunctionInfo>> {
    let list: FunctionList = config
        .request(Method::Get, "/v1/functions")
        .send()?
        .error_for_status()?
        .json()?;
    Ok(list.functions)
}

/// The artifact an existing function runs, for an update that brings no new artifact.
fn current_artifact(config: &Config, name: &str) -> ProviderResult<String> {
    let info = list_functions(config)?
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ProviderError::NotFound(format!("function `{name}` does not exist")))?;
    info.artifact_sha256.ok_or_else(|| {
        ProviderError::Invalid(format!(
            "updating `{name}` without an artifact needs the runtime to report its artifact_sha256"
        ))
    })
}

fn function_request<'a>(
    spec: &'a FunctionSpec,
    artifact_sha256: &'a str,
    options: &Options,
) -> FunctionRequest<'a> {
    let map = |pairs: &'a [(String, String)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    };
    let mut env: BTreeMap<&str, &str> = map(&spec.env);
    if options.grpc {
        env.insert(PROTOCOL_ENV, "grpc");
    }
    FunctionRequest {
        artifact_sha256,
        memory_mb: spec.memory_mb,
        timeout_s: spec.timeout_s,
        env,
        tags: map(&spec.tags),
        instance_concurrency: (spec.instance_concurrency != 0).then_some(spec.instance_concurrency),
        keep_alive_ms: options.keep_alive_ms,
        max_instances: options.max_instances,
        min_instances: options.min_instances,
        restart_on_crash: options.restart_on_crash,
    }
}

/// Creates or replaces function `name` from `spec`. Without an artifact, a deploy fails and
/// an update keeps the function's current artifact.
fn put_function(name: &str, spec: &FunctionSpec, is_update: bool) -> ProviderResult<Endpoint> {
    check_name(name)?;
    let options = Options::parse(&spec.options)?;
    let config = CONFIG.get()?;
    let sha = match (&spec.artifact, is_update) {
        (Some(artifact), _) => upload(&config, artifact)?,
        (None, true) => current_artifact(&config, name)?,
        (None, false) => {
            return Err(ProviderError::Invalid(format!(
                "deploying `{name}` to the local provider needs a native-binary artifact"
            )));
        }
    };
    let body = function_request(spec, &sha, &options);
    let info: FunctionInfo = config
        .request(Method::Put, &format!("/v1/functions/{name}"))
        .json(&body)?
        .send()?
        .error_for_status()?
        .json()?;
    log::info(format!("function `{}` serves {}", info.name, info.url));
    let mut endpoint = info.into_endpoint();
    endpoint.meta = vec![("artifact-sha256".to_string(), sha)];
    if options.grpc {
        endpoint.protocol = Protocol::Grpc;
    }
    Ok(endpoint)
}

struct Local;

impl Guest for Local {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "local".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            allowed_hosts: vec![CONTROL_HOST.to_string()],
            // The runtime's gateway listens on loopback too.
            endpoint_hosts: vec![CONTROL_HOST.to_string()],
            artifacts: vec![ArtifactKind::NativeBinary],
            credentials: Vec::new(),
            options: Vec::new(),
            cold_start_scope: ColdStartScope::Function,
            instance_concurrency: 1,
        }
    }

    /// The local runtime needs no credentials: the host-supplied `token` authenticates.
    fn configure(
        settings: Vec<(String, String)>,
        _credentials: Vec<Credential>,
    ) -> ProviderResult<()> {
        CONFIG.set(Config::from_settings(settings)?);
        Ok(())
    }

    fn list_apis() -> ProviderResult<Vec<Endpoint>> {
        let config = CONFIG.get()?;
        Ok(list_functions(&config)?
            .into_iter()
            .map(FunctionInfo::into_endpoint)
            .collect())
    }

    fn deploy_function(spec: FunctionSpec) -> ProviderResult<Endpoint> {
        put_function(&spec.name, &spec, false)
    }

    fn update_function(id: String, spec: FunctionSpec) -> ProviderResult<Endpoint> {
        put_function(&id, &spec, true)
    }

    fn remove_function(id: String) -> ProviderResult<()> {
        check_name(&id)?;
        let config = CONFIG.get()?;
        config
            .request(Method::Delete, &format!("/v1/functions/{id}"))
            .send()?
            .error_for_status()?;
        Ok(())
    }
}

stellar_guest_sdk::export!(Local);

#[cfg(test)]
mod tests {
    use stellar_guest_sdk::Arch;

    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn spec(options: &[(&str, &str)], instance_concurrency: u32) -> FunctionSpec {
        FunctionSpec {
            name: "f-1".to_string(),
            memory_mb: 128,
            timeout_s: 30,
            arch: Arch::X8664,
            env: pairs(&[("B", "2"), ("A", "1")]),
            tags: pairs(&[("stellar-run", "r1")]),
            instance_concurrency,
            options: pairs(options),
            artifact: None,
        }
    }

    #[test]
    fn describe_declares_loopback_only() {
        let info = Local::describe();
        assert_eq!(info.name, "local");
        assert_eq!(info.allowed_hosts, vec!["127.0.0.1".to_string()]);
        assert_eq!(info.endpoint_hosts, vec!["127.0.0.1".to_string()]);
        assert_eq!(info.artifacts, vec![ArtifactKind::NativeBinary]);
        assert!(info.credentials.is_empty());
        // `control-url` and `token` come from the host, not from the user's settings.
        assert!(info.options.is_empty());
        assert_eq!(info.cold_start_scope, ColdStartScope::Function);
        assert_eq!(info.instance_concurrency, 1);
    }

    #[test]
    fn configure_validates_settings() {
        let ok = Config::from_settings(pairs(&[
            ("control-url", "http://127.0.0.1:41234/"),
            ("token", "t0k"),
        ]))
        .unwrap();
        assert_eq!(ok.control.authority(), "127.0.0.1:41234");
        let r = ok.request(Method::Get, "/v1/functions");
        assert_eq!(r.path_and_query, "/v1/functions");
        assert!(
            r.headers
                .contains(&("authorization".into(), "Bearer t0k".into()))
        );

        let invalid = |items: &[(&str, &str)]| match Config::from_settings(pairs(items)) {
            Err(ProviderError::Invalid(m)) => m,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert_eq!(invalid(&[("token", "t")]), "missing setting `control-url`");
        assert_eq!(
            invalid(&[("control-url", "http://127.0.0.1:1")]),
            "missing setting `token`"
        );
        for url in [
            "http://localhost:1",
            "http://127.0.0.1",
            "https://127.0.0.1:1",
            "http://10.0.0.1:1",
        ] {
            assert!(
                invalid(&[("control-url", url), ("token", "t")]).contains("must look like"),
                "{url}"
            );
        }
        assert!(invalid(&[("control-url", "nope"), ("token", "t")]).contains("invalid URL"));
        assert!(
            invalid(&[
                ("control-url", "http://127.0.0.1:1"),
                ("token", "t"),
                ("x", "1")
            ])
            .starts_with("unknown setting `x`")
        );
    }

    #[test]
    fn function_request_omits_defaults() {
        let spec0 = spec(&[], 0);
        let body = function_request(&spec0, "ab", &Options::parse(&spec0.options).unwrap());
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "artifact_sha256": "ab", "memory_mb": 128, "timeout_s": 30,
                "env": {"A": "1", "B": "2"}, "tags": {"stellar-run": "r1"},
            })
        );

        let spec1 = spec(
            &[
                ("keep-alive-ms", "1500"),
                ("max-instances", "4"),
                ("min-instances", "2"),
                ("restart-on-crash", "true"),
            ],
            2,
        );
        let body = function_request(&spec1, "ab", &Options::parse(&spec1.options).unwrap());
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["instance_concurrency"], 2);
        assert_eq!(json["keep_alive_ms"], 1500);
        assert_eq!(json["max_instances"], 4);
        assert_eq!(json["min_instances"], 2);
        assert_eq!(json["restart_on_crash"], true);
    }

    #[test]
    fn options_are_checked() {
        let err = Options::parse(&pairs(&[("keep-alive", "1")])).unwrap_err();
        assert_eq!(
            err,
            ProviderError::Invalid(
                "unknown option `keep-alive` for the local provider (known: keep-alive-ms, max-instances, min-instances, restart-on-crash)"
                    .to_string()
            )
        );
        let err = Options::parse(&pairs(&[("max-instances", "-1")])).unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.starts_with("option `max-instances` = \"-1\"")),
            "{err:?}"
        );
    }

    #[test]
    fn names_and_hashes_are_checked() {
        assert!(check_name("fn-1-A").is_ok());
        for bad in ["", "a/b", "a b", "../x", "ä"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_sha256(&"a".repeat(64)).is_ok());
        assert!(check_sha256(&"A".repeat(64)).is_err());
        assert!(check_sha256("abc").is_err());
    }

    #[test]
    fn function_info_becomes_endpoint() {
        let list: FunctionList = serde_json::from_str(
            r#"{"functions":[
                {"name":"f","url":"http://127.0.0.1:9/f","artifact_sha256":"ab","memory_mb":128},
                {"name":"g","url":"http://127.0.0.1:9/g"},
                {"name":"h","url":"http://127.0.0.1:9/h","created_unix_ms":1700000000000,
                 "tags":{"stellar-run":"abc123","other":"x"}}]}"#,
        )
        .unwrap();
        let endpoints: Vec<Endpoint> = list
            .functions
            .into_iter()
            .map(FunctionInfo::into_endpoint)
            .collect();
        assert_eq!(
            endpoints,
            vec![
                Endpoint {
                    id: "f".into(),
                    url: "http://127.0.0.1:9/f".into(),
                    protocol: Protocol::Http,
                    meta: vec![("artifact-sha256".into(), "ab".into())],
                },
                Endpoint {
                    id: "g".into(),
                    url: "http://127.0.0.1:9/g".into(),
                    protocol: Protocol::Http,
                    meta: vec![],
                },
                Endpoint {
                    id: "h".into(),
                    url: "http://127.0.0.1:9/h".into(),
                    protocol: Protocol::Http,
                    meta: vec![
                        ("created-unix-ms".into(), "1700000000000".into()),
                        ("stellar-run".into(), "abc123".into()),
                    ],
                },
            ]
        );
    }
}
