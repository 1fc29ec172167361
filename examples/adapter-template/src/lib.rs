//! A stellar provider adapter for FakeCloud, a made-up cloud. Copy it to add yours.
//!
//! An adapter is a WebAssembly component implementing `wit/provider.wit`
//! (`stellar:provider@0.2.0`). stellar calls `describe` (what the adapter needs and may do),
//! then `configure` (the user's settings and the granted credentials), then
//! `deploy-function`, `update-function`, `list-apis` and `remove-function`. The adapter only
//! manages functions: stellar's own driver sends the timed requests to the URLs it returns.
//!
//! FakeCloud's REST API (JSON; every request carries `authorization: Bearer <token>`):
//! - `PUT {api}/v1/functions/{name}`, body [`FunctionRequest`] → 200/201 [`FunctionInfo`]
//! - `GET {api}/v1/functions` → `{"functions": [FunctionInfo, ...]}`
//! - `DELETE {api}/v1/functions/{name}` → 204, or 404 when there is no such function
//! - errors: any other status, with `{"error": "message"}`

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use std::time::Duration;

use stellar_guest_sdk::http::{BaseUrl, Method, Request, Response};
use stellar_guest_sdk::retry::{Backoff, WasiClock, retry};
use stellar_guest_sdk::{
    Arch, ArtifactKind, ColdStartScope, Configured, Credential, CredentialKind, Credentials,
    Endpoint, FunctionSpec, Guest, OptionType, Protocol, ProviderError, ProviderInfo,
    ProviderResult, Settings, log, option,
};

/// The provider name: an experiment picks this adapter with `"Provider": "fakecloud"`.
const NAME: &str = "fakecloud";
/// The environment variable with the API token. stellar hands it over only when the user
/// grants it: `stellar run ... --grant env:FAKECLOUD_TOKEN`.
const TOKEN_VAR: &str = "FAKECLOUD_TOKEN";

// The options of `Stellar.ProviderSettings`, declared in `describe`.
const API: &str = "api";
const FUNCTIONS_URL: &str = "functions-url";
const REGION: &str = "region";
const DEFAULT_API: &str = "https://api.fakecloud.example";
const DEFAULT_REGION: &str = "eu-1";

/// What `configure` established, kept for the calls that follow. No `Debug`: it holds the
/// token, which must never reach a log or an error message.
#[derive(Clone)]
struct Config {
    api: BaseUrl,
    /// Where the timed requests go instead of the URL FakeCloud returns (`{this}/{name}`).
    functions_url: Option<BaseUrl>,
    region: String,
    token: String,
}

/// Component exports have no `self`: the configuration lives in a static between calls.
static CONFIG: Configured<Config> = Configured::new();

impl Config {
    /// Checks the settings and takes the token from the credentials. No network calls here:
    /// `configure` must finish within a few seconds.
    fn new(settings: Vec<(String, String)>, credentials: Vec<Credential>) -> ProviderResult<Self> {
        let settings = Settings::from(settings);
        // The host already refuses undeclared options; this also catches a key the adapter
        // forgot to handle.
        settings.deny_unknown(&[API, FUNCTIONS_URL, REGION])?;
        let token = Credentials::from(credentials)
            .require(&CredentialKind::Env(TOKEN_VAR.to_string()), TOKEN_VAR)?
            .to_string();
        Ok(Self {
            api: BaseUrl::parse(settings.get(API).unwrap_or(DEFAULT_API))?,
            functions_url: settings
                .get(FUNCTIONS_URL)
                .map(BaseUrl::parse)
                .transpose()?,
            region: settings.get(REGION).unwrap_or(DEFAULT_REGION).to_string(),
            token,
        })
    }

    /// An authenticated request to the FakeCloud API.
    fn request(&self, method: Method, path: &str) -> Request<'static> {
        self.api.request(method, path).bearer(&self.token)
    }

    /// The endpoint stellar's driver will send the timed requests to.
    fn endpoint(&self, function: FunctionInfo) -> Endpoint {
        let url = match &self.functions_url {
            Some(base) => format!("{base}/{}", function.name),
            None => function.url,
        };
        Endpoint {
            id: function.name,
            url,
            protocol: Protocol::Http,
            meta: vec![("region".to_string(), self.region.clone())],
        }
    }
}

/// Body of `PUT /v1/functions/{name}`.
#[derive(Debug, Serialize)]
struct FunctionRequest<'a> {
    memory_mb: u32,
    timeout_s: u32,
    region: &'a str,
    env: BTreeMap<&'a str, &'a str>,
    /// stellar's labels (the run id among them), so `stellar cleanup` finds what it made.
    tags: BTreeMap<&'a str, &'a str>,
}

