//! The adapter's settings: parsed and checked once in `configure`, so every later call can
//! trust them and a typo fails before anything is deployed.
//!
//! Credentials live only here; the [`Debug`] output redacts them, and nothing logs them.

use std::fmt;
use std::time::Duration;

use stellar_guest_sdk::http::BaseUrl;
use stellar_guest_sdk::{ProviderError, ProviderResult, Settings};

/// Setting keys `configure` understands.
pub(crate) const SETTINGS: [&str; 9] = [
    "region",
    "role-arn",
    "access-key-id",
    "secret-access-key",
    "session-token",
    "endpoint",
    "function-url-override",
    "wait-timeout-s",
    "poll-interval-ms",
];

/// Default bound on waiting for a function to become Active / finish an update.
const DEFAULT_WAIT_TIMEOUT_S: u64 = 300;
/// Default first delay between two GetFunction polls.
const DEFAULT_POLL_INTERVAL_MS: u64 = 1000;
/// The placeholder of `function-url-override` replaced by the function name.
pub(crate) const NAME_PLACEHOLDER: &str = "{name}";

/// What `configure` established.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) region: String,
    pub(crate) role_arn: String,
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) session_token: Option<String>,
    /// The Lambda API base URL (the regional endpoint, or an override such as moto's).
    pub(crate) endpoint: BaseUrl,
    /// Template for the URL handed to the host instead of the real function URL.
    pub(crate) url_override: Option<String>,
    pub(crate) wait_timeout: Duration,
    pub(crate) poll_interval: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("region", &self.region)
            .field("role_arn", &self.role_arn)
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("endpoint", &self.endpoint.to_string())
            .field("url_override", &self.url_override)
            .field("wait_timeout", &self.wait_timeout)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

impl Config {
    pub(crate) fn from_settings(settings: Vec<(String, String)>) -> ProviderResult<Self> {
        let settings = Settings::from(settings);
        settings.deny_unknown(&SETTINGS)?;
        let region = settings.require("region")?.trim().to_string();
        check_region(&region)?;
        let role_arn = settings.require("role-arn")?.trim().to_string();
        check_role_arn(&role_arn)?;
        let access_key_id = settings.require("access-key-id")?.trim().to_string();
        let secret_access_key = settings.require("secret-access-key")?.trim().to_string();
        let session_token = settings
            .get("session-token")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        let endpoint = match settings.get("endpoint").map(str::trim) {
            Some(url) if !url.is_empty() => BaseUrl::parse(url)
                .map_err(|e| ProviderError::Invalid(format!("setting `endpoint`: {e}")))?,
            _ => BaseUrl::parse(&format!("https://lambda.{region}.amazonaws.com"))?,
        };
        let url_override = settings
            .get("function-url-override")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| check_url_template(t).map(|()| t.to_string()))
            .transpose()?;
        let wait_timeout_s = bounded(&settings, "wait-timeout-s", DEFAULT_WAIT_TIMEOUT_S, 1, 3600)?;
        let poll_interval_ms = bounded(
            &settings,
            "poll-interval-ms",
            DEFAULT_POLL_INTERVAL_MS,
            1,
            60_000,
        )?;
        Ok(Self {
            region,
            role_arn,
            access_key_id,
            secret_access_key,
            session_token,
            endpoint,
            url_override,
            wait_timeout: Duration::from_secs(wait_timeout_s),
            poll_interval: Duration::from_millis(poll_interval_ms),
        })
    }

    /// The URL the host should send timed requests to, and where it came from
    /// (`function-url` or `override`).
    pub(crate) fn public_url(&self, name: &str, function_url: &str) -> (String, &'static str) {
        match &self.url_override {
            Some(template) => (template.replace(NAME_PLACEHOLDER, name), "override"),
            None => (function_url.to_string(), "function-url"),
        }
    }
}

/// An optional integer setting within `min..=max`.
fn bounded(
    settings: &Settings,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> ProviderResult<u64> {
    let value = settings.parse::<u64>(key)?.unwrap_or(default);
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ProviderError::Invalid(format!(
            "setting `{key}` = {value} is out of range ({min} to {max})"
        )))
    }
}

/// Regions look like `us-east-1`: lower-case letters, digits and `-`.
fn check_region(region: &str) -> ProviderResult<()> {
    let ok = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "setting `region` = {region:?} is not an AWS region name (like us-east-1)"
        )))
    }
}

/// `arn:aws[-partition]:iam::<12 digits>:role/<path/name>`.
pub(crate) fn check_role_arn(arn: &str) -> ProviderResult<()> {
    let invalid = || {
        ProviderError::Invalid(format!(
            "setting `role-arn` = {arn:?} is not an IAM role ARN \
             (arn:aws:iam::<12-digit account>:role/<name>)"
        ))
    };
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid());
    };
    let partition_ok = partition
        .strip_prefix("aws")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        && partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-');
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let name_ok = resource.strip_prefix("role/").is_some_and(|name| {
        !name.is_empty()
            && !name.ends_with('/')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
    });
    if partition_ok && account_ok && name_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// The override must become an http(s) URL once `{name}` is filled in.
