//! The `gcr` provider adapter: deploys the measurement function's OCI image to Google Cloud Run
//! through the Cloud Run Admin API v2 and Artifact Registry (no gcloud, no Docker, no SDK).
//!
//! Calls (Google's REST APIs with a bearer token the adapter gets itself from the
//! service-account key, `stellar-gcp-auth`; see [`client`]):
//! - deploy: the docker repository in Artifact Registry is created if missing
//!   (`GET`/`POST /v1/projects/P/locations/R/repositories?repositoryId=..`, a long-running
//!   operation); the image is pushed there (`stellar-oci-push`, user `oauth2accesstoken`,
//!   `https://R-docker.pkg.dev/P/<repository>/stellar-measure:<service>`);
//!   `POST /v2/projects/P/locations/R/services?serviceId=<name>` creates the service (memory,
//!   CPU, concurrency, max instances, timeout, env, labels with the run id, startup CPU boost)
//!   and the operation is awaited (`GET /v2/<operation>` until `done`); `:setIamPolicy` makes
//!   it public (`roles/run.invoker` for `allUsers`); the endpoint is the service's `uri`. A
//!   failure after the service exists deletes it again;
//! - update: a new image (if given) and `PATCH /v2/<service>` (a new revision), awaited;
//! - remove: `DELETE /v2/<service>`, awaited; a service without stellar's `stellar-run` label
//!   is left alone;
//! - list: `GET /v2/projects/P/locations/R/services` (paged), the ones with stellar's label.
//!
//! The pure parts (settings, bodies, error mapping) live in their own modules and are
//! unit-tested natively; retries and waiting are the guest SDK's.

mod client;
mod config;
mod google_error;
mod model;

use std::time::Instant;

use serde_json::Value;
use stellar_guest_sdk::http::Method;
use stellar_guest_sdk::{
    Artifact, ArtifactKind, ColdStartScope, Configured, Credential, CredentialKind, Credentials,
    Endpoint, FunctionSpec, Guest, ProviderError, ProviderInfo, ProviderResult, log,
};
use stellar_oci_push::{Registry, RegistryAuth, push_image};

use crate::client::{Api, Operation, access_token, query_value};
use crate::config::Config;
use crate::model::{ListServices, NAME_PREFIX, RUN_LABEL, Service};

/// Hosts the adapter may call: the Cloud Run and Artifact Registry APIs, Google's token
/// endpoint and the regional registries (`<region>-docker.pkg.dev`). Settings of type
/// `api-url` add their own hosts.
const ALLOWED_HOSTS: [&str; 4] = [
    "run.googleapis.com",
    "artifactregistry.googleapis.com",
    "oauth2.googleapis.com",
    "*.pkg.dev",
];
/// Where service URIs are: `https://<service>-<hash>-<region>.a.run.app` and
/// `https://<service>-<project number>.<region>.run.app`.
const ENDPOINT_HOSTS: [&str; 1] = ["*.run.app"];
/// Services listed per ListServices page.
const LIST_PAGE: &str = "100";
/// The user Artifact Registry takes an OAuth access token as the password of.
const REGISTRY_USER: &str = "oauth2accesstoken";

static CONFIG: Configured<Config> = Configured::new();

fn services_path(config: &Config) -> String {
    format!("/v2/{}/services", config.parent())
}

fn service_name(config: &Config, id: &str) -> String {
    format!("{}/services/{id}", config.parent())
}

fn get_service(config: &Config, id: &str) -> ProviderResult<Service> {
    Api::run(config)
        .json(
            Method::Get,
            &format!("/v2/{}", service_name(config, id)),
            None,
        )
        .map_err(ProviderError::from)
}