impl<'a> FunctionRequest<'a> {
    fn new(spec: &'a FunctionSpec, region: &'a str) -> Self {
        let map = |pairs: &'a [(String, String)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        };
        Self {
            memory_mb: spec.memory_mb,
            timeout_s: spec.timeout_s,
            region,
            env: map(&spec.env),
            tags: map(&spec.tags),
        }
    }
}

/// A function as FakeCloud reports it (other fields are ignored).
#[derive(Debug, Deserialize)]
struct FunctionInfo {
    name: String,
    url: String,
}

#[derive(Debug, Deserialize)]
struct FunctionList {
    functions: Vec<FunctionInfo>,
}

/// Names and ids go into URL paths: letters, digits and `-` only.
fn check_name(name: &str) -> ProviderResult<()> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "function name {name:?} must use only letters, digits and `-`"
        )))
    }
}

/// Sends the request `build` makes, retrying with exponential backoff (at most 5 tries within
/// 60 s) while FakeCloud throttles (429) or fails transiently (5xx, network), as clouds do
/// under load. A request is rebuilt for every try.
fn send_with_retry(
    build: impl Fn() -> ProviderResult<Request<'static>>,
) -> ProviderResult<Response> {
    retry(
        &mut WasiClock::new(),
        Backoff::new(Duration::from_millis(250), Duration::from_secs(4)),
        5,
        Duration::from_secs(60),
        || build()?.send()?.error_for_status(),
        |e| matches!(e, ProviderError::Throttled(_) | ProviderError::Transient(_)),
    )
    .result
}

/// Creates function `name`, or replaces its configuration (FakeCloud's PUT does both).
fn put_function(name: &str, spec: &FunctionSpec) -> ProviderResult<Endpoint> {
    check_name(name)?;
    // Refuse what the cloud cannot do instead of silently ignoring it.
    if spec.arch != Arch::X8664 {
        return Err(ProviderError::Invalid(
            "FakeCloud runs x86-64 functions only".to_string(),
        ));
    }
    let config = CONFIG.get()?;
    // `send` turns a network failure into a provider error (unreachable: transient) and
    // `error_for_status` maps 401 → unauthorized, 404 → not-found, 429 → throttled,
    // 5xx → transient; the throttled and transient ones are retried.
    let function: FunctionInfo = send_with_retry(|| {
        Ok(config
            .request(Method::Put, &format!("/v1/functions/{name}"))
            .json(&FunctionRequest::new(spec, &config.region))?)
    })?
    .json()?;
    // A real cloud often answers before the function can serve. Poll its status here (with
    // `stellar_guest_sdk::sleep` between polls) until it is ready, so the first timed request
    // does not measure a half-finished deployment.
    let endpoint = config.endpoint(function);
    log::info(format!(
        "function `{}` deployed in {}; requests go to {}",
        endpoint.id, config.region, endpoint.url
    ));
    Ok(endpoint)
}

struct FakeCloud;

impl Guest for FakeCloud {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: NAME.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            // The only host this adapter may call (plus the host of a user-set `api`).
            allowed_hosts: vec!["api.fakecloud.example".to_string()],
            // Where the functions it deploys are reachable (plus a user-set `functions-url`).
            endpoint_hosts: vec!["*.run.fakecloud.example".to_string()],
            // FakeCloud runs its own code: stellar builds nothing.
            artifacts: vec![ArtifactKind::None],
            credentials: vec![CredentialKind::Env(TOKEN_VAR.to_string())],
            options: vec![
                option(
                    API,
                    OptionType::ApiUrl,
                    Some(DEFAULT_API),
                    "base URL of the FakeCloud API",
                ),
                option(
                    FUNCTIONS_URL,
                    OptionType::EndpointUrl,
                    None,
                    "send the timed requests to {functions-url}/{name} instead of the URL the \
                     API returns (a staging or local stand-in)",
                ),
                option(
                    REGION,
                    OptionType::Text,
                    Some(DEFAULT_REGION),
                    "FakeCloud region, sent as a label",
                ),
            ],
            cold_start_scope: ColdStartScope::Function,
            instance_concurrency: 1,
        }
    }

    fn configure(
        settings: Vec<(String, String)>,
        credentials: Vec<Credential>,
    ) -> ProviderResult<()> {
        CONFIG.set(Config::new(settings, credentials)?);
        Ok(())
    }

    fn list_apis() -> ProviderResult<Vec<Endpoint>> {
        let config = CONFIG.get()?;
        let list: FunctionList =
            send_with_retry(|| Ok(config.request(Method::Get, "/v1/functions")))?.json()?;
        Ok(list
            .functions
            .into_iter()
            .map(|f| config.endpoint(f))
            .collect())
    }

    fn deploy_function(spec: FunctionSpec) -> ProviderResult<Endpoint> {
        put_function(&spec.name, &spec)
    }

    fn update_function(id: String, spec: FunctionSpec) -> ProviderResult<Endpoint> {
        put_function(&id, &spec)
    }

    fn remove_function(id: String) -> ProviderResult<()> {
        check_name(&id)?;
        let config = CONFIG.get()?;
        let response = config
            .request(Method::Delete, &format!("/v1/functions/{id}"))
            .send()?;
        // Removing is idempotent: a function that is already gone is fine (`stellar cleanup`
        // may run after an interrupted run removed part of what it made).
        if response.status == 404 {
            log::info(format!("function `{id}` was already gone"));
            return Ok(());
        }
        response.error_for_status()?;
        Ok(())
    }
}

