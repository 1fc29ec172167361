//! The adapter's settings and credentials: parsed and checked once in `configure`, so a typo or
//! an unknown region fails before anything is deployed.
//!
//! The options are declared here ([`options`]) and the settings are checked against the same
//! list, so `stellar plugins inspect` and `configure` cannot disagree. The keys arrive apart
//! from the settings, as the `alibaba` credential (`ALIBABA_CLOUD_ACCESS_KEY_ID`,
//! `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, optional `ALIBABA_CLOUD_SECURITY_TOKEN`); the
//! [`Debug`](fmt::Debug) output redacts them and nothing logs them.

use std::fmt;
use std::time::Duration;

use stellar_guest_sdk::http::BaseUrl;
use stellar_guest_sdk::{
    CredentialKind, Credentials, OptionDecl, OptionType, ProviderError, ProviderResult, Settings,
    nonempty, option,
};

/// Default bound on waiting for a function to become Active / finish an update.
const DEFAULT_WAIT_TIMEOUT_S: u64 = 300;
/// Default first delay between two GetFunction polls.
const DEFAULT_POLL_INTERVAL_MS: u64 = 1000;
/// Default runtime: the newest custom runtime (Debian 12, glibc 2.36).
const DEFAULT_RUNTIME: &str = "custom.debian12";
/// Default disk size (MB); FC offers 512 or 10240.
const DEFAULT_DISK_MB: u64 = 512;
/// Default bound on the zip sent inline (base64) in CreateFunction / UpdateFunction, in MiB of
/// zip. Larger packages need an OSS upload, which this adapter does not do yet.
const DEFAULT_MAX_INLINE_ZIP_MB: u64 = 100;
/// The placeholder of `function-url-override` replaced by the function name.
pub(crate) const NAME_PLACEHOLDER: &str = "{name}";
/// The custom runtimes a zip can run on (the `runtime` docstring of `CreateFunctionInput` in
/// PyPI `alibabacloud_fc20230330` 4.8.3, `models/_create_function_input.py`).
const RUNTIMES: [&str; 4] = [
    "custom.debian12",
    "custom.debian11",
    "custom.debian10",
    "custom",
];

/// FC 3.0 regions and their API hosts: the `_endpoint_map` of `alibabacloud_fc20230330` 4.8.3
/// `client.py` (most are `fcv3.<region>.aliyuncs.com`, a few `<region>.fc.aliyuncs.com`).
const REGIONS: [(&str, &str); 26] = [
    ("ap-northeast-1", "fcv3.ap-northeast-1.aliyuncs.com"),
    ("ap-northeast-2", "fcv3.ap-northeast-2.aliyuncs.com"),
    ("ap-south-1", "fcv3.ap-south-1.aliyuncs.com"),
    ("ap-southeast-1", "fcv3.ap-southeast-1.aliyuncs.com"),
    ("ap-southeast-2", "fcv3.ap-southeast-2.aliyuncs.com"),
    ("ap-southeast-3", "fcv3.ap-southeast-3.aliyuncs.com"),
    ("ap-southeast-5", "fcv3.ap-southeast-5.aliyuncs.com"),
    ("ap-southeast-7", "fcv3.ap-southeast-7.aliyuncs.com"),
    ("cn-beijing", "fcv3.cn-beijing.aliyuncs.com"),
    ("cn-chengdu", "fcv3.cn-chengdu.aliyuncs.com"),
    ("cn-hangzhou", "fcv3.cn-hangzhou.aliyuncs.com"),
    ("cn-hangzhou-finance", "cn-hangzhou-finance.fc.aliyuncs.com"),
    ("cn-heyuan-acdr-1", "cn-heyuan-acdr-1.fc.aliyuncs.com"),
    ("cn-hongkong", "fcv3.cn-hongkong.aliyuncs.com"),
    ("cn-huhehaote", "fcv3.cn-huhehaote.aliyuncs.com"),
    ("cn-qingdao", "fcv3.cn-qingdao.aliyuncs.com"),
    ("cn-shanghai", "fcv3.cn-shanghai.aliyuncs.com"),
    (
        "cn-shanghai-finance-1",
        "cn-shanghai-finance-1.fc.aliyuncs.com",
    ),
    ("cn-shenzhen", "fcv3.cn-shenzhen.aliyuncs.com"),
    ("cn-wulanchabu", "fcv3.cn-wulanchabu.aliyuncs.com"),
    ("cn-zhangjiakou", "fcv3.cn-zhangjiakou.aliyuncs.com"),
    ("eu-central-1", "fcv3.eu-central-1.aliyuncs.com"),
    ("eu-west-1", "fcv3.eu-west-1.aliyuncs.com"),
    ("me-central-1", "me-central-1.fc.aliyuncs.com"),
    ("us-east-1", "fcv3.us-east-1.aliyuncs.com"),
    ("us-west-1", "fcv3.us-west-1.aliyuncs.com"),
];

