//! The adapter's settings and credentials, parsed and checked once in `configure`, so a typo,
//! a bad key file or a missing project fails before anything is created.
//!
//! The credential is the `gcp` kind: the service-account key file `GOOGLE_APPLICATION_CREDENTIALS`
//! names, read by the host and handed over as `service-account-json` (never a setting, never
//! logged; [`Debug`](fmt::Debug) redacts it). The project comes from the `project` setting, else
//! the key's `project_id`.

use std::fmt;
use std::time::Duration;

use stellar_gcp_auth::ServiceAccountKey;
use stellar_guest_sdk::http::BaseUrl;
use stellar_guest_sdk::{
    CredentialKind, Credentials, OptionDecl, OptionType, ProviderError, ProviderResult, Settings,
    option,
};

/// The Cloud Run Admin API.
pub(crate) const DEFAULT_RUN_API: &str = "https://run.googleapis.com";
/// The Artifact Registry API.
pub(crate) const DEFAULT_ARTIFACT_API: &str = "https://artifactregistry.googleapis.com";
/// The Artifact Registry repository images are pushed to when no `repository` is set.
const DEFAULT_REPOSITORY: &str = "stellar";
/// Cloud Run's default instance cap for a new service.
const DEFAULT_MAX_INSTANCES: u64 = 100;
const DEFAULT_WAIT_TIMEOUT_S: u64 = 600;
const DEFAULT_POLL_INTERVAL_MS: u64 = 1000;

/// The options of `Stellar.ProviderSettings` the adapter understands.
pub(crate) fn options() -> Vec<OptionDecl> {
    vec![
        option(
            "project",
            OptionType::Text,
            None,
            "Google Cloud project id (default: the service-account key's project_id)",
        ),
        option(
            "region",
            OptionType::Text,
            None,
            "Cloud Run region, e.g. us-central1 or europe-west1",
        ),
        option(
            "repository",
            OptionType::Text,
            Some(DEFAULT_REPOSITORY),
            "Artifact Registry docker repository for the image (created if missing)",
        ),
        option(
            "cpu",
            OptionType::Text,
            None,
            "vCPUs per instance, e.g. 1 or 2 (default: the least Cloud Run allows for the memory)",
        ),
        option(
            "max-instances",
            OptionType::Integer,
            Some(&DEFAULT_MAX_INSTANCES.to_string()),
            "maximum instances per service (template.scaling.maxInstanceCount)",
        ),
        option(
            "api-endpoint",
            OptionType::ApiUrl,
            Some(DEFAULT_RUN_API),
            "another Cloud Run Admin API base URL, e.g. a test server",
        ),
        option(
            "artifact-registry-endpoint",
            OptionType::ApiUrl,
            Some(DEFAULT_ARTIFACT_API),
            "another Artifact Registry API base URL, e.g. a test server",
        ),
        option(
            "registry-endpoint",
            OptionType::ApiUrl,
            None,
            "another container registry base URL (default https://<region>-docker.pkg.dev)",
        ),
        option(
            "oauth-endpoint",
            OptionType::ApiUrl,
            None,
            "another OAuth token endpoint (default: the key's token_uri)",
        ),
        option(
            "service-url-host",
            OptionType::EndpointUrl,
            None,
            "a URL whose host service URIs may also be on (a test server); Cloud Run's are *.run.app",
        ),
        option(
            "wait-timeout-s",
            OptionType::Integer,
            Some(&DEFAULT_WAIT_TIMEOUT_S.to_string()),
            "seconds to wait for a long-running operation (deploy, update, delete)",
        ),
        option(
            "poll-interval-ms",
            OptionType::Integer,
            Some(&DEFAULT_POLL_INTERVAL_MS.to_string()),
            "first delay between two operation polls (milliseconds)",
        ),
    ]
}

/// What `configure` established.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) project: String,
    pub(crate) region: String,
    pub(crate) repository: String,
    pub(crate) key: ServiceAccountKey,
    pub(crate) run_api: BaseUrl,
    pub(crate) artifact_api: BaseUrl,
    pub(crate) registry: BaseUrl,
    pub(crate) token_endpoint: String,
    pub(crate) cpu: Option<String>,
    pub(crate) max_instances: u32,
    pub(crate) wait_timeout: Duration,
    pub(crate) poll_interval: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("project", &self.project)
            .field("region", &self.region)
            .field("repository", &self.repository)
            .field("service_account", &self.key.client_email)
            .field("run_api", &self.run_api.to_string())
            .field("artifact_api", &self.artifact_api.to_string())
            .field("registry", &self.registry.to_string())
            .field("token_endpoint", &self.token_endpoint)
            .field("cpu", &self.cpu)
            .field("max_instances", &self.max_instances)
            .field("wait_timeout", &self.wait_timeout)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

