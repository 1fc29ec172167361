//! The `aws` provider adapter: deploys functions to AWS Lambda through its REST API (no SDK)
//! and makes each one public through a function URL.
//!
//! Calls (all SigV4-signed in the guest, see [`client`]):
//! - deploy: `POST /2015-03-31/functions` (the zip streamed inline as base64), wait for
//!   `State` = `Active`, `POST /2021-10-31/functions/{name}/url` (`AuthType` NONE), then the
//!   two `POST /2015-03-31/functions/{name}/policy` statements a public URL needs;
//! - update: `PUT .../code` (if an artifact is given) and `PUT .../configuration`, each
//!   followed by a wait for `LastUpdateStatus` = `Successful`;
//! - remove: `DELETE /2015-03-31/functions/{name}`;
//! - list: `GET /2015-03-31/functions/` (paged), functions named `st-*` that have a URL.
//!
//! Credentials arrive as the `aws` credential the host grants (never as settings); the
//! options (region, role, endpoint overrides, waiting) are declared in `config::options`.
//!
//! The pure parts (settings, bodies, error mapping, waiting, retries) live in their own
//! modules and are unit-tested natively.

mod aws_error;
mod client;
mod config;
mod model;
mod waiter;

use std::time::{Duration, Instant};

use stellar_guest_sdk::http::{Body, Method};
use stellar_guest_sdk::{
    Artifact, ArtifactKind, ColdStartScope, Configured, Credential, CredentialKind, Endpoint,
    FunctionSpec, Guest, ProviderError, ProviderInfo, ProviderResult, log,
};

use crate::aws_error::AwsError;
use crate::client::Lambda;
use crate::config::Config;
use crate::model::{
    CreateFunction, FunctionConfiguration, FunctionUrlConfig, GetFunction, ListFunctions,
    NAME_PREFIX, UpdateFunctionCode, UpdateFunctionConfiguration, architecture,
};
use crate::waiter::Target;
use stellar_guest_sdk::retry::{Backoff, WasiClock, retry};

/// Longest time spent waiting for a freshly created IAM role to become usable by Lambda.
const ROLE_PROPAGATION_BUDGET: Duration = Duration::from_secs(60);

/// Hosts the adapter may call: the regional Lambda APIs. (Function URLs are `*.on.aws`, but
/// the adapter never calls them; stellar's driver does.)
const ALLOWED_HOSTS: [&str; 1] = ["*.amazonaws.com"];
/// Hosts the endpoints it returns are on: function URLs,
/// `https://<url-id>.lambda-url.<region>.on.aws/`. (A `function-url-override` adds its own
/// host, since that option is declared as an endpoint URL.)
const ENDPOINT_HOSTS: [&str; 1] = ["*.lambda-url.*.on.aws"];
/// Functions listed per ListFunctions page (the API's maximum).
const LIST_PAGE: u32 = 50;

static CONFIG: Configured<Config> = Configured::new();

fn function_path(name: &str) -> String {
    format!("/2015-03-31/functions/{name}")
}

fn url_path(name: &str) -> String {
    format!("/2021-10-31/functions/{name}/url")
}

/// Lambda's "role not usable yet" answer: a new role takes seconds to propagate.
fn role_not_ready(e: &AwsError) -> bool {
    e.code == "InvalidParameterValueException" && e.message.contains("cannot be assumed by Lambda")
}

/// Function URLs are reported with or without the trailing `/`; hand the host one form.
fn normalise_url(url: String) -> String {
    if url.ends_with('/') { url } else { url + "/" }
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The artifact a deploy (or a code update) streams.
fn zip_body<'a>(prefix_suffix: (Vec<u8>, Vec<u8>), artifact: &'a Artifact) -> Body<'a> {
    let (prefix, suffix) = prefix_suffix;
    Body::Base64Artifact {
        prefix,
        artifact,
        suffix,
    }
}

fn wait(
    lambda: &Lambda<'_>,
    config: &Config,
    target: Target,
    name: &str,
) -> ProviderResult<FunctionConfiguration> {
    let started = Instant::now();
    let function = waiter::wait(
        target,
        name,
        &mut WasiClock::new(),
        config.wait_timeout,
        config.poll_interval,
        || {
            let got: GetFunction =
                lambda.json::<(), _>(Method::Get, &function_path(name), "", None)?;
            Ok(got.configuration)
        },
    )?;
    log::debug(format!(
        "function `{name}`: waited {} for it to {target:?}",
        seconds(started.elapsed())
    ));
    Ok(function)
}