/// The options of `Stellar.ProviderSettings` the adapter understands: the only setting keys
/// `configure` accepts.
pub(crate) fn options() -> Vec<OptionDecl> {
    vec![
        option(
            "region",
            OptionType::Text,
            None,
            "Function Compute region, e.g. cn-hangzhou or ap-southeast-1",
        ),
        option(
            "endpoint",
            OptionType::ApiUrl,
            None,
            "another FC 3.0 API base URL (default https://fcv3.<region>.aliyuncs.com), e.g. a test server",
        ),
        option(
            "function-url-override",
            OptionType::EndpointUrl,
            None,
            "send the timed requests here instead of the HTTP trigger's URL; {name} = function name",
        ),
        option(
            "runtime",
            OptionType::Text,
            Some(DEFAULT_RUNTIME),
            "custom runtime: custom.debian12, custom.debian11, custom.debian10 or custom",
        ),
        option(
            "cpu",
            OptionType::Text,
            None,
            "vCPUs per instance (multiple of 0.05; default: FC's console default for the memory)",
        ),
        option(
            "disk-size-mb",
            OptionType::Integer,
            Some(&DEFAULT_DISK_MB.to_string()),
            "instance disk: 512 or 10240 MB",
        ),
        option(
            "max-inline-zip-mb",
            OptionType::Integer,
            Some(&DEFAULT_MAX_INLINE_ZIP_MB.to_string()),
            "largest code zip sent inline (base64) in the API request, in MiB",
        ),
        option(
            "wait-timeout-s",
            OptionType::Integer,
            Some(&DEFAULT_WAIT_TIMEOUT_S.to_string()),
            "seconds to wait for a function to become active or finish an update",
        ),
        option(
            "poll-interval-ms",
            OptionType::Integer,
            Some(&DEFAULT_POLL_INTERVAL_MS.to_string()),
            "first delay between two state polls while waiting (milliseconds)",
        ),
    ]
}