fn url_setting(settings: &Settings, key: &str, default: &str) -> ProviderResult<BaseUrl> {
    BaseUrl::parse(settings.nonempty(key).unwrap_or(default))
        .map_err(|e| ProviderError::Invalid(format!("setting `{key}`: {e}")))
}

/// Project ids: 6 to 30 lower-case letters, digits and `-`, starting with a letter, not ending
/// with `-` (legacy domain-scoped ids `example.com:proj` are allowed too).
fn check_project(project: &str, source: &str) -> ProviderResult<()> {
    let id = project.rsplit(':').next().unwrap_or(project);
    let ok = (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "{source} = {project:?} is not a Google Cloud project id (6 to 30 lower-case \
             letters, digits and `-`, starting with a letter)"
        )))
    }
}

/// Regions look like `us-central1`: lower-case letters and digits in `-`-separated parts.
fn check_region(region: &str) -> ProviderResult<()> {
    let ok = (3..=40).contains(&region.len())
        && region.split('-').count() >= 2
        && region.split('-').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "setting `region` = {region:?} is not a Google Cloud region name (like us-central1)"
        )))
    }
}

/// Artifact Registry repository ids: lower-case letters, digits and `-`, starting with a
/// letter, at most 63 characters.
fn check_repository(repository: &str) -> ProviderResult<()> {
    let ok = (1..=63).contains(&repository.len())
        && repository.starts_with(|c: char| c.is_ascii_lowercase())
        && !repository.ends_with('-')
        && repository
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "setting `repository` = {repository:?} is not an Artifact Registry repository id \
             (lower-case letters, digits and `-`, starting with a letter, at most 63)"
        )))
    }
}

/// vCPUs: a number from 0.08 to 8 (Cloud Run's range), or millicores like `1000m`.
fn check_cpu(cpu: &str) -> ProviderResult<()> {
    let value = match cpu.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().map(|m| m / 1000.0),
        None => cpu.parse::<f64>(),
    };
    match value {
        Ok(v) if v.is_finite() && (0.08..=8.0).contains(&v) => Ok(()),
        _ => Err(ProviderError::Invalid(format!(
            "setting `cpu` = {cpu:?} must be a number of vCPUs from 0.08 to 8 (or millicores \
             like 1000m)"
        ))),
    }
}

impl Config {
    pub(crate) fn from_settings(
        settings: Vec<(String, String)>,
        credentials: Credentials,
    ) -> ProviderResult<Self> {
        let settings = Settings::from(settings);
        let declared = options();
        let known: Vec<&str> = declared.iter().map(|o| o.name.as_str()).collect();
        settings.deny_unknown(&known)?;
        if credentials.find(&CredentialKind::Gcp).is_none() {
            return Err(ProviderError::Unauthorized(
                "no `gcp` credential was granted to this adapter (stellar reads the \
                 service-account key file GOOGLE_APPLICATION_CREDENTIALS names)"
                    .to_string(),
            ));
        }
        let json = credentials.require(&CredentialKind::Gcp, "service-account-json")?;
        let key = ServiceAccountKey::parse(json).map_err(|e| {
            ProviderError::Unauthorized(format!(
                "the service-account key file (GOOGLE_APPLICATION_CREDENTIALS): {e}"
            ))
        })?;
        let project = match settings.nonempty("project") {
            Some(p) => {
                check_project(p, "setting `project`")?;
                p.to_string()
            }
            None => {
                let p = key.project_id.clone().ok_or_else(|| {
                    ProviderError::Invalid(
                        "no Google Cloud project: set `project` in Stellar.ProviderSettings \
                         (the service-account key file has no `project_id` either)"
                            .to_string(),
                    )
                })?;
                check_project(&p, "the key file's `project_id`")?;
                p
            }
        };
        let region = settings.require("region")?.trim().to_string();
        check_region(&region)?;
        let repository = settings
            .nonempty("repository")
            .unwrap_or(DEFAULT_REPOSITORY)
            .to_string();
        check_repository(&repository)?;
        let cpu = settings.nonempty("cpu").map(str::to_string);
        if let Some(cpu) = &cpu {
            check_cpu(cpu)?;
        }
        let registry_default = format!("https://{region}-docker.pkg.dev");
        let token_endpoint = settings
            .nonempty("oauth-endpoint")
            .unwrap_or(&key.token_uri)
            .to_string();
        BaseUrl::parse(
            token_endpoint
                .split('/')
                .take(3)
                .collect::<Vec<_>>()
                .join("/")
                .as_str(),
        )
        .map_err(|e| ProviderError::Invalid(format!("token endpoint: {e}")))?;
        let max_instances = settings.bounded("max-instances", DEFAULT_MAX_INSTANCES, 1, 1000)?;
        let wait_timeout_s = settings.bounded("wait-timeout-s", DEFAULT_WAIT_TIMEOUT_S, 1, 3600)?;
        let poll_interval_ms =
            settings.bounded("poll-interval-ms", DEFAULT_POLL_INTERVAL_MS, 1, 60_000)?;
        Ok(Self {
            project,
            run_api: url_setting(&settings, "api-endpoint", DEFAULT_RUN_API)?,
            artifact_api: url_setting(
                &settings,
                "artifact-registry-endpoint",
                DEFAULT_ARTIFACT_API,
            )?,
            registry: url_setting(&settings, "registry-endpoint", &registry_default)?,
            region,
            repository,
            key,
            token_endpoint,
            cpu,
            max_instances: u32::try_from(max_instances).unwrap_or(1000),
            wait_timeout: Duration::from_secs(wait_timeout_s),
            poll_interval: Duration::from_millis(poll_interval_ms),
        })
    }

