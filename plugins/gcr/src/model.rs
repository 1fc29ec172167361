//! Request bodies and response shapes of the Cloud Run Admin API v2 and the Artifact Registry
//! API v1, as Google's protos define them (googleapis `google/cloud/run/v2/service.proto`:
//! `Service` with `labels`, `template`, `uri`, `createTime`, `terminalCondition`;
//! `revision_template.proto`: `RevisionTemplate` with `labels`, `scaling.maxInstanceCount`,
//! `timeout`, `maxInstanceRequestConcurrency`, `containers`; `k8s.min.proto`: `Container` with
//! `image`, `env`, `resources.limits`, `resources.startupCpuBoost`, `ports`;
//! `google/devtools/artifactregistry/v1/repository.proto`: `Repository` with `format`), in
//! their proto3 JSON form (camelCase), plus the checks Cloud Run would make anyway, done first
//! with clearer messages.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use stellar_guest_sdk::{Arch, Endpoint, FunctionSpec, Protocol, ProviderError, ProviderResult};

use crate::config::Config;

/// Names of the services stellar creates start with this (`st-<run>-<NN>-<PP>`).
pub(crate) const NAME_PREFIX: &str = "st-";
/// The label marking services stellar created (the host adds it to every function).
pub(crate) const RUN_LABEL: &str = "stellar-run";
/// The image name inside the Artifact Registry repository.
pub(crate) const IMAGE_NAME: &str = "stellar-measure";
/// The option the host passes for STeLLAR's `CPUBoostEnabled`.
pub(crate) const CPU_BOOST_OPTION: &str = "cpu-boost";
/// Variables Cloud Run sets itself and refuses in a container's `env`.
const RESERVED_ENV: [&str; 4] = ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"];

/// Service ids: 1 to 49 lower-case letters, digits and `-`, starting with a letter, not
/// ending with `-` (Cloud Run's `serviceId` rule).
pub(crate) fn check_name(name: &str) -> ProviderResult<()> {
    let ok = (1..=49).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "service name {name:?} must be 1 to 49 lower-case letters, digits or `-`, starting \
             with a letter and not ending with `-`"
        )))
    }
}

/// Whether a per-function option asks for startup CPU boost.
pub(crate) fn cpu_boost(spec: &FunctionSpec) -> ProviderResult<bool> {
    let mut boost = false;
    for (key, value) in &spec.options {
        if key != CPU_BOOST_OPTION {
            return Err(ProviderError::Invalid(format!(
                "unknown option `{key}` for the gcr provider (it takes `{CPU_BOOST_OPTION}`)"
            )));
        }
        boost = match value.as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(ProviderError::Invalid(format!(
                    "option `{CPU_BOOST_OPTION}` = {other:?} must be true or false"
                )));
            }
        };
    }
    Ok(boost)
}

/// vCPUs for `memory_mb`: the `cpu` setting, else the least Cloud Run allows for that memory
/// (1 up to 4 GiB, 2 up to 8 GiB, 4 up to 16 GiB, else 8).
pub(crate) fn cpu_for(config: &Config, memory_mb: u32) -> String {
    if let Some(cpu) = &config.cpu {
        return cpu.clone();
    }
    match memory_mb {
        0..=4096 => "1",
        4097..=8192 => "2",
        8193..=16_384 => "4",
        _ => "8",
    }
    .to_string()
}

/// Checks what Cloud Run would reject anyway, naming the value and the range.
pub(crate) fn check_spec(name: &str, spec: &FunctionSpec) -> ProviderResult<()> {
    check_name(name)?;
    if !(128..=32_768).contains(&spec.memory_mb) {
        return Err(ProviderError::Invalid(format!(
            "memory {} MB (FunctionMemoryMB) is outside Cloud Run's range (128 to 32768 MB)",
            spec.memory_mb
        )));
    }
    if !(1..=3600).contains(&spec.timeout_s) {
        return Err(ProviderError::Invalid(format!(
            "timeout {} s is outside Cloud Run's request timeout range (1 to 3600 s)",
            spec.timeout_s
        )));
    }
    if spec.instance_concurrency > 1000 {
        return Err(ProviderError::Invalid(format!(
            "instance concurrency {} is above Cloud Run's 1000",
            spec.instance_concurrency
        )));
    }
    if spec.arch != Arch::X8664 {
        return Err(ProviderError::Invalid(
            "Cloud Run runs x86_64 (linux/amd64) images only (Stellar.Architecture)".to_string(),
        ));
    }
    cpu_boost(spec)?;
    Ok(())
}