/// What `configure` established.
#[derive(Clone, PartialEq)]
pub(crate) struct Config {
    pub(crate) region: String,
    pub(crate) access_key_id: String,
    pub(crate) access_key_secret: String,
    pub(crate) security_token: Option<String>,
    /// The FC API base URL (the regional endpoint, or an override such as a test server's).
    pub(crate) endpoint: BaseUrl,
    /// Template for the URL handed to the host instead of the trigger's URL.
    pub(crate) url_override: Option<String>,
    pub(crate) runtime: String,
    pub(crate) cpu: Option<f64>,
    pub(crate) disk_mb: u32,
    pub(crate) max_inline_zip_bytes: u64,
    pub(crate) wait_timeout: Duration,
    pub(crate) poll_interval: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("region", &self.region)
            .field("access_key_id", &"<redacted>")
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .field("endpoint", &self.endpoint.to_string())
            .field("url_override", &self.url_override)
            .field("runtime", &self.runtime)
            .field("cpu", &self.cpu)
            .field("disk_mb", &self.disk_mb)
            .field("max_inline_zip_bytes", &self.max_inline_zip_bytes)
            .field("wait_timeout", &self.wait_timeout)
            .field("poll_interval", &self.poll_interval)
            .finish()
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
        let kind = CredentialKind::Alibaba;
        if credentials.find(&kind).is_none() {
            return Err(ProviderError::Unauthorized(
                "no `alibaba` credential was granted to this adapter (stellar reads it from \
                 ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, plus \
                 ALIBABA_CLOUD_SECURITY_TOKEN for STS credentials)"
                    .to_string(),
            ));
        }
        let region = settings.require("region")?.trim().to_string();
        let api_host = region_host(&region)?;
        let access_key_id = credentials
            .require(&kind, "access-key-id")?
            .trim()
            .to_string();
        let access_key_secret = credentials
            .require(&kind, "access-key-secret")?
            .trim()
            .to_string();
        let security_token =
            nonempty(credentials.value(&kind, "security-token")).map(str::to_string);
        let endpoint = match settings.nonempty("endpoint") {
            Some(url) => BaseUrl::parse(url)
                .map_err(|e| ProviderError::Invalid(format!("setting `endpoint`: {e}")))?,
            None => BaseUrl::parse(&format!("https://{api_host}"))?,
        };
        let url_override = settings
            .nonempty("function-url-override")
            .map(|t| check_url_template(t).map(|()| t.to_string()))
            .transpose()?;
        let runtime = settings
            .nonempty("runtime")
            .unwrap_or(DEFAULT_RUNTIME)
            .to_string();
        if !RUNTIMES.contains(&runtime.as_str()) {
            return Err(ProviderError::Invalid(format!(
                "setting `runtime` = {runtime:?} is not a custom runtime; expected one of {}",
                RUNTIMES.join(", ")
            )));
        }
        let cpu = settings.parse::<f64>("cpu")?;
        if let Some(cpu) = cpu
            && !(cpu.is_finite() && (0.05..=16.0).contains(&cpu) && is_multiple_of_005(cpu))
        {
            return Err(ProviderError::Invalid(format!(
                "setting `cpu` = {cpu} must be a multiple of 0.05 from 0.05 to 16 vCPUs"
            )));
        }
        let disk_mb = settings.bounded("disk-size-mb", DEFAULT_DISK_MB, 512, 10_240)?;
        if disk_mb != 512 && disk_mb != 10_240 {
            return Err(ProviderError::Invalid(format!(
                "setting `disk-size-mb` = {disk_mb} must be 512 or 10240"
            )));
        }
        let max_inline_zip_mb =
            settings.bounded("max-inline-zip-mb", DEFAULT_MAX_INLINE_ZIP_MB, 1, 1024)?;
        let wait_timeout_s = settings.bounded("wait-timeout-s", DEFAULT_WAIT_TIMEOUT_S, 1, 3600)?;
        let poll_interval_ms =
            settings.bounded("poll-interval-ms", DEFAULT_POLL_INTERVAL_MS, 1, 60_000)?;
        Ok(Self {
            region,
            access_key_id,
            access_key_secret,
            security_token,
            endpoint,
            url_override,
            runtime,
            cpu,
            disk_mb: u32::try_from(disk_mb).unwrap_or(512),
            max_inline_zip_bytes: max_inline_zip_mb << 20,
            wait_timeout: Duration::from_secs(wait_timeout_s),
            poll_interval: Duration::from_millis(poll_interval_ms),
        })
    }

    /// The URL the host should send timed requests to, and where it came from
    /// (`http-trigger` or `override`).
    pub(crate) fn public_url(&self, name: &str, trigger_url: &str) -> (String, &'static str) {
        match &self.url_override {
            Some(template) => (template.replace(NAME_PLACEHOLDER, name), "override"),
            None => (trigger_url.to_string(), "http-trigger"),
        }
    }
}

/// The API host of `region`, or an error naming the known regions.
fn region_host(region: &str) -> ProviderResult<&'static str> {
    REGIONS
        .iter()
        .find(|(r, _)| *r == region)
        .map(|(_, host)| *host)
        .ok_or_else(|| {
            let mut known: Vec<&str> = REGIONS.iter().map(|(r, _)| *r).collect();
            known.sort_unstable();
            ProviderError::Invalid(format!(
                "setting `region` = {region:?} is not a Function Compute 3.0 region; expected \
                 one of {}",
                known.join(", ")
            ))
        })
}

fn is_multiple_of_005(value: f64) -> bool {
    let steps = value / 0.05;
    (steps - steps.round()).abs() < 1e-6
}