    /// `projects/<project>/locations/<region>`.
    pub(crate) fn parent(&self) -> String {
        format!("projects/{}/locations/{}", self.project, self.region)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use stellar_guest_sdk::Credential;

    /// A throwaway RSA key generated once per test run (nothing secret is committed).
    pub(crate) fn test_pem() -> &'static str {
        use rsa::pkcs8::EncodePrivateKey;
        static PEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        PEM.get_or_init(|| {
            let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
            key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .unwrap()
                .to_string()
        })
    }

    pub(crate) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(crate) fn key_json(project: Option<&str>) -> String {
        let mut key = serde_json::json!({
            "type": "service_account",
            "client_email": "sa@proj-123456.iam.gserviceaccount.com",
            "private_key_id": "k1",
            "private_key": test_pem(),
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        if let Some(p) = project {
            key["project_id"] = serde_json::Value::from(p);
        }
        key.to_string()
    }

    pub(crate) fn gcp(json: &str) -> Credentials {
        Credentials::from(vec![Credential {
            kind: CredentialKind::Gcp,
            values: pairs(&[("service-account-json", json)]),
        }])
    }

    pub(crate) fn config(extra: &[(&str, &str)]) -> Config {
        let mut settings = vec![("region", "us-central1")];
        settings.extend_from_slice(extra);
        Config::from_settings(pairs(&settings), gcp(&key_json(Some("proj-123456")))).unwrap()
    }

    fn invalid(settings: &[(&str, &str)], key: &str) -> String {
        match Config::from_settings(pairs(settings), gcp(key)) {
            Err(ProviderError::Invalid(m) | ProviderError::Unauthorized(m)) => m,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_the_project_from_the_key() {
        let c = config(&[]);
        assert_eq!(c.project, "proj-123456");
        assert_eq!(c.parent(), "projects/proj-123456/locations/us-central1");
        assert_eq!(c.repository, "stellar");
        assert_eq!(c.registry.to_string(), "https://us-central1-docker.pkg.dev");
        assert_eq!(c.run_api.to_string(), DEFAULT_RUN_API);
        assert_eq!(c.token_endpoint, "https://oauth2.googleapis.com/token");
        assert_eq!(c.max_instances, 100);
        let shown = format!("{c:?}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
        let c = config(&[("project", "other-proj"), ("cpu", "2")]);
        assert_eq!(
            (c.project.as_str(), c.cpu.as_deref()),
            ("other-proj", Some("2"))
        );
    }

    #[test]
    fn bad_settings_and_keys_are_named() {
        let key = key_json(Some("proj-123456"));
        let no_project = key_json(None);
        assert!(
            invalid(&[("region", "us-central1")], &no_project).contains("no Google Cloud project")
        );
        assert!(invalid(&[], &key).contains("missing setting `region`"));
        assert!(invalid(&[("region", "US Central")], &key).contains("not a Google Cloud region"));
        assert!(
            invalid(&[("region", "us-central1"), ("project", "X")], &key)
                .contains("setting `project`")
        );
        assert!(
            invalid(&[("region", "us-central1"), ("cpu", "99")], &key).contains("setting `cpu`")
        );
        assert!(
            invalid(
                &[("region", "us-central1"), ("repository", "Bad_Repo")],
                &key
            )
            .contains("repository")
        );
        assert!(
            invalid(&[("region", "us-central1"), ("regoin", "x")], &key)
                .contains("unknown setting `regoin`")
        );
        let bad_key = invalid(
            &[("region", "us-central1")],
            "{\"type\":\"service_account\"}",
        );
        assert!(
            bad_key.contains("GOOGLE_APPLICATION_CREDENTIALS") && bad_key.contains("client_email"),
            "{bad_key}"
        );
        assert!(matches!(
            Config::from_settings(pairs(&[("region", "us-central1")]), Credentials::default()),
            Err(ProviderError::Unauthorized(_))
        ));
    }
}