stellar_guest_sdk::export!(FakeCloud);

/// Native unit tests of the parts that need no host: `cargo test` in this directory.
#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn token(value: &str) -> Vec<Credential> {
        vec![Credential {
            kind: CredentialKind::Env(TOKEN_VAR.to_string()),
            values: pairs(&[(TOKEN_VAR, value)]),
        }]
    }

    fn invalid_or_unauthorized(result: ProviderResult<Config>) -> String {
        match result {
            Err(ProviderError::Invalid(m) | ProviderError::Unauthorized(m)) => m,
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn describe_declares_hosts_options_and_the_token() {
        let info = FakeCloud::describe();
        assert_eq!(info.name, "fakecloud");
        assert_eq!(info.allowed_hosts, ["api.fakecloud.example"]);
        assert_eq!(info.endpoint_hosts, ["*.run.fakecloud.example"]);
        assert_eq!(info.artifacts, [ArtifactKind::None]);
        assert_eq!(
            info.credentials,
            [CredentialKind::Env("FAKECLOUD_TOKEN".into())]
        );
        let names: Vec<&str> = info.options.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, [API, FUNCTIONS_URL, REGION]);
    }

    #[test]
    fn configure_applies_defaults_and_reads_the_token() {
        let config = Config::new(vec![], token("s3cret")).unwrap();
        assert_eq!(config.api.to_string(), DEFAULT_API);
        assert!(config.functions_url.is_none());
        assert_eq!(config.region, DEFAULT_REGION);
        let request = config.request(Method::Get, "/v1/functions");
        assert_eq!(request.authority, "api.fakecloud.example");
        assert!(
            request
                .headers
                .contains(&("authorization".into(), "Bearer s3cret".into()))
        );
    }

    #[test]
    fn functions_url_replaces_the_url_the_api_returns() {
        let settings = pairs(&[
            (API, "http://127.0.0.1:8080"),
            (FUNCTIONS_URL, "http://127.0.0.1:8080/invoke/"),
            (REGION, "us-2"),
        ]);
        let config = Config::new(settings, token("t")).unwrap();
        let endpoint = config.endpoint(FunctionInfo {
            name: "st-f1".into(),
            url: "https://st-f1.run.fakecloud.example/".into(),
        });
        assert_eq!(endpoint.id, "st-f1");
        assert_eq!(endpoint.url, "http://127.0.0.1:8080/invoke/st-f1");
        assert_eq!(endpoint.meta, pairs(&[("region", "us-2")]));
    }

    #[test]
    fn configure_refuses_bad_settings_and_a_missing_token() {
        let message = invalid_or_unauthorized(Config::new(pairs(&[("regoin", "x")]), token("t")));
        assert!(message.starts_with("unknown setting `regoin`"), "{message}");
        let message = invalid_or_unauthorized(Config::new(pairs(&[(API, "ftp://x")]), token("t")));
        assert!(message.contains("invalid URL"), "{message}");
        let message = invalid_or_unauthorized(Config::new(vec![], vec![]));
        assert!(message.contains("env:FAKECLOUD_TOKEN"), "{message}");
    }

    #[test]
    fn function_request_body() {
        let spec = FunctionSpec {
            name: "st-f1".into(),
            memory_mb: 256,
            timeout_s: 30,
            arch: Arch::X8664,
            env: pairs(&[("B", "2"), ("A", "1")]),
            tags: pairs(&[("stellar-run", "r1")]),
            instance_concurrency: 0,
            options: vec![],
            artifact: None,
        };
        assert_eq!(
            serde_json::to_value(FunctionRequest::new(&spec, "eu-1")).unwrap(),
            serde_json::json!({
                "memory_mb": 256, "timeout_s": 30, "region": "eu-1",
                "env": {"A": "1", "B": "2"}, "tags": {"stellar-run": "r1"},
            })
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("st-f1").is_ok());
        for bad in ["", "a/b", "../x", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
