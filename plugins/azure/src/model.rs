//! Names, ARM request bodies and checks for one stellar function on Flex Consumption.
//!
//! Every function gets its own resource group `stellar-<function>` (tagged with the run id,
//! the sub-experiment and the function name), holding a storage account with the deployment
//! container, an FC1 plan and the function app. Removing the function deletes that group, so
//! one idempotent, awaited DELETE removes everything (also for `stellar cleanup`, which knows
//! only the function name from the journal).
//!
//! Shapes: azure-rest-api-specs `specification/resources/.../2021-04-01/examples/
//! CreateResourceGroup.json`, `specification/storage/.../2023-05-01/examples/
//! StorageAccountCreate.json`, `BlobContainersPut.json`, `StorageAccountListKeys.json`,
//! `specification/web/.../AppService/stable/2024-04-01/examples/CreateOrUpdateAppServicePlan.json`,
//! `CreateOrUpdateWebApp.json` (with `functionAppConfig` as in Microsoft's Flex Consumption
//! samples).

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use stellar_guest_sdk::{FunctionSpec, ProviderError, ProviderResult};

/// API versions.
pub(crate) const RESOURCES_API: &str = "2021-04-01";
pub(crate) const STORAGE_API: &str = "2023-05-01";
pub(crate) const WEB_API: &str = "2024-04-01";
/// Blob service version sent with the upload.
pub(crate) const BLOB_API: &str = "2023-11-03";
/// The deployment container and the package blob Flex reads.
pub(crate) const CONTAINER: &str = "app-package";
pub(crate) const PACKAGE_BLOB: &str = "released-package.zip";
/// The function inside the app (the custom-handler zip's `measure/function.json`).
pub(crate) const FUNCTION: &str = "measure";
/// App setting naming the deployment storage connection string.
pub(crate) const DEPLOYMENT_SETTING: &str = "DEPLOYMENT_STORAGE_CONNECTION_STRING";
/// Functions stellar created start with this (the host's naming).
pub(crate) const NAME_PREFIX: &str = "st-";
/// Tag naming the function on every resource group.
pub(crate) const FUNCTION_TAG: &str = "stellar-function";
/// Flex Consumption instance sizes (MB).
pub(crate) const INSTANCE_MEMORY_MB: [u32; 3] = [512, 2048, 4096];

/// The resources of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    pub(crate) function: String,
    pub(crate) group: String,
    pub(crate) storage: String,
    pub(crate) plan: String,
    pub(crate) app: String,
}

impl Names {
    pub(crate) fn new(subscription: &str, function: &str) -> Self {
        let hash = hex::encode(Sha256::digest(format!("{subscription}/{function}")));
        Self {
            function: function.to_string(),
            group: format!("stellar-{function}"),
            // 3-24 lower-case letters and digits, unique across Azure.
            storage: format!("st{}", &hash[..22]),
            plan: format!("{function}-plan"),
            // Site names are global (`<app>.azurewebsites.net`): add a subscription hash.
            app: format!("{function}-{}", &hash[22..30]),
        }
    }

    pub(crate) fn group_path(&self, subscription: &str) -> String {
        format!(
            "/subscriptions/{subscription}/resourcegroups/{}",
            self.group
        )
    }

    fn provider_path(&self, subscription: &str, provider: &str) -> String {
        format!(
            "/subscriptions/{subscription}/resourceGroups/{}/providers/{provider}",
            self.group
        )
    }

    pub(crate) fn storage_path(&self, subscription: &str) -> String {
        format!(
            "{}/{}",
            self.provider_path(subscription, "Microsoft.Storage/storageAccounts"),
            self.storage
        )
    }

    pub(crate) fn plan_path(&self, subscription: &str) -> String {
        format!(
            "{}/{}",
            self.provider_path(subscription, "Microsoft.Web/serverfarms"),
            self.plan
        )
    }

    pub(crate) fn app_path(&self, subscription: &str) -> String {
        format!(
            "{}/{}",
            self.provider_path(subscription, "Microsoft.Web/sites"),
            self.app
        )
    }
}

