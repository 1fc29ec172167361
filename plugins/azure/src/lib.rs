//! The `azure` provider adapter: deploys stellar's measurement function as an Azure Functions
//! custom handler on the **Flex Consumption** plan (FC1, Linux) through ARM's REST API.
//!
//! - deploy: check that the location offers Flex (`geoRegions?sku=FlexConsumption`), then a
//!   resource group per function (tagged with the run id), a storage account, its deployment
//!   container and key (`listKeys`), the package uploaded as `released-package.zip` with
//!   SharedKey, the FC1 plan, the function app (`functionAppConfig`: blob-container
//!   deployment, instance memory, maximum instances, runtime `custom`), then
//!   `syncfunctiontriggers`. Any failure after the group exists deletes the group again;
//! - update: re-upload the package, PATCH the instance memory, replace the app settings;
//! - remove: DELETE the resource group and wait for it;
//! - list: the subscription's function apps tagged `stellar-function`.
//!
//! The service principal arrives as the `azure` credential; options are declared in
//! `config::options`. ARM's token, retries and long-running operations live in [`arm`],
//! SharedKey in [`shared_key`].

mod arm;
mod blob;
mod config;
mod model;
mod shared_key;

use std::time::Instant;

use serde_json::Value;
use stellar_guest_sdk::http::Method;
use stellar_guest_sdk::{
    ArtifactKind, ColdStartScope, Configured, Credential, CredentialKind, Endpoint, FunctionSpec,
    Guest, Protocol, ProviderError, ProviderInfo, ProviderResult, log,
};

use crate::arm::Arm;
use crate::config::Config;
use crate::model::{
    CONTAINER, FUNCTION, FUNCTION_TAG, Names, PACKAGE_BLOB, RESOURCES_API, STORAGE_API, WEB_API,
};

/// ARM, Entra ID and blob storage.
const ALLOWED_HOSTS: [&str; 3] = [
    "management.azure.com",
    "login.microsoftonline.com",
    "*.blob.core.windows.net",
];
/// Function apps: `<app>.azurewebsites.net` (Flex also gives
/// `<app>-<hash>.<region>-01.azurewebsites.net`).
const ENDPOINT_HOSTS: [&str; 3] = [
    "*.azurewebsites.net",
    "*.*.azurewebsites.net",
    "*.*.*.azurewebsites.net",
];

static CONFIG: Configured<Config> = Configured::new();

fn seconds(started: Instant) -> String {
    format!("{:.2} s", started.elapsed().as_secs_f64())
}

/// Fails clearly (before anything is created) when the location has no Flex Consumption.
fn check_location(arm: &Arm<'_>, config: &Config) -> ProviderResult<()> {
    let path = format!(
        "/subscriptions/{}/providers/Microsoft.Web/geoRegions?sku=FlexConsumption",
        config.subscription
    );
    let regions = arm.get(&path, WEB_API)?;
    let (offered, names) = model::offers(&regions, &config.location);
    if offered {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "Stellar.ProviderSettings.location: {:?} does not offer Flex Consumption in this \
             subscription; it is offered in: {}",
            config.location,
            if names.is_empty() {
                "(none listed)".to_string()
            } else {
                names.join(", ")
            }
        )))
    }
}

/// The app's endpoint from its ARM resource.
fn endpoint(config: &Config, names: &Names, site: &Value) -> ProviderResult<Endpoint> {
    let host = site
        .pointer("/properties/defaultHostName")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ProviderError::Other(format!(
                "function app `{}` has no defaultHostName",
                names.app
            ))
        })?;
    let function_url = format!("https://{host}/api/{FUNCTION}");
    let url = config.public_url(&names.function, &function_url);
    let memory = site
        .pointer("/properties/functionAppConfig/scaleAndConcurrency/instanceMemoryMB")
        .and_then(Value::as_u64)
        .map(|m| m.to_string())
        .unwrap_or_default();
    Ok(Endpoint {
        id: names.function.clone(),
        url,
        protocol: Protocol::Http,
        meta: vec![
            ("function-url".into(), function_url),
            ("resource-group".into(), names.group.clone()),
            ("app".into(), names.app.clone()),
            ("location".into(), config.location.clone()),
            ("plan".into(), "FC1".into()),
            ("instance-memory-mb".into(), memory),
        ],
    })
}

