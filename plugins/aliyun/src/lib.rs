//! The `aliyun` provider adapter: deploys functions to Alibaba Cloud Function Compute 3.0
//! through its REST API (no SDK) and makes each one public through an anonymous HTTP trigger.
//!
//! Calls (all ACS3-HMAC-SHA256-signed in the guest, see [`client`]; paths and actions from
//! PyPI `alibabacloud_fc20230330` 4.8.3 `client.py`):
//! - deploy: `POST /2023-03-30/functions` (CreateFunction, runtime `custom.debian12`, the zip
//!   streamed inline as base64 in `code.zipFile`, `customRuntimeConfig` = `/code/bootstrap` on
//!   port 9000), wait for `state` = `Active` and `lastUpdateStatus` = `Successful` (GetFunction),
//!   then `POST /2023-03-30/functions/{name}/triggers` (CreateTrigger, `authType` anonymous);
//!   the endpoint is the trigger's `httpTrigger.urlInternet`. A failure after the function
//!   exists removes it again, so a failed deploy leaves nothing behind;
//! - update: `PUT /2023-03-30/functions/{name}` (UpdateFunction) with only the fields that
//!   differ from GetFunction's answer (plus the code when an artifact is given), then a wait for
//!   `lastUpdateStatus` = `Successful`;
//! - remove: the triggers first (`DELETE .../triggers/{trigger}`), then
//!   `DELETE /2023-03-30/functions/{name}`; a function without stellar's `stellar-run` tag is
//!   left alone (its name was taken by someone else);
//! - list: `GET /2023-03-30/functions?prefix=st-` (paged by `nextToken`), functions that have
//!   stellar's HTTP trigger.
//!
//! Credentials arrive as the `alibaba` credential the host grants (never as settings); the
//! options (region, endpoint overrides, runtime, sizes, waiting) are declared in
//! `config::options`. The pure parts (settings, bodies, error mapping) live in their own
//! modules and are unit-tested natively; waiting and retries are the guest SDK's.

mod client;
mod config;
mod fc_error;
mod model;

use std::time::{Duration, Instant};

use stellar_guest_sdk::http::{Body, Method};
use stellar_guest_sdk::retry::{Backoff, Poll, WasiClock, poll};
use stellar_guest_sdk::{
    Artifact, ArtifactKind, ColdStartScope, Configured, Credential, CredentialKind, Credentials,
    Endpoint, FunctionSpec, Guest, ProviderError, ProviderInfo, ProviderResult, log,
};

use crate::client::{Fc, segment};
use crate::config::Config;
use crate::fc_error::FcError;
use crate::model::{
    CreateFunction, Function, ListFunctions, ListTriggers, NAME_PREFIX, RUN_TAG, TRIGGER_NAME,
    Trigger, UpdateFunction,
};

/// Hosts the adapter may call: the regional FC 3.0 APIs (`fcv3.<region>.aliyuncs.com`, a few
/// `<region>.fc.aliyuncs.com`).
const ALLOWED_HOSTS: [&str; 1] = ["*.aliyuncs.com"];
/// Hosts the endpoints it returns are on: HTTP trigger URLs,
/// `https://<name>-<id>.<region>.fcapp.run`. (A `function-url-override` adds its own host.)
const ENDPOINT_HOSTS: [&str; 1] = ["*.fcapp.run"];
/// Functions listed per ListFunctions page (the API's maximum).
const LIST_PAGE: &str = "100";

static CONFIG: Configured<Config> = Configured::new();

fn function_path(name: &str) -> String {
    format!("/2023-03-30/functions/{}", segment(name))
}

fn triggers_path(name: &str) -> String {
    format!("{}/triggers", function_path(name))
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn get_function(fc: &Fc<'_>, name: &str) -> Result<Function, FcError> {
    fc.json::<(), _>("GetFunction", Method::Get, &function_path(name), &[], None)
}

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `state` = `Active` and `lastUpdateStatus` = `Successful` (after CreateFunction).
    Active,
    /// `lastUpdateStatus` = `Successful` (after UpdateFunction).
    Updated,
}