/// Function names the host gives: `st-` then letters, digits, `-`; short enough for the
/// resource names derived from them.
pub(crate) fn check_name(name: &str) -> ProviderResult<()> {
    if name.starts_with(NAME_PREFIX)
        && (4..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-')
    {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "function name {name:?} must start with `st-` and be at most 40 lower-case letters, \
             digits or `-`"
        )))
    }
}

/// The Flex instance size for `memory_mb`: the smallest of 512/2048/4096 that fits.
pub(crate) fn instance_memory(memory_mb: u32) -> ProviderResult<u32> {
    INSTANCE_MEMORY_MB
        .into_iter()
        .find(|&m| memory_mb <= m)
        .ok_or_else(|| {
            ProviderError::Invalid(format!(
                "FunctionMemoryMB {memory_mb} is more than Flex Consumption's largest instance \
                 (4096 MB; sizes are 512, 2048 and 4096)"
            ))
        })
}

/// Checks a spec before anything is created.
pub(crate) fn check_spec(spec: &FunctionSpec) -> ProviderResult<u32> {
    check_name(&spec.name)?;
    if spec.instance_concurrency > 1000 {
        return Err(ProviderError::Invalid(format!(
            "instance concurrency {} is more than Flex Consumption allows (1000)",
            spec.instance_concurrency
        )));
    }
    if let Some((key, _)) = spec.options.first() {
        return Err(ProviderError::Invalid(format!(
            "unknown option `{key}` for the azure provider (it takes none)"
        )));
    }
    instance_memory(spec.memory_mb)
}

/// Tags of every resource of a function: the spec's (run id among them) plus the name.
pub(crate) fn tags(spec: &FunctionSpec) -> Value {
    let mut tags = serde_json::Map::new();
    for (k, v) in &spec.tags {
        tags.insert(k.clone(), Value::String(v.clone()));
    }
    tags.insert(FUNCTION_TAG.into(), Value::String(spec.name.clone()));
    Value::Object(tags)
}

pub(crate) fn resource_group(location: &str, tags: &Value) -> Value {
    json!({"location": location, "tags": tags})
}

pub(crate) fn storage_account(location: &str, tags: &Value) -> Value {
    json!({
        "location": location,
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
        "tags": tags,
        "properties": {
            "minimumTlsVersion": "TLS1_2",
            "allowBlobPublicAccess": false,
            "supportsHttpsTrafficOnly": true
        }
    })
}

pub(crate) fn container() -> Value {
    json!({"properties": {"publicAccess": "None"}})
}

pub(crate) fn plan(location: &str, tags: &Value) -> Value {
    json!({
        "location": location,
        "kind": "functionapp",
        "sku": {"name": "FC1", "tier": "FlexConsumption"},
        "tags": tags,
        "properties": {"reserved": true}
    })
}

/// The storage connection string the app uses (`AzureWebJobsStorage` and deployment).
pub(crate) fn connection_string(account: &str, key: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};\
         EndpointSuffix=core.windows.net"
    )
}

/// `siteConfig.appSettings`: storage, the spec's environment, what the function reports.
pub(crate) fn app_settings(spec: &FunctionSpec, location: &str, connection: &str) -> Vec<Value> {
    let mut settings = vec![
        json!({"name": "AzureWebJobsStorage", "value": connection}),
        json!({"name": DEPLOYMENT_SETTING, "value": connection}),
        json!({"name": "STELLAR_REGION", "value": location}),
        json!({"name": "STELLAR_MEMORY_MB", "value": spec.memory_mb.to_string()}),
    ];
    for (k, v) in &spec.env {
        settings.push(json!({"name": k, "value": v}));
    }
    settings
}