/// CreateFunction, retried while a fresh role is not yet usable by Lambda.
fn create_function(
    lambda: &Lambda<'_>,
    config: &Config,
    spec: &FunctionSpec,
    artifact: &Artifact,
) -> ProviderResult<FunctionConfiguration> {
    let body = zip_body(
        CreateFunction::new(spec, &config.role_arn).prefix_suffix()?,
        artifact,
    );
    let budget = config.wait_timeout.min(ROLE_PROPAGATION_BUDGET);
    let outcome = retry(
        &mut WasiClock::new(),
        Backoff::new(Duration::from_secs(1), Duration::from_secs(8)),
        u32::MAX,
        budget,
        || {
            let response = lambda.call(Method::Post, "/2015-03-31/functions", "", body.clone())?;
            response
                .json::<FunctionConfiguration>()
                .map_err(AwsError::local)
        },
        |e| {
            let again = role_not_ready(e);
            if again {
                log::info(format!(
                    "role `{}` is not usable by Lambda yet (new roles take a few seconds); retrying",
                    config.role_arn
                ));
            }
            again
        },
    );
    match outcome.result {
        Ok(function) => Ok(function),
        Err(e) if role_not_ready(&e) => Err(ProviderError::Invalid(format!(
            "the IAM role `{}` cannot be assumed by Lambda (tried {} times over {}): check that \
             it exists and trusts lambda.amazonaws.com (setting `role-arn`); AWS said: {}",
            config.role_arn,
            outcome.attempts,
            seconds(outcome.elapsed),
            e.message
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Adds one resource-policy statement; an existing one with the same id is fine.
fn add_permission(
    lambda: &Lambda<'_>,
    name: &str,
    statement: &serde_json::Value,
) -> ProviderResult<()> {
    let path = format!("{}/policy", function_path(name));
    match lambda.json::<_, serde_json::Value>(Method::Post, &path, "", Some(statement)) {
        Ok(_) => Ok(()),
        Err(e) if e.code == "ResourceConflictException" => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates the public function URL (or reads the existing one) and grants public access.
fn create_url(lambda: &Lambda<'_>, name: &str) -> ProviderResult<String> {
    let created = lambda.json::<_, FunctionUrlConfig>(
        Method::Post,
        &url_path(name),
        "",
        Some(&model::create_url_config()),
    );
    let url = match created {
        Ok(url) => url,
        Err(e) if e.code == "ResourceConflictException" => {
            lambda.json::<(), FunctionUrlConfig>(Method::Get, &url_path(name), "", None)?
        }
        Err(e) => return Err(e.into()),
    };
    for statement in model::permissions() {
        add_permission(lambda, name, &statement)?;
    }
    Ok(normalise_url(url.function_url))
}

/// The function's URL, or `None` when it has no URL config.
fn get_url(lambda: &Lambda<'_>, name: &str) -> ProviderResult<Option<String>> {
    match lambda.json::<(), FunctionUrlConfig>(Method::Get, &url_path(name), "", None) {
        Ok(url) => Ok(Some(normalise_url(url.function_url))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn deploy(spec: &FunctionSpec) -> ProviderResult<Endpoint> {
    let name = spec.name.as_str();
    model::check_spec(name, spec)?;
    let config = CONFIG.get()?;
    let artifact = spec.artifact.as_ref().ok_or_else(|| {
        ProviderError::Invalid(format!(
            "deploying `{name}` to AWS Lambda needs a lambda-zip artifact (a zip with `bootstrap` \
             at its root)"
        ))
    })?;
    let lambda = Lambda::new(&config);
    let started = Instant::now();
    log::info(format!(
        "creating function `{name}` in {} ({} MB, {} s, {}, zip {} bytes)",
        config.region,
        spec.memory_mb,
        spec.timeout_s,
        architecture(spec.arch),
        artifact.size()
    ));
    create_function(&lambda, &config, spec, artifact)?;
    let function = wait(&lambda, &config, Target::Active, name)?;
    let url = create_url(&lambda, name)?;
    let endpoint = model::endpoint(&config, name, &function, &url);
    log::info(format!(
        "function `{name}` is public at {} (deployed in {})",
        endpoint.url,
        seconds(started.elapsed())
    ));
    Ok(endpoint)
}

fn update(id: &str, spec: &FunctionSpec) -> ProviderResult<Endpoint> {
    model::check_spec(id, spec)?;
    let config = CONFIG.get()?;
    let lambda = Lambda::new(&config);
    let started = Instant::now();
    if let Some(artifact) = &spec.artifact {
        log::info(format!(
            "updating the code of `{id}` ({} bytes, {})",
            artifact.size(),
            architecture(spec.arch)
        ));
        let code = UpdateFunctionCode {
            architectures: [architecture(spec.arch)],
        };
        lambda.call(
            Method::Put,
            &format!("{}/code", function_path(id)),
            "",
            zip_body(code.prefix_suffix()?, artifact),
        )?;
        wait(&lambda, &config, Target::Updated, id)?;
    }
    lambda.json::<_, serde_json::Value>(
        Method::Put,
        &format!("{}/configuration", function_path(id)),
        "",
        Some(&UpdateFunctionConfiguration::new(spec)),
    )?;
    let function = wait(&lambda, &config, Target::Updated, id)?;
    let url = match get_url(&lambda, id)? {
        Some(url) => url,
        None => create_url(&lambda, id)?,
    };
    log::info(format!(
        "function `{id}` updated in {}",
        seconds(started.elapsed())
    ));
    Ok(model::endpoint(&config, id, &function, &url))
}

fn list() -> ProviderResult<Vec<Endpoint>> {
    let config = CONFIG.get()?;
    let lambda = Lambda::new(&config);
    let mut endpoints = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let query = list_query(marker.as_deref());
        let page: ListFunctions =
            lambda.json::<(), _>(Method::Get, "/2015-03-31/functions/", &query, None)?;
        for function in page.functions {
            let name = function.function_name.clone();
            if !name.starts_with(NAME_PREFIX) || model::check_name(&name).is_err() {
                continue;
            }
            if let Some(url) = get_url(&lambda, &name)? {
                endpoints.push(model::endpoint(&config, &name, &function, &url));
            }
        }
        marker = page.next_marker.filter(|m| !m.is_empty());
        if marker.is_none() {
            return Ok(endpoints);
        }
    }
}

/// The ListFunctions query for the page after `marker` (an opaque token, encoded).
fn list_query(marker: Option<&str>) -> String {
    match marker {
        Some(m) => format!(
            "Marker={}&MaxItems={LIST_PAGE}",
            stellar_sigv4::uri_encode(m, true)
        ),
        None => format!("MaxItems={LIST_PAGE}"),
    }
}

fn remove(id: &str) -> ProviderResult<()> {
    model::check_name(id)?;
    let config = CONFIG.get()?;
    Lambda::new(&config).call(Method::Delete, &function_path(id), "", Body::None)?;
    log::info(format!("function `{id}` deleted"));
    Ok(())
}

struct Aws;

impl Guest for Aws {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "aws".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            allowed_hosts: ALLOWED_HOSTS.iter().map(|h| h.to_string()).collect(),
            endpoint_hosts: ENDPOINT_HOSTS.iter().map(|h| h.to_string()).collect(),
            artifacts: vec![ArtifactKind::LambdaZip],
            credentials: vec![CredentialKind::Aws],
            options: config::options(),
            cold_start_scope: ColdStartScope::Function,
            instance_concurrency: 1,
        }
    }

    fn configure(
        settings: Vec<(String, String)>,
        credentials: Vec<Credential>,
    ) -> ProviderResult<()> {
        let config = Config::from_settings(settings, credentials)?;
        log::debug(format!("configured: {config:?}"));
        CONFIG.set(config);
        Ok(())
    }

    fn list_apis() -> ProviderResult<Vec<Endpoint>> {
        list()
    }

    fn deploy_function(spec: FunctionSpec) -> ProviderResult<Endpoint> {
        deploy(&spec)
    }

    fn update_function(id: String, spec: FunctionSpec) -> ProviderResult<Endpoint> {
        update(&id, &spec)
    }

    fn remove_function(id: String) -> ProviderResult<()> {
        remove(&id)
    }
}

stellar_guest_sdk::export!(Aws);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_declares_the_lambda_api_only() {
        let info = Aws::describe();
        assert_eq!(info.name, "aws");
        assert_eq!(info.allowed_hosts, vec!["*.amazonaws.com".to_string()]);
        assert_eq!(
            info.endpoint_hosts,
            vec!["*.lambda-url.*.on.aws".to_string()]
        );
        assert_eq!(info.artifacts, vec![ArtifactKind::LambdaZip]);
        assert_eq!(info.credentials, vec![CredentialKind::Aws]);
        let names: Vec<&str> = info.options.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "region",
                "role-arn",
                "endpoint",
                "function-url-override",
                "wait-timeout-s",
                "poll-interval-ms"
            ]
        );
        assert_eq!(info.cold_start_scope, ColdStartScope::Function);
        assert_eq!(info.instance_concurrency, 1);
    }

    #[test]
    fn role_propagation_is_recognised() {
        let not_ready = AwsError {
            code: "InvalidParameterValueException".into(),
            message: "The role defined for the function cannot be assumed by Lambda.".into(),
            error: ProviderError::Invalid("x".into()),
        };
        assert!(role_not_ready(&not_ready));
        let other = AwsError {
            message: "Memory size must be a multiple of 1 MB".into(),
            ..not_ready
        };
        assert!(!role_not_ready(&other));
    }

    #[test]
    fn list_pages_follow_the_marker() {
        assert_eq!(list_query(None), "MaxItems=50");
        assert_eq!(
            list_query(Some("st-f/2+x==")),
            "Marker=st-f%2F2%2Bx%3D%3D&MaxItems=50"
        );
    }

    #[test]
    fn urls_get_one_trailing_slash() {
        assert_eq!(
            normalise_url("https://abc.lambda-url.us-east-1.on.aws".into()),
            "https://abc.lambda-url.us-east-1.on.aws/"
        );
        assert_eq!(
            normalise_url("https://x.on.aws/".into()),
            "https://x.on.aws/"
        );
        assert_eq!(function_path("st-f"), "/2015-03-31/functions/st-f");
        assert_eq!(url_path("st-f"), "/2021-10-31/functions/st-f/url");
    }
}