/// Storage account, container, key; returns (key, connection string).
fn storage(
    arm: &Arm<'_>,
    config: &Config,
    names: &Names,
    tags: &Value,
) -> ProviderResult<(String, String)> {
    let sub = &config.subscription;
    arm.put_and_wait(
        Method::Put,
        &names.storage_path(sub),
        STORAGE_API,
        &model::storage_account(&config.location, tags),
    )?;
    arm.put_and_wait(
        Method::Put,
        &format!(
            "{}/blobServices/default/containers/{CONTAINER}",
            names.storage_path(sub)
        ),
        STORAGE_API,
        &model::container(),
    )?;
    let keys: Value = arm
        .call(
            Method::Post,
            &format!("{}/listKeys", names.storage_path(sub)),
            STORAGE_API,
            None,
        )?
        .json()?;
    let key = model::first_key(&keys)?;
    let connection = model::connection_string(&names.storage, &key);
    Ok((key, connection))
}

fn sync_triggers(arm: &Arm<'_>, config: &Config, names: &Names) -> ProviderResult<()> {
    arm.call(
        Method::Post,
        &format!(
            "{}/syncfunctiontriggers",
            names.app_path(&config.subscription)
        ),
        WEB_API,
        None,
    )?;
    Ok(())
}

fn upload(config: &Config, names: &Names, key: &str, spec: &FunctionSpec) -> ProviderResult<()> {
    let artifact = spec.artifact.as_ref().ok_or_else(|| {
        ProviderError::Invalid(format!(
            "deploying `{}` to Azure Functions needs a custom-handler-zip artifact",
            spec.name
        ))
    })?;
    blob::put_block_blob(
        &config.blob_base(&names.storage),
        &names.storage,
        key,
        CONTAINER,
        PACKAGE_BLOB,
        artifact,
    )
}

/// Everything after the resource group exists.
fn deploy_into_group(
    arm: &Arm<'_>,
    config: &Config,
    names: &Names,
    spec: &FunctionSpec,
    memory: u32,
    tags: &Value,
) -> ProviderResult<Endpoint> {
    let sub = &config.subscription;
    let (key, connection) = storage(arm, config, names, tags)?;
    upload(config, names, &key, spec)?;
    let plan = arm.put_and_wait(
        Method::Put,
        &names.plan_path(sub),
        WEB_API,
        &model::plan(&config.location, tags),
    )?;
    let plan_id = plan
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| names.plan_path(sub));
    let container_url = format!(
        "https://{}.blob.core.windows.net/{CONTAINER}",
        names.storage
    );
    let site = arm.put_and_wait(
        Method::Put,
        &names.app_path(sub),
        WEB_API,
        &model::site(
            spec,
            &config.location,
            tags,
            &plan_id,
            &container_url,
            &connection,
            memory,
            config.max_instances,
        ),
    )?;
    sync_triggers(arm, config, names)?;
    endpoint(config, names, &site)
}

fn deploy(spec: &FunctionSpec) -> ProviderResult<Endpoint> {
    let memory = model::check_spec(spec)?;
    let config = CONFIG.get()?;
    if spec.artifact.is_none() {
        return Err(ProviderError::Invalid(format!(
            "deploying `{}` to Azure Functions needs a custom-handler-zip artifact",
            spec.name
        )));
    }
    let arm = Arm::new(&config);
    let names = Names::new(&config.subscription, &spec.name);
    let started = Instant::now();
    check_location(&arm, &config)?;
    let tags = model::tags(spec);
    log::info(format!(
        "creating resource group `{}` in {} for `{}` (Flex Consumption, {memory} MB instances)",
        names.group, config.location, spec.name
    ));
    arm.put_and_wait(
        Method::Put,
        &names.group_path(&config.subscription),
        RESOURCES_API,
        &model::resource_group(&config.location, &tags),
    )?;
    match deploy_into_group(&arm, &config, &names, spec, memory, &tags) {
        Ok(endpoint) => {
            log::info(format!(
                "function app `{}` deployed in {}: {}",
                names.app,
                seconds(started),
                endpoint.url
            ));
            Ok(endpoint)
        }
        Err(e) => {
            log::warn(format!(
                "deploying `{}` failed; deleting resource group `{}` so nothing is left behind",
                spec.name, names.group
            ));
            if let Err(cleanup) =
                arm.delete_and_wait(&names.group_path(&config.subscription), RESOURCES_API)
            {
                log::error(format!(
                    "could not delete resource group `{}`: {cleanup:?}",
                    names.group
                ));
            }
            Err(e)
        }
    }
}

