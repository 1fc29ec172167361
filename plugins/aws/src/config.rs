//! The adapter's settings and credentials: parsed and checked once in `configure`, so every
//! later call can trust them and a typo fails before anything is deployed.
//!
//! The options are declared here ([`options`]) and the settings are checked against the same
//! list, so `stellar plugins inspect` and `configure` cannot disagree. The keys arrive apart
//! from the settings, as the `aws` credential; they live only here, the [`Debug`] output
//! redacts them, and nothing logs them.

use std::fmt;
use std::time::Duration;

use stellar_guest_sdk::http::BaseUrl;
use stellar_guest_sdk::{
    Credential, CredentialKind, Credentials, OptionDecl, OptionType, ProviderError, ProviderResult,
    Settings, nonempty, option,
};

/// Default bound on waiting for a function to become Active / finish an update.
const DEFAULT_WAIT_TIMEOUT_S: u64 = 300;
/// Default first delay between two GetFunction polls.
const DEFAULT_POLL_INTERVAL_MS: u64 = 1000;
/// The placeholder of `function-url-override` replaced by the function name.
pub(crate) const NAME_PLACEHOLDER: &str = "{name}";

/// The options of `Stellar.ProviderSettings` the adapter understands: the only setting keys
/// `configure` accepts.
pub(crate) fn options() -> Vec<OptionDecl> {
    vec![
        option(
            "region",
            OptionType::Text,
            None,
            "AWS region; else the credential's region (AWS_REGION, AWS_DEFAULT_REGION, profile)",
        ),
        option(
            "role-arn",
            OptionType::Text,
            None,
            "IAM role the functions run as (arn:aws:iam::<account>:role/<name>)",
        ),
        option(
            "endpoint",
            OptionType::ApiUrl,
            None,
            "another Lambda API base URL, e.g. a local emulator",
        ),
        option(
            "function-url-override",
            OptionType::EndpointUrl,
            None,
            "send the timed requests here instead of the function URL; {name} = function name",
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
    pub(crate) fn from_settings(
        settings: Vec<(String, String)>,
        credentials: Vec<Credential>,
    ) -> ProviderResult<Self> {
        let settings = Settings::from(settings);
        let declared = options();
        let known: Vec<&str> = declared.iter().map(|o| o.name.as_str()).collect();
        settings.deny_unknown(&known)?;
        let credentials = Credentials::from(credentials);
        let aws = CredentialKind::Aws;
        if credentials.find(&aws).is_none() {
            return Err(ProviderError::Unauthorized(
                "no `aws` credential was granted to this adapter (stellar reads it from \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or from the AWS_PROFILE profile \
                 in ~/.aws/credentials)"
                    .to_string(),
            ));
        }
        let region = match settings.nonempty("region") {
            Some(region) => {
                check_region(region, "setting `region`")?;
                region
            }
            None => match nonempty(credentials.value(&aws, "region")) {
                Some(region) => {
                    check_region(region, "the `aws` credential's `region`")?;
                    region
                }
                None => {
                    return Err(ProviderError::Invalid(
                        "no AWS region: set Stellar.ProviderSettings.region, AWS_REGION, or \
                         `region` in ~/.aws/config"
                            .to_string(),
                    ));
                }
            },
        }
        .to_string();
        let role_arn = settings.require("role-arn")?.trim().to_string();
        check_role_arn(&role_arn)?;
        let access_key_id = credentials
            .require(&aws, "access-key-id")?
            .trim()
            .to_string();
        let secret_access_key = credentials
            .require(&aws, "secret-access-key")?
            .trim()
            .to_string();
        let session_token = nonempty(credentials.value(&aws, "session-token")).map(str::to_string);
        let endpoint = match settings.nonempty("endpoint") {
            Some(url) => BaseUrl::parse(url)
                .map_err(|e| ProviderError::Invalid(format!("setting `endpoint`: {e}")))?,
            None => BaseUrl::parse(&format!("https://lambda.{region}.amazonaws.com"))?,
        };
        let url_override = settings
            .nonempty("function-url-override")
            .map(|t| check_url_template(t).map(|()| t.to_string()))
            .transpose()?;
        let wait_timeout_s = settings.bounded("wait-timeout-s", DEFAULT_WAIT_TIMEOUT_S, 1, 3600)?;
        let poll_interval_ms =
            settings.bounded("poll-interval-ms", DEFAULT_POLL_INTERVAL_MS, 1, 60_000)?;
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

/// Regions look like `us-east-1`: lower-case letters, digits and `-`. `source` says where the
/// value came from, for the message.
fn check_region(region: &str, source: &str) -> ProviderResult<()> {
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
            "{source} = {region:?} is not an AWS region name (like us-east-1)"
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

/// The `aws` credential with `values`, as the host would grant it (for unit tests).
#[cfg(test)]
pub(crate) fn aws_credential(values: &[(&str, &str)]) -> Vec<Credential> {
    vec![Credential {
        kind: CredentialKind::Aws,
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }]
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
        vec![("region", "us-east-1"), ("role-arn", ROLE)]
    }

    fn keys() -> Vec<(&'static str, &'static str)> {
        vec![
            ("access-key-id", "AKIDEXAMPLE"),
            ("secret-access-key", "s3cr3t-value"),
        ]
    }

    fn config(items: &[(&str, &str)], credential: &[(&str, &str)]) -> ProviderResult<Config> {
        Config::from_settings(pairs(items), aws_credential(credential))
    }

    fn invalid(items: &[(&str, &str)]) -> String {
        match config(items, &keys()) {
            Err(ProviderError::Invalid(m)) => m,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn options_are_declared_with_types_and_defaults() {
        let declared = options();
        let shown: Vec<(&str, OptionType, Option<&str>)> = declared
            .iter()
            .map(|o| (o.name.as_str(), o.value_type, o.default_value.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("region", OptionType::Text, None),
                ("role-arn", OptionType::Text, None),
                ("endpoint", OptionType::ApiUrl, None),
                ("function-url-override", OptionType::EndpointUrl, None),
                ("wait-timeout-s", OptionType::Integer, Some("300")),
                ("poll-interval-ms", OptionType::Integer, Some("1000")),
            ]
        );
        assert!(declared.iter().all(|o| !o.description.is_empty()));
        assert!(declared[0].description.contains("AWS_REGION"));
        assert!(declared[3].description.contains("{name}"));
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&base(), &keys()).unwrap();
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.role_arn, ROLE);
        assert_eq!(c.access_key_id, "AKIDEXAMPLE");
        assert_eq!(c.secret_access_key, "s3cr3t-value");
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
            (
                "function-url-override",
                "http://127.0.0.1:9000/lambda-url/{name}/",
            ),
            ("wait-timeout-s", "20"),
            ("poll-interval-ms", "50"),
        ]);
        let mut credential = keys();
        credential.push(("session-token", "tok"));
        let c = config(&items, &credential).unwrap();
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
    fn region_comes_from_the_setting_else_the_credential() {
        let mut with_region = keys();
        with_region.push(("region", "eu-west-1"));
        let c = config(&base(), &with_region).unwrap();
        assert_eq!(c.region, "us-east-1", "the setting wins");

        let no_setting = [("role-arn", ROLE)];
        let c = config(&no_setting, &with_region).unwrap();
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(
            c.endpoint.to_string(),
            "https://lambda.eu-west-1.amazonaws.com"
        );
        let blank = [("role-arn", ROLE), ("region", " ")];
        assert_eq!(config(&blank, &with_region).unwrap().region, "eu-west-1");

        assert_eq!(
            invalid(&no_setting),
            "no AWS region: set Stellar.ProviderSettings.region, AWS_REGION, or `region` in \
             ~/.aws/config"
        );
        let mut bad = keys();
        bad.push(("region", "EU West"));
        match config(&no_setting, &bad) {
            Err(ProviderError::Invalid(m)) => {
                assert!(m.starts_with("the `aws` credential's `region`"), "{m}");
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn missing_and_unknown_keys_are_named() {
        assert_eq!(
            invalid(&[("region", "us-east-1")]),
            "missing setting `role-arn`"
        );
        let mut items = base();
        items.push(("regoin", "x"));
        let m = invalid(&items);
        assert!(m.starts_with("unknown setting `regoin`"), "{m}");
        assert!(m.contains("function-url-override"), "{m}");
        // Keys are no settings any more: they arrive only as the `aws` credential.
        for key in ["access-key-id", "secret-access-key", "session-token"] {
            let mut items = base();
            items.push((key, "x"));
            assert!(
                invalid(&items).starts_with(&format!("unknown setting `{key}`")),
                "{key}"
            );
        }
    }

    #[test]
    fn the_aws_credential_is_required() {
        let unauthorized = |result: ProviderResult<Config>| match result {
            Err(ProviderError::Unauthorized(m)) => m,
            other => panic!("expected unauthorized, got {other:?}"),
        };
        let m = unauthorized(Config::from_settings(pairs(&base()), Vec::new()));
        assert!(
            m.starts_with("no `aws` credential was granted to this adapter"),
            "{m}"
        );
        // Another kind does not stand in for it.
        let other = vec![Credential {
            kind: CredentialKind::Env("AWS_ACCESS_KEY_ID".into()),
            values: pairs(&[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")]),
        }];
        let m = unauthorized(Config::from_settings(pairs(&base()), other));
        assert!(m.starts_with("no `aws` credential"), "{m}");
        for key in ["access-key-id", "secret-access-key"] {
            let partial: Vec<_> = keys().into_iter().filter(|(k, _)| *k != key).collect();
            let m = unauthorized(config(&base(), &partial));
            assert_eq!(m, format!("the `aws` credential has no `{key}`"));
            assert!(!m.contains("AKIDEXAMPLE") && !m.contains("s3cr3t"), "{m}");
        }
    }

    #[test]
    fn values_are_checked() {
        let with = |key: &'static str, value: &'static str| {
            let mut items = base();
            items.retain(|(k, _)| *k != key);
            items.push((key, value));
            invalid(&items)
        };
        assert!(with("region", "US East").starts_with("setting `region` = \"US East\" is not"));
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
        let mut credential = keys();
        credential.push(("session-token", "very-secret-token"));
        let c = config(&base(), &credential).unwrap();
        let shown = format!("{c:?}");
        for secret in ["AKIDEXAMPLE", "s3cr3t-value", "very-secret-token"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("us-east-1"), "{shown}");
    }
}