/// What one GetFunction answer means for the wait: done, still going (the status seen), or
/// failed (code and reason). Absent statuses count as done; unknown ones keep polling.
fn step(target: Target, f: &Function) -> Result<Poll<()>, (String, String)> {
    let failed = |code: &Option<String>, reason: &Option<String>| {
        Err((
            code.clone().unwrap_or_default(),
            reason
                .clone()
                .unwrap_or_else(|| "(no reason given)".to_string()),
        ))
    };
    if target == Target::Active {
        match f.state.as_deref() {
            None | Some("Active") => {}
            Some("Failed") => return failed(&f.state_reason_code, &f.state_reason),
            Some(other) => return Ok(Poll::Pending(format!("state {other}"))),
        }
    }
    match f.last_update_status.as_deref() {
        None | Some("Successful") => Ok(Poll::Done(())),
        Some("Failed") => failed(
            &f.last_update_status_reason_code,
            &f.last_update_status_reason,
        ),
        Some(other) => Ok(Poll::Pending(format!("lastUpdateStatus {other}"))),
    }
}

/// Polls GetFunction until `target` (the guest SDK's `poll`: at once, then backing off from
/// `poll-interval-ms` up to 8 times that, for at most `wait-timeout-s`).
fn wait(fc: &Fc<'_>, config: &Config, target: Target, name: &str) -> ProviderResult<Function> {
    let started = Instant::now();
    let what = match target {
        Target::Active => "become Active",
        Target::Updated => "finish updating",
    };
    let backoff = Backoff::new(config.poll_interval, config.poll_interval.saturating_mul(8));
    let mut last = Function::default();
    let outcome = poll(&mut WasiClock::new(), backoff, config.wait_timeout, || {
        let function = get_function(fc, name).map_err(ProviderError::from)?;
        let seen = step(target, &function);
        last = function;
        seen.map_err(|(code, reason)| {
            let code = if code.is_empty() {
                String::new()
            } else {
                format!("{code}: ")
            };
            ProviderError::Other(format!(
                "function `{name}` failed to {what}: {code}{reason}"
            ))
        })
    })?;
    outcome.map_err(|timed_out| {
        ProviderError::Transient(format!(
            "function `{name}` did not {what} within {} s (still {}); raise the \
             `wait-timeout-s` setting to wait longer",
            config.wait_timeout.as_secs(),
            timed_out.last_status
        ))
    })?;
    log::debug(format!(
        "function `{name}`: waited {} for it to {what}",
        seconds(started.elapsed())
    ));
    Ok(last)
}

/// The body of CreateFunction / UpdateFunction with the zip streamed inside.
fn zip_body<'a>(prefix_suffix: (Vec<u8>, Vec<u8>), artifact: &'a Artifact) -> Body<'a> {
    let (prefix, suffix) = prefix_suffix;
    Body::Base64Artifact {
        prefix,
        artifact,
        suffix,
    }
}