/// A label value Cloud Run accepts: lower-case letters, digits, `_` and `-`, at most 63.
pub(crate) fn label_value(value: &str) -> String {
    value
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '_',
        })
        .take(63)
        .collect()
}

/// The image reference Cloud Run pulls: `<registry host>/<project>/<repository>/<image>@<digest>`.
pub(crate) fn image_reference(config: &Config, digest: &str) -> String {
    format!(
        "{}/{}@{digest}",
        config.registry.authority(),
        repository_path(config)
    )
}

/// The repository path inside the registry: `<project>/<repository>/<image>`.
pub(crate) fn repository_path(config: &Config) -> String {
    format!("{}/{}/{IMAGE_NAME}", config.project, config.repository)
}

/// The `Service` body of a create (and, with `name` set, of an update).
pub(crate) fn service_body(
    config: &Config,
    spec: &FunctionSpec,
    image: &str,
    full_name: Option<&str>,
) -> ProviderResult<Value> {
    let labels: Map<String, Value> = spec
        .tags
        .iter()
        .map(|(k, v)| (label_value(k), Value::from(label_value(v))))
        .collect();
    let env: Vec<Value> = spec
        .env
        .iter()
        .filter(|(k, _)| !RESERVED_ENV.contains(&k.as_str()))
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let concurrency = if spec.instance_concurrency == 0 {
        1
    } else {
        spec.instance_concurrency
    };
    let mut resources = json!({
        "limits": {
            "cpu": cpu_for(config, spec.memory_mb),
            "memory": format!("{}Mi", spec.memory_mb),
        },
    });
    if cpu_boost(spec)? {
        resources["startupCpuBoost"] = Value::Bool(true);
    }
    let mut service = json!({
        "labels": labels,
        "ingress": "INGRESS_TRAFFIC_ALL",
        "template": {
            "labels": labels,
            "scaling": {"maxInstanceCount": config.max_instances},
            "timeout": format!("{}s", spec.timeout_s),
            "maxInstanceRequestConcurrency": concurrency,
            "containers": [{
                "image": image,
                "env": env,
                "resources": resources,
                "ports": [{"containerPort": 8080}],
            }],
        },
    });
    if let Some(name) = full_name {
        service["name"] = Value::from(name);
    }
    Ok(service)
}

/// `setIamPolicy` body making a service public: `roles/run.invoker` for `allUsers`
/// (googleapis `google/iam/v1/iam_policy.proto`, `policy.proto`).
pub(crate) fn public_policy() -> Value {
    json!({"policy": {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}})
}

/// The Artifact Registry repository created when missing.
pub(crate) fn repository_body() -> Value {
    json!({
        "format": "DOCKER",
        "description": "images of stellar's measurement function",
        "labels": {"created-by": "stellar"},
    })
}

/// A Cloud Run service as the API returns it (the fields the adapter reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Service {
    pub(crate) name: String,
    pub(crate) uri: String,
    pub(crate) labels: std::collections::BTreeMap<String, String>,
    pub(crate) create_time: Option<String>,
    pub(crate) latest_ready_revision: Option<String>,
    pub(crate) template: Option<Value>,
}

impl Service {
    /// The service id (last part of `projects/P/locations/R/services/ID`).
    pub(crate) fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }

    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// `GET .../services` (ListServices).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ListServices {
    pub(crate) services: Vec<Service>,
    pub(crate) next_page_token: Option<String>,
}

/// Milliseconds since the Unix epoch of an RFC 3339 UTC timestamp
/// (`2024-05-01T12:34:56.123456Z`, the proto3 JSON form of `google.protobuf.Timestamp`).
pub(crate) fn unix_ms(timestamp: &str) -> Option<u64> {
    let t = timestamp.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut h = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let millis = format!("{frac:0<3}").get(..3)?.parse::<i64>().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 24 + hh) * 60 + mm) * 60 + ss)
        .ok()
        .map(|s| s * 1000 + u64::try_from(millis).unwrap_or(0))
}