/// The override must become an http(s) URL with a host once `{name}` is filled in.
fn check_url_template(template: &str) -> ProviderResult<()> {
    let sample = template.replace(NAME_PLACEHOLDER, "st-sample");
    let rest = sample
        .strip_prefix("http://")
        .or_else(|| sample.strip_prefix("https://"));
    let bad = |why: &str| {
        ProviderError::Invalid(format!(
            "setting `function-url-override` = {template:?} {why} \
             (e.g. http://127.0.0.1:9000/{NAME_PLACEHOLDER}/)"
        ))
    };
    let Some(rest) = rest else {
        return Err(bad("must start with http:// or https://"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains(['{', '}', ' ']) {
        return Err(bad("has no usable host"));
    }
    if sample.contains(['{', '}']) {
        return Err(bad("has a placeholder other than {name}"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use stellar_guest_sdk::Credential;

    pub(crate) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(crate) fn alibaba(values: &[(&str, &str)]) -> Credentials {
        Credentials::from(vec![Credential {
            kind: CredentialKind::Alibaba,
            values: pairs(values),
        }])
    }

    pub(crate) fn keys() -> Credentials {
        alibaba(&[("access-key-id", "LTAIid"), ("access-key-secret", "s3cr3t")])
    }

    fn configure(settings: &[(&str, &str)]) -> ProviderResult<Config> {
        Config::from_settings(pairs(settings), keys())
    }

    #[test]
    fn defaults_and_the_regional_endpoint() {
        let c = configure(&[("region", "cn-hangzhou")]).unwrap();
        assert_eq!(
            c.endpoint.to_string(),
            "https://fcv3.cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(c.runtime, "custom.debian12");
        assert_eq!(c.disk_mb, 512);
        assert_eq!(c.cpu, None);
        assert_eq!(c.max_inline_zip_bytes, 100 << 20);
        assert_eq!(c.wait_timeout, Duration::from_secs(300));
        assert_eq!(c.poll_interval, Duration::from_millis(1000));
        assert_eq!(c.security_token, None);
        let c = configure(&[("region", "me-central-1")]).unwrap();
        assert_eq!(
            c.endpoint.to_string(),
            "https://me-central-1.fc.aliyuncs.com"
        );
        let declared = options();
        let names: Vec<&str> = declared.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "region",
                "endpoint",
                "function-url-override",
                "runtime",
                "cpu",
                "disk-size-mb",
                "max-inline-zip-mb",
                "wait-timeout-s",
                "poll-interval-ms"
            ]
        );
    }

    #[test]
    fn unknown_regions_and_bad_values_are_named() {
        let err = configure(&[("region", "xx-nowhere-1")]).unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m)
                if m.contains("\"xx-nowhere-1\"") && m.contains("cn-hangzhou")),
            "{err:?}"
        );
        let err = configure(&[]).unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.contains("`region`")),
            "{err:?}"
        );
        for (key, value, needle) in [
            ("runtime", "python3.9", "`runtime`"),
            ("cpu", "0.33", "`cpu`"),
            ("cpu", "20", "`cpu`"),
            ("disk-size-mb", "1024", "`disk-size-mb`"),
            ("max-inline-zip-mb", "0", "`max-inline-zip-mb`"),
            (
                "function-url-override",
                "ftp://x/{name}",
                "`function-url-override`",
            ),
            (
                "function-url-override",
                "http://x/{id}",
                "`function-url-override`",
            ),
            ("endpoint", "nope", "`endpoint`"),
            ("colour", "blue", "colour"),
        ] {
            let err = configure(&[("region", "cn-hangzhou"), (key, value)]).unwrap_err();
            assert!(
                matches!(&err, ProviderError::Invalid(m) if m.contains(needle)),
                "{key}={value}: {err:?}"
            );
        }
        let c = configure(&[("region", "cn-hangzhou"), ("cpu", "0.35")]).unwrap();
        assert_eq!(c.cpu, Some(0.35));
    }

    #[test]
    fn credentials_are_required_and_never_shown() {
        let err =
            Config::from_settings(pairs(&[("region", "cn-hangzhou")]), Credentials::default())
                .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Unauthorized(m) if m.contains("ALIBABA_CLOUD_ACCESS_KEY_ID")),
            "{err:?}"
        );
        let err = Config::from_settings(
            pairs(&[("region", "cn-hangzhou")]),
            alibaba(&[("access-key-id", "LTAIid")]),
        )
        .unwrap_err();
        assert!(matches!(&err, ProviderError::Unauthorized(m) if m.contains("access-key-secret")));
        let c = Config::from_settings(
            pairs(&[("region", "cn-hangzhou")]),
            alibaba(&[
                ("access-key-id", "STS.id"),
                ("access-key-secret", "s3cr3t"),
                ("security-token", "t0k3n"),
            ]),
        )
        .unwrap();
        assert_eq!(c.security_token.as_deref(), Some("t0k3n"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("t0k3n") && !shown.contains("STS.id"));
    }

    #[test]
    fn override_urls_name_the_function() {
        let c = configure(&[
            ("region", "cn-hangzhou"),
            ("function-url-override", "http://127.0.0.1:9000/{name}/"),
        ])
        .unwrap();
        assert_eq!(
            c.public_url("st-f", "https://x.fcapp.run"),
            ("http://127.0.0.1:9000/st-f/".to_string(), "override")
        );
        let c = configure(&[("region", "cn-hangzhou")]).unwrap();
        assert_eq!(
            c.public_url("st-f", "https://x.fcapp.run"),
            ("https://x.fcapp.run".to_string(), "http-trigger")
        );
    }
}