fn update(id: &str, spec: &FunctionSpec) -> ProviderResult<Endpoint> {
    let memory = model::check_spec(spec)?;
    model::check_name(id)?;
    let config = CONFIG.get()?;
    let arm = Arm::new(&config);
    let names = Names::new(&config.subscription, id);
    let sub = &config.subscription;
    let started = Instant::now();
    let keys: Value = arm
        .call(
            Method::Post,
            &format!("{}/listKeys", names.storage_path(sub)),
            STORAGE_API,
            None,
        )?
        .json()?;
    let key = model::first_key(&keys)?;
    if spec.artifact.is_some() {
        upload(&config, &names, &key, spec)?;
    }
    arm.put_and_wait(
        Method::Patch,
        &names.app_path(sub),
        WEB_API,
        &model::site_patch(spec, memory, config.max_instances),
    )?;
    let connection = model::connection_string(&names.storage, &key);
    arm.call(
        Method::Put,
        &format!("{}/config/appsettings", names.app_path(sub)),
        WEB_API,
        Some(&model::app_settings_body(
            spec,
            &config.location,
            &connection,
        )),
    )?;
    sync_triggers(&arm, &config, &names)?;
    let site = arm.get(&names.app_path(sub), WEB_API)?;
    log::info(format!(
        "function app `{}` updated in {}",
        names.app,
        seconds(started)
    ));
    endpoint(&config, &names, &site)
}

fn remove(id: &str) -> ProviderResult<()> {
    model::check_name(id)?;
    let config = CONFIG.get()?;
    let names = Names::new(&config.subscription, id);
    let started = Instant::now();
    Arm::new(&config).delete_and_wait(&names.group_path(&config.subscription), RESOURCES_API)?;
    log::info(format!(
        "resource group `{}` deleted in {}",
        names.group,
        seconds(started)
    ));
    Ok(())
}

fn list() -> ProviderResult<Vec<Endpoint>> {
    let config = CONFIG.get()?;
    let arm = Arm::new(&config);
    let mut endpoints = Vec::new();
    let mut page = arm.get(
        &format!(
            "/subscriptions/{}/providers/Microsoft.Web/sites",
            config.subscription
        ),
        WEB_API,
    )?;
    loop {
        for site in page
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(function) = site
                .pointer(&format!("/tags/{FUNCTION_TAG}"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            if model::check_name(function).is_err() {
                continue;
            }
            let names = Names::new(&config.subscription, function);
            if site.get("name").and_then(Value::as_str) == Some(names.app.as_str()) {
                endpoints.push(endpoint(&config, &names, site)?);
            }
        }
        let Some(next) = page
            .get("nextLink")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Ok(endpoints);
        };
        let (scheme, authority, path) = arm::split_url(&next)
            .ok_or_else(|| ProviderError::Other(format!("unusable nextLink {next:?}")))?;
        if !authority.eq_ignore_ascii_case(config.arm.authority()) {
            return Err(ProviderError::Other(format!(
                "ARM returned a nextLink on another host ({authority})"
            )));
        }
        page = arm
            .send(Method::Get, Some((scheme, authority)), path, None)?
            .json()?;
    }
}

struct Azure;

impl Guest for Azure {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "azure".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            allowed_hosts: ALLOWED_HOSTS.iter().map(|h| h.to_string()).collect(),
            endpoint_hosts: ENDPOINT_HOSTS.iter().map(|h| h.to_string()).collect(),
            artifacts: vec![ArtifactKind::CustomHandlerZip],
            credentials: vec![CredentialKind::Azure],
            options: config::options(),
            // Instances belong to the app; stellar deploys one app per function.
            cold_start_scope: ColdStartScope::App,
            instance_concurrency: 16,
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

stellar_guest_sdk::export!(Azure);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_declares_arm_entra_and_blob() {
        let info = Azure::describe();
        assert_eq!(info.name, "azure");
        assert_eq!(info.artifacts, vec![ArtifactKind::CustomHandlerZip]);
        assert_eq!(info.credentials, vec![CredentialKind::Azure]);
        assert!(
            info.allowed_hosts
                .contains(&"management.azure.com".to_string())
        );
        assert!(
            info.endpoint_hosts
                .contains(&"*.azurewebsites.net".to_string())
        );
        let names: Vec<&str> = info.options.iter().map(|o| o.name.as_str()).collect();
        assert!(names.contains(&"function-url-override"), "{names:?}");
    }
}