/// The function app: Linux, Flex plan, custom handler runtime, blob-container deployment.
#[allow(
    clippy::too_many_arguments,
    reason = "one body, every value from the caller"
)]
pub(crate) fn site(
    spec: &FunctionSpec,
    location: &str,
    tags: &Value,
    plan_id: &str,
    container_url: &str,
    connection: &str,
    memory_mb: u32,
    max_instances: u32,
) -> Value {
    let mut scale = json!({
        "maximumInstanceCount": max_instances,
        "instanceMemoryMB": memory_mb
    });
    if spec.instance_concurrency > 0 {
        scale["triggers"] = json!({"http": {"perInstanceConcurrency": spec.instance_concurrency}});
    }
    json!({
        "location": location,
        "kind": "functionapp,linux",
        "tags": tags,
        "properties": {
            "serverFarmId": plan_id,
            "reserved": true,
            "httpsOnly": true,
            "functionAppConfig": {
                "deployment": {"storage": {
                    "type": "blobContainer",
                    "value": container_url,
                    "authentication": {
                        "type": "StorageAccountConnectionString",
                        "storageAccountConnectionStringName": DEPLOYMENT_SETTING
                    }
                }},
                "scaleAndConcurrency": scale,
                "runtime": {"name": "custom", "version": "1.0"}
            },
            "siteConfig": {"appSettings": app_settings(spec, location, connection)}
        }
    })
}

/// `PATCH` body of an update: instance memory (and concurrency).
pub(crate) fn site_patch(spec: &FunctionSpec, memory_mb: u32, max_instances: u32) -> Value {
    let mut scale = json!({
        "maximumInstanceCount": max_instances,
        "instanceMemoryMB": memory_mb
    });
    if spec.instance_concurrency > 0 {
        scale["triggers"] = json!({"http": {"perInstanceConcurrency": spec.instance_concurrency}});
    }
    json!({"properties": {"functionAppConfig": {"scaleAndConcurrency": scale}}})
}

/// `PUT .../config/appsettings` body (replaces the whole set).
pub(crate) fn app_settings_body(spec: &FunctionSpec, location: &str, connection: &str) -> Value {
    let mut map = serde_json::Map::new();
    for setting in app_settings(spec, location, connection) {
        if let (Some(k), Some(v)) = (setting["name"].as_str(), setting["value"].as_str()) {
            map.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    json!({"properties": map})
}

/// The first key of a `listKeys` answer.
pub(crate) fn first_key(list: &Value) -> ProviderResult<String> {
    list.pointer("/keys/0/value")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ProviderError::Other("listKeys returned no key".to_string()))
}

/// Whether `location` (e.g. `eastus`) is among the `geoRegions` answer's names (display names
/// such as `East US`).
pub(crate) fn offers(geo_regions: &Value, location: &str) -> (bool, Vec<String>) {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let names: Vec<String> = geo_regions
        .get("value")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|r| r.get("name").and_then(Value::as_str))
                .map(norm)
                .collect()
        })
        .unwrap_or_default();
    (names.iter().any(|n| *n == norm(location)), names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_azure_rules() {
        let n = Names::new("00000000-1111-2222-3333-444444444444", "st-abc123-00-01");
        assert_eq!(n.group, "stellar-st-abc123-00-01");
        assert_eq!(n.storage.len(), 24);
        assert!(
            n.storage
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert!(n.app.starts_with("st-abc123-00-01-") && n.app.len() == 24);
        let other = Names::new("aaaaaaaa-1111-2222-3333-444444444444", "st-abc123-00-01");
        assert_ne!(n.storage, other.storage, "unique per subscription");
        assert_eq!(
            n.app_path("s"),
            format!(
                "/subscriptions/s/resourceGroups/stellar-st-abc123-00-01/providers/Microsoft.Web/sites/{}",
                n.app
            )
        );
        assert!(check_name("st-abc123-00-01").is_ok());
        for bad in [
            "abc",
            "st-UPPER",
            "st-a/b",
            "st-",
            &format!("st-{}", "a".repeat(40)),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_rounds_up_to_a_flex_size() {
        assert_eq!(instance_memory(128).unwrap(), 512);
        assert_eq!(instance_memory(512).unwrap(), 512);
        assert_eq!(instance_memory(1500).unwrap(), 2048);
        assert_eq!(instance_memory(4096).unwrap(), 4096);
        assert!(instance_memory(4097).is_err());
    }

    #[test]
    fn geo_regions_match_display_names() {
        let regions = json!({"value": [{"name": "East US"}, {"name": "North Europe"}]});
        assert!(offers(&regions, "eastus").0);
        assert!(!offers(&regions, "westus").0);
    }
}