/// Stellar's HTTP trigger of `name`, if it has one.
fn find_trigger(fc: &Fc<'_>, name: &str) -> Result<Option<Trigger>, FcError> {
    let path = format!("{}/{}", triggers_path(name), segment(TRIGGER_NAME));
    match fc.json::<(), Trigger>("GetTrigger", Method::Get, &path, &[], None) {
        Ok(trigger) => Ok(Some(trigger)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates the anonymous HTTP trigger (or reads the existing one); returns its public URL.
fn ensure_trigger(fc: &Fc<'_>, name: &str) -> ProviderResult<String> {
    let created = fc.json::<_, Trigger>(
        "CreateTrigger",
        Method::Post,
        &triggers_path(name),
        &[],
        Some(&model::create_http_trigger()),
    );
    let trigger = match created {
        Ok(trigger) => trigger,
        Err(e) if e.code == "TriggerAlreadyExists" => find_trigger(fc, name)?.ok_or_else(|| {
            ProviderError::Other(format!("trigger `{TRIGGER_NAME}` of `{name}` vanished"))
        })?,
        Err(e) => return Err(e.into()),
    };
    trigger.url().map(str::to_string).ok_or_else(|| {
        ProviderError::Other(format!(
            "the HTTP trigger of `{name}` has no httpTrigger.urlInternet (is internet access \
             disabled for it?)"
        ))
    })
}

/// Deletes every trigger of `name`, then the function.
fn delete_function(fc: &Fc<'_>, name: &str) -> Result<(), FcError> {
    let mut token: Option<String> = None;
    let mut triggers = Vec::new();
    loop {
        let mut query = vec![("limit", LIST_PAGE)];
        if let Some(t) = token.as_deref() {
            query.push(("nextToken", t));
        }
        let page: ListTriggers = fc.json::<(), _>(
            "ListTriggers",
            Method::Get,
            &triggers_path(name),
            &query,
            None,
        )?;
        triggers.extend(page.triggers.into_iter().map(|t| t.trigger_name));
        token = page.next_token.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    for trigger in triggers {
        let path = format!("{}/{}", triggers_path(name), segment(&trigger));
        match fc.call("DeleteTrigger", Method::Delete, &path, &[], Body::None) {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    fc.call(
        "DeleteFunction",
        Method::Delete,
        &function_path(name),
        &[],
        Body::None,
    )?;
    Ok(())
}

/// After a failed deploy step: remove what was created, then report the original error.
fn roll_back(fc: &Fc<'_>, name: &str, error: ProviderError) -> ProviderError {
    log::warn(format!(
        "deploying `{name}` failed; removing the function again"
    ));
    if let Err(e) = delete_function(fc, name)
        && !e.is_not_found()
    {
        log::warn(format!(
            "could not remove `{name}` after the failed deploy: {}",
            e.message
        ));
    }
    error
}

fn deploy(spec: &FunctionSpec) -> ProviderResult<Endpoint> {
    let name = spec.name.as_str();
    let config = CONFIG.get()?;
    model::check_spec(&config, name, spec)?;
    let artifact = spec.artifact.as_ref().ok_or_else(|| {
        ProviderError::Invalid(format!(
            "deploying `{name}` to Function Compute needs an fc-custom-zip artifact (a zip with \
             `bootstrap` at its root)"
        ))
    })?;
    let fc = Fc::new(&config);
    let started = Instant::now();
    let body = CreateFunction::new(&config, spec);
    log::info(format!(
        "creating function `{name}` in {} ({}, {} MB, {} vCPU, {} s, zip {} bytes, {} inline)",
        config.region,
        config.runtime,
        spec.memory_mb,
        body.cpu,
        spec.timeout_s,
        artifact.size(),
        model::inline_size(artifact.size())
    ));
    let created = fc.call(
        "CreateFunction",
        Method::Post,
        "/2023-03-30/functions",
        &[],
        zip_body(body.prefix_suffix()?, artifact),
    );
    match created {
        Ok(_) => {}
        Err(e) if e.code == "FunctionAlreadyExists" => {
            return Err(ProviderError::Invalid(format!(
                "a function named `{name}` already exists in {}; stellar did not create it and \
                 leaves it alone (FC said: {})",
                config.region, e.message
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let function = match wait(&fc, &config, Target::Active, name) {
        Ok(function) => function,
        Err(e) => return Err(roll_back(&fc, name, e)),
    };
    let url = match ensure_trigger(&fc, name) {
        Ok(url) => url,
        Err(e) => return Err(roll_back(&fc, name, e)),
    };
    let endpoint = model::endpoint(&config, &function, &url);
    log::info(format!(
        "function `{name}` is public at {} (deployed in {})",
        endpoint.url,
        seconds(started.elapsed())
    ));
    Ok(endpoint)
}

fn update(id: &str, spec: &FunctionSpec) -> ProviderResult<Endpoint> {
    let config = CONFIG.get()?;
    model::check_spec(&config, id, spec)?;
    let fc = Fc::new(&config);
    let started = Instant::now();
    let current = get_function(&fc, id)?;
    let diff = UpdateFunction::diff(&config, spec, &current);
    let changed = match &spec.artifact {
        Some(artifact) => {
            log::info(format!(
                "updating `{id}`: code ({} bytes) and {}",
                artifact.size(),
                serde_json::to_string(&diff).unwrap_or_default()
            ));
            fc.call(
                "UpdateFunction",
                Method::Put,
                &function_path(id),
                &[],
                zip_body(diff.prefix_suffix()?, artifact),
            )?;
            true
        }
        None if diff.is_empty() => false,
        None => {
            log::info(format!(
                "updating `{id}`: {}",
                serde_json::to_string(&diff).unwrap_or_default()
            ));
            fc.json::<_, serde_json::Value>(
                "UpdateFunction",
                Method::Put,
                &function_path(id),
                &[],
                Some(&diff),
            )?;
            true
        }
    };
    let function = if changed {
        wait(&fc, &config, Target::Updated, id)?
    } else {
        current
    };
    let url = match find_trigger(&fc, id)?.as_ref().and_then(Trigger::url) {
        Some(url) => url.to_string(),
        None => ensure_trigger(&fc, id)?,
    };
    log::info(format!(
        "function `{id}` updated in {}",
        seconds(started.elapsed())
    ));
    Ok(model::endpoint(&config, &function, &url))
}

fn list() -> ProviderResult<Vec<Endpoint>> {
    let config = CONFIG.get()?;
    let fc = Fc::new(&config);
    let mut endpoints = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![("prefix", NAME_PREFIX), ("limit", LIST_PAGE)];
        if let Some(t) = token.as_deref() {
            query.push(("nextToken", t));
        }
        let page: ListFunctions = fc.json::<(), _>(
            "ListFunctions",
            Method::Get,
            "/2023-03-30/functions",
            &query,
            None,
        )?;
        for function in page.functions {
            let name = function.function_name.clone();
            if !name.starts_with(NAME_PREFIX) || model::check_name(&name).is_err() {
                continue;
            }
            if let Some(url) = find_trigger(&fc, &name)?.as_ref().and_then(Trigger::url) {
                endpoints.push(model::endpoint(&config, &function, url));
            }
        }
        token = page.next_token.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(endpoints);
        }
    }
}

fn remove(id: &str) -> ProviderResult<()> {
    model::check_name(id)?;
    let config = CONFIG.get()?;
    let fc = Fc::new(&config);
    let function = get_function(&fc, id)?;
    if function.tag(RUN_TAG).is_none() {
        return Err(ProviderError::Invalid(format!(
            "function `{id}` has no `{RUN_TAG}` tag, so stellar did not create it; it is left \
             alone"
        )));
    }
    delete_function(&fc, id)?;
    log::info(format!("function `{id}` and its triggers deleted"));
    Ok(())
}

struct Aliyun;

impl Guest for Aliyun {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "aliyun".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            allowed_hosts: ALLOWED_HOSTS.iter().map(|h| h.to_string()).collect(),
            endpoint_hosts: ENDPOINT_HOSTS.iter().map(|h| h.to_string()).collect(),
            artifacts: vec![ArtifactKind::FcCustomZip],
            credentials: vec![CredentialKind::Alibaba],
            options: config::options(),
            cold_start_scope: ColdStartScope::Function,
            instance_concurrency: 1,
        }
    }

    fn configure(
        settings: Vec<(String, String)>,
        credentials: Vec<Credential>,
    ) -> ProviderResult<()> {
        let config = Config::from_settings(settings, Credentials::from(credentials))?;
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

stellar_guest_sdk::export!(Aliyun);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_declares_fc_and_the_trigger_hosts() {
        let info = Aliyun::describe();
        assert_eq!(info.name, "aliyun");
        assert_eq!(info.allowed_hosts, vec!["*.aliyuncs.com".to_string()]);
        assert_eq!(info.endpoint_hosts, vec!["*.fcapp.run".to_string()]);
        assert_eq!(info.artifacts, vec![ArtifactKind::FcCustomZip]);
        assert_eq!(info.credentials, vec![CredentialKind::Alibaba]);
        assert_eq!(info.cold_start_scope, ColdStartScope::Function);
    }

    fn function(json: serde_json::Value) -> Function {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn waiting_reads_state_and_last_update_status() {
        use serde_json::json;
        let pending = function(json!({"state": "Pending", "lastUpdateStatus": "InProgress"}));
        assert_eq!(
            step(Target::Active, &pending),
            Ok(Poll::Pending("state Pending".into()))
        );
        let updating = function(json!({"state": "Active", "lastUpdateStatus": "InProgress"}));
        assert_eq!(
            step(Target::Active, &updating),
            Ok(Poll::Pending("lastUpdateStatus InProgress".into()))
        );
        assert_eq!(
            step(Target::Updated, &updating),
            Ok(Poll::Pending("lastUpdateStatus InProgress".into()))
        );
        let ready = function(json!({"state": "Active", "lastUpdateStatus": "Successful"}));
        assert_eq!(step(Target::Active, &ready), Ok(Poll::Done(())));
        assert_eq!(
            step(Target::Updated, &function(json!({}))),
            Ok(Poll::Done(()))
        );
        let failed = function(json!({
            "state": "Failed", "stateReasonCode": "FunctionNotStarted",
            "stateReason": "the custom runtime did not listen on 0.0.0.0:9000"
        }));
        assert_eq!(
            step(Target::Active, &failed),
            Err((
                "FunctionNotStarted".into(),
                "the custom runtime did not listen on 0.0.0.0:9000".into()
            ))
        );
        let update_failed = function(json!({"state": "Active", "lastUpdateStatus": "Failed"}));
        assert_eq!(
            step(Target::Updated, &update_failed),
            Err((String::new(), "(no reason given)".into()))
        );
    }

    #[test]
    fn paths_encode_names() {
        assert_eq!(
            function_path("st-r-00-00"),
            "/2023-03-30/functions/st-r-00-00"
        );
        assert_eq!(
            triggers_path("st-r-00-00"),
            "/2023-03-30/functions/st-r-00-00/triggers"
        );
    }
}