/// Creates the Artifact Registry docker repository if it does not exist yet.
fn ensure_repository(config: &Config) -> ProviderResult<()> {
    let api = Api::artifact_registry(config);
    let path = format!("/v1/{}/repositories/{}", config.parent(), config.repository);
    match api.call(Method::Get, &path, None) {
        Ok(_) => return Ok(()),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    log::info(format!(
        "creating the Artifact Registry docker repository `{}` in {}",
        config.repository, config.region
    ));
    let create = format!(
        "/v1/{}/repositories?repositoryId={}",
        config.parent(),
        query_value(&config.repository)
    );
    let operation: Operation =
        match api.json(Method::Post, &create, Some(&model::repository_body())) {
            Ok(op) => op,
            // Created meanwhile by a concurrent run: fine.
            Err(e) if e.code == "ALREADY_EXISTS" => return Ok(()),
            Err(e) => return Err(e.into()),
        };
    api.wait(
        &format!("creating repository `{}`", config.repository),
        operation,
    )?;
    Ok(())
}

/// Pushes the image and returns its reference by digest.
fn push(config: &Config, artifact: &Artifact, tag: &str) -> ProviderResult<String> {
    if artifact.kind() != ArtifactKind::OciImage {
        return Err(ProviderError::Invalid(format!(
            "Cloud Run needs an oci-image artifact, got {:?}",
            artifact.kind()
        )));
    }
    ensure_repository(config)?;
    let started = Instant::now();
    let registry = Registry {
        base_url: config.registry.to_string(),
        auth: RegistryAuth::Basic {
            user: REGISTRY_USER.to_string(),
            password: access_token(config)?,
        },
    };
    let repository = model::repository_path(config);
    let pushed = push_image(artifact, &registry, &repository, tag).map_err(ProviderError::from)?;
    log::info(format!(
        "pushed the image ({} bytes, {} bytes uploaded, {} blobs already there) to {} in {:.2} s",
        artifact.size(),
        pushed.bytes_uploaded,
        pushed.blobs_skipped,
        pushed.reference,
        started.elapsed().as_secs_f64()
    ));
    Ok(model::image_reference(config, &pushed.digest))
}

/// Deletes service `id` and waits until it is gone.
fn delete_service(config: &Config, id: &str) -> ProviderResult<()> {
    let api = Api::run(config);
    let operation: Operation = api.json(
        Method::Delete,
        &format!("/v2/{}", service_name(config, id)),
        None,
    )?;
    api.wait(&format!("deleting service `{id}`"), operation)?;
    Ok(())
}

/// After a failed deploy step: remove the service again, then report the original error.
fn roll_back(config: &Config, id: &str, error: ProviderError) -> ProviderError {
    log::warn(format!(
        "deploying `{id}` failed; deleting the service again"
    ));
    match delete_service(config, id) {
        Ok(()) | Err(ProviderError::NotFound(_)) => {}
        Err(e) => log::warn(format!(
            "could not delete `{id}` after the failed deploy: {e:?}"
        )),
    }
    error
}

/// The service from a finished operation's `response`, else a fresh GET.
fn service_from(config: &Config, id: &str, response: Value) -> ProviderResult<Service> {
    let service: Service = serde_json::from_value(response).unwrap_or_default();
    if service.uri.is_empty() {
        get_service(config, id)
    } else {
        Ok(service)
    }
}

fn make_public(config: &Config, id: &str) -> ProviderResult<()> {
    Api::run(config)
        .call(
            Method::Post,
            &format!("/v2/{}:setIamPolicy", service_name(config, id)),
            Some(&model::public_policy()),
        )
        .map(|_| ())
        .map_err(|e| {
            let mut error = ProviderError::from(e);
            if let ProviderError::Unauthorized(m) | ProviderError::Invalid(m) = &mut error {
                m.push_str(
                    " (making the service public needs run.services.setIamPolicy, e.g. \
                     roles/run.admin, and an organisation policy that allows allUsers)",
                );
            }
            error
        })
}

fn check_uri(id: &str, service: &Service) -> ProviderResult<()> {
    if service.uri.starts_with("https://") || service.uri.starts_with("http://") {
        Ok(())
    } else {
        Err(ProviderError::Other(format!(
            "service `{id}` is ready but has no usable `uri` ({:?})",
            service.uri
        )))
    }
}

fn deploy(spec: &FunctionSpec) -> ProviderResult<Endpoint> {
    let id = spec.name.as_str();
    let config = CONFIG.get()?;
    model::check_spec(id, spec)?;
    let artifact = spec.artifact.as_ref().ok_or_else(|| {
        ProviderError::Invalid(format!(
            "deploying `{id}` to Cloud Run needs an oci-image artifact"
        ))
    })?;
    let started = Instant::now();
    let image = push(&config, artifact, id)?;
    let body = model::service_body(&config, spec, &image, None)?;
    log::info(format!(
        "creating Cloud Run service `{id}` in {} ({} MB, {} vCPU, concurrency {}, {} s)",
        config.parent(),
        spec.memory_mb,
        model::cpu_for(&config, spec.memory_mb),
        body["template"]["maxInstanceRequestConcurrency"],
        spec.timeout_s
    ));
    let api = Api::run(&config);
    let create = format!("{}?serviceId={}", services_path(&config), query_value(id));
    let operation: Operation = match api.json(Method::Post, &create, Some(&body)) {
        Ok(op) => op,
        Err(e) if e.code == "ALREADY_EXISTS" => {
            return Err(ProviderError::Invalid(format!(
                "a Cloud Run service named `{id}` already exists in {}; stellar did not create \
                 it and leaves it alone (Google said: {})",
                config.region, e.message
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = api
        .wait(&format!("creating service `{id}`"), operation)
        .and_then(|response| service_from(&config, id, response))
        .and_then(|service| {
            make_public(&config, id)?;
            check_uri(id, &service)?;
            Ok(service)
        });
    let service = match outcome {
        Ok(service) => service,
        Err(e) => return Err(roll_back(&config, id, e)),
    };
    let endpoint = model::endpoint(&config, &service);
    log::info(format!(
        "service `{id}` is public at {} (deployed in {:.2} s)",
        endpoint.url,
        started.elapsed().as_secs_f64()
    ));
    Ok(endpoint)
}

fn require_ours(id: &str, service: &Service) -> ProviderResult<()> {
    if service.label(RUN_LABEL).is_none() {
        return Err(ProviderError::Invalid(format!(
            "service `{id}` has no `{RUN_LABEL}` label, so stellar did not create it; it is \
             left alone"
        )));
    }
    Ok(())
}

fn update(id: &str, spec: &FunctionSpec) -> ProviderResult<Endpoint> {
    let config = CONFIG.get()?;
    model::check_spec(id, spec)?;
    let started = Instant::now();
    let current = get_service(&config, id)?;
    require_ours(id, &current)?;
    let image = match &spec.artifact {
        Some(artifact) => push(&config, artifact, id)?,
        None => current
            .template
            .as_ref()
            .and_then(|t| t.pointer("/containers/0/image"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ProviderError::Other(format!("service `{id}` has no container image"))
            })?,
    };
    let full_name = service_name(&config, id);
    let body = model::service_body(&config, spec, &image, Some(&full_name))?;
    let api = Api::run(&config);
    let operation: Operation = api.json(Method::Patch, &format!("/v2/{full_name}"), Some(&body))?;
    let response = api.wait(&format!("updating service `{id}`"), operation)?;
    let service = service_from(&config, id, response)?;
    check_uri(id, &service)?;
    log::info(format!(
        "service `{id}` updated (new revision) in {:.2} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(model::endpoint(&config, &service))
}

fn list() -> ProviderResult<Vec<Endpoint>> {
    let config = CONFIG.get()?;
    let api = Api::run(&config);
    let mut endpoints = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("{}?pageSize={LIST_PAGE}", services_path(&config));
        if let Some(t) = token.as_deref() {
            path.push_str(&format!("&pageToken={}", query_value(t)));
        }
        let page: ListServices = api.json(Method::Get, &path, None)?;
        for service in page.services {
            let id = service.id();
            if id.starts_with(NAME_PREFIX)
                && model::check_name(id).is_ok()
                && service.label(RUN_LABEL).is_some()
                && check_uri(id, &service).is_ok()
            {
                endpoints.push(model::endpoint(&config, &service));
            }
        }
        token = page.next_page_token.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(endpoints);
        }
    }
}

fn remove(id: &str) -> ProviderResult<()> {
    model::check_name(id)?;
    let config = CONFIG.get()?;
    let service = get_service(&config, id)?;
    require_ours(id, &service)?;
    delete_service(&config, id)?;
    log::info(format!("service `{id}` deleted"));
    Ok(())
}

struct Gcr;

impl Guest for Gcr {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "gcr".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            allowed_hosts: ALLOWED_HOSTS.iter().map(|h| h.to_string()).collect(),
            endpoint_hosts: ENDPOINT_HOSTS.iter().map(|h| h.to_string()).collect(),
            artifacts: vec![ArtifactKind::OciImage],
            credentials: vec![CredentialKind::Gcp],
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

stellar_guest_sdk::export!(Gcr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_declares_google_hosts_and_the_gcp_credential() {
        let info = Gcr::describe();
        assert_eq!(info.name, "gcr");
        assert!(
            info.allowed_hosts
                .contains(&"run.googleapis.com".to_string())
        );
        assert!(info.allowed_hosts.contains(&"*.pkg.dev".to_string()));
        assert_eq!(info.endpoint_hosts, vec!["*.run.app".to_string()]);
        assert_eq!(info.artifacts, vec![ArtifactKind::OciImage]);
        assert_eq!(info.credentials, vec![CredentialKind::Gcp]);
    }

    #[test]
    fn paths() {
        let c = crate::config::tests::config(&[]);
        assert_eq!(
            services_path(&c),
            "/v2/projects/proj-123456/locations/us-central1/services"
        );
        assert_eq!(
            service_name(&c, "st-a"),
            "projects/proj-123456/locations/us-central1/services/st-a"
        );
    }
}