/// The endpoint handed to the host.
pub(crate) fn endpoint(config: &Config, service: &Service) -> Endpoint {
    let mut meta = vec![
        ("project".to_string(), config.project.clone()),
        ("region".to_string(), config.region.clone()),
        ("service".to_string(), service.name.clone()),
    ];
    if let Some(revision) = &service.latest_ready_revision {
        meta.push(("revision".to_string(), revision.clone()));
    }
    if let Some(run) = service.label(RUN_LABEL) {
        meta.push((RUN_LABEL.to_string(), run.to_string()));
    }
    if let Some(ms) = service.create_time.as_deref().and_then(unix_ms) {
        meta.push(("created-unix-ms".to_string(), ms.to_string()));
    }
    let image = service
        .template
        .as_ref()
        .and_then(|t| t.pointer("/containers/0/image"))
        .and_then(Value::as_str);
    if let Some(image) = image {
        meta.push(("image".to_string(), image.to_string()));
    }
    Endpoint {
        id: service.id().to_string(),
        url: service.uri.clone(),
        protocol: Protocol::Http,
        meta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{config, pairs};

    fn spec(memory_mb: u32, options: &[(&str, &str)]) -> FunctionSpec {
        FunctionSpec {
            name: "st-0a1b2c-00-00".into(),
            memory_mb,
            timeout_s: 30,
            arch: Arch::X8664,
            env: pairs(&[("STELLAR_PROVIDER", "gcr"), ("PORT", "1")]),
            tags: pairs(&[
                ("stellar-run", "0a1b2c"),
                ("stellar-sub-experiment", "Cold Start"),
            ]),
            instance_concurrency: 0,
            options: pairs(options),
            artifact: None,
        }
    }

    #[test]
    fn the_service_body_follows_the_v2_proto() {
        let c = config(&[]);
        let body = service_body(
            &c,
            &spec(512, &[("cpu-boost", "true")]),
            "img@sha256:1",
            None,
        )
        .unwrap();
        assert_eq!(
            body,
            json!({
                "labels": {"stellar-run": "0a1b2c", "stellar-sub-experiment": "cold_start"},
                "ingress": "INGRESS_TRAFFIC_ALL",
                "template": {
                    "labels": {"stellar-run": "0a1b2c", "stellar-sub-experiment": "cold_start"},
                    "scaling": {"maxInstanceCount": 100},
                    "timeout": "30s",
                    "maxInstanceRequestConcurrency": 1,
                    "containers": [{
                        "image": "img@sha256:1",
                        "env": [{"name": "STELLAR_PROVIDER", "value": "gcr"}],
                        "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "startupCpuBoost": true},
                        "ports": [{"containerPort": 8080}],
                    }],
                },
            })
        );
        let big = service_body(
            &c,
            &spec(10_240, &[]),
            "i",
            Some("projects/p/locations/r/services/s"),
        )
        .unwrap();
        assert_eq!(
            big["template"]["containers"][0]["resources"]["limits"]["cpu"],
            "4"
        );
        assert!(
            big["template"]["containers"][0]["resources"]
                .get("startupCpuBoost")
                .is_none()
        );
        assert_eq!(big["name"], "projects/p/locations/r/services/s");
    }

    #[test]
    fn specs_cloud_run_would_refuse_are_named() {
        assert!(check_spec("st-0a1b2c-00-00", &spec(512, &[])).is_ok());
        assert!(check_spec("St_bad", &spec(512, &[])).is_err());
        assert!(check_spec("st-x", &spec(64, &[])).is_err());
        let err = check_spec("st-x", &spec(512, &[("keep-alive-ms", "1")])).unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.contains("keep-alive-ms")),
            "{err:?}"
        );
        let mut arm = spec(512, &[]);
        arm.arch = Arch::Arm64;
        assert!(check_spec("st-x", &arm).is_err());
    }

    #[test]
    fn timestamps_and_endpoints() {
        assert_eq!(unix_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_ms("2024-02-29T12:00:01.5Z"), Some(1_709_208_001_500));
        assert_eq!(
            unix_ms("2024-02-29T12:00:01.123456789Z"),
            Some(1_709_208_001_123)
        );
        assert_eq!(unix_ms("yesterday"), None);
        let service: Service = serde_json::from_value(json!({
            "name": "projects/p/locations/us-central1/services/st-0a1b2c-00-00",
            "uri": "https://st-0a1b2c-00-00-abc-uc.a.run.app",
            "labels": {"stellar-run": "0a1b2c"},
            "createTime": "1970-01-01T00:00:01Z",
            "latestReadyRevision": "projects/p/locations/us-central1/services/st-0a1b2c-00-00/revisions/st-0a1b2c-00-00-00001-abc",
        }))
        .unwrap();
        let e = endpoint(&config(&[]), &service);
        assert_eq!(e.id, "st-0a1b2c-00-00");
        assert_eq!(e.url, "https://st-0a1b2c-00-00-abc-uc.a.run.app");
        let meta = |k: &str| e.meta.iter().find(|(m, _)| m == k).map(|(_, v)| v.as_str());
        assert_eq!(meta("stellar-run"), Some("0a1b2c"));
        assert_eq!(meta("created-unix-ms"), Some("1000"));
    }
}