fn check_url_template(template: &str) -> ProviderResult<()> {
    let sample = template.replace(NAME_PLACEHOLDER, "st-sample");
    let url_part = sample.split(['?', '#']).next().unwrap_or_default();
    let authority_and_path = url_part
        .strip_prefix("http://")
        .or_else(|| url_part.strip_prefix("https://"));
    let bad = |why: &str| {
        ProviderError::Invalid(format!(
            "setting `function-url-override` = {template:?} {why} \
             (e.g. http://127.0.0.1:9000/lambda-url/{NAME_PLACEHOLDER}/)"
        ))
    };
    let Some(rest) = authority_and_path else {
        return Err(bad("must start with http:// or https://"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains(['{', '}', ' ']) {
        return Err(bad("has no usable host"));
    }
    if sample.contains(['{', '}']) {
        return Err(bad("has a placeholder other than {name}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/stellar-lambda";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("region", "us-east-1"),
            ("role-arn", ROLE),
            ("access-key-id", "AKIDEXAMPLE"),
            ("secret-access-key", "s3cr3t-value"),
        ]
    }

    fn invalid(items: &[(&str, &str)]) -> String {
        match Config::from_settings(pairs(items)) {
            Err(ProviderError::Invalid(m)) => m,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_settings(pairs(&base())).unwrap();
        assert_eq!(
            c.endpoint.to_string(),
            "https://lambda.us-east-1.amazonaws.com"
        );
        assert_eq!(c.wait_timeout, Duration::from_secs(300));
        assert_eq!(c.poll_interval, Duration::from_millis(1000));
        assert_eq!(c.session_token, None);
        assert_eq!(
            c.public_url("st-f", "https://abc.lambda-url.us-east-1.on.aws/"),
            (
                "https://abc.lambda-url.us-east-1.on.aws/".to_string(),
                "function-url"
            )
        );

        let mut items = base();
        items.extend([
            ("endpoint", "http://127.0.0.1:5000"),
            ("session-token", "tok"),
            (
                "function-url-override",
                "http://127.0.0.1:9000/lambda-url/{name}/",
            ),
            ("wait-timeout-s", "20"),
            ("poll-interval-ms", "50"),
        ]);
        let c = Config::from_settings(pairs(&items)).unwrap();
        assert_eq!(c.endpoint.authority(), "127.0.0.1:5000");
        assert_eq!(c.session_token.as_deref(), Some("tok"));
        assert_eq!(c.wait_timeout, Duration::from_secs(20));
        assert_eq!(c.poll_interval, Duration::from_millis(50));
        assert_eq!(
            c.public_url("st-f", "https://x.on.aws/"),
            (
                "http://127.0.0.1:9000/lambda-url/st-f/".to_string(),
                "override"
            )
        );
    }

    #[test]
    fn missing_and_unknown_keys_are_named() {
        for key in ["region", "role-arn", "access-key-id", "secret-access-key"] {
            let items: Vec<_> = base().into_iter().filter(|(k, _)| *k != key).collect();
            assert_eq!(invalid(&items), format!("missing setting `{key}`"));
        }
        let mut items = base();
        items.push(("regoin", "x"));
        assert!(invalid(&items).starts_with("unknown setting `regoin`"));
    }

    #[test]
    fn values_are_checked() {
        let with = |key: &'static str, value: &'static str| {
            let mut items = base();
            items.retain(|(k, _)| *k != key);
            items.push((key, value));
            invalid(&items)
        };
        assert!(with("region", "US East").contains("not an AWS region"));
        assert!(with("endpoint", "127.0.0.1:5000").contains("setting `endpoint`"));
        assert!(with("wait-timeout-s", "0").contains("out of range"));
        assert!(with("wait-timeout-s", "x").starts_with("setting `wait-timeout-s`"));
        assert!(with("poll-interval-ms", "600000").contains("out of range"));
        for template in [
            "127.0.0.1:9000/{name}",
            "http:///x",
            "http://127.0.0.1:9000/{fn}/",
        ] {
            assert!(
                with("function-url-override", template).contains("function-url-override"),
                "{template}"
            );
        }
    }

    #[test]
    fn role_arns() {
        for ok in [
            ROLE,
            "arn:aws-cn:iam::123456789012:role/a",
            "arn:aws-us-gov:iam::123456789012:role/service-role/x_y+z=,.@-",
        ] {
            assert_eq!(check_role_arn(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "stellar-lambda",
            "arn:aws:iam::12345678901:role/a",
            "arn:aws:iam::1234567890123:role/a",
            "arn:aws:iam::123456789012:user/a",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam:us-east-1:123456789012:role/a",
            "arn:gcp:iam::123456789012:role/a",
            "arn:awsx:iam::123456789012:role/a",
            "arn:aws:lambda::123456789012:role/a",
            "arn:aws:iam::123456789012:role/a b",
        ] {
            let err = check_role_arn(bad).unwrap_err();
            assert!(
                matches!(&err, ProviderError::Invalid(m) if m.contains("role-arn")),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut items = base();
        items.push(("session-token", "very-secret-token"));
        let c = Config::from_settings(pairs(&items)).unwrap();
        let shown = format!("{c:?}");
        for secret in ["AKIDEXAMPLE", "s3cr3t-value", "very-secret-token"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("us-east-1"), "{shown}");
    }
}
