//! The adapter's settings and credentials, parsed and checked once in `configure` so a typo
//! or a missing subscription fails before anything is created.
//!
//! Options are declared in [`options`] and the settings are checked against the same list.
//! The service principal arrives as the `azure` credential (never as a setting); the
//! [`Debug`] output redacts it and nothing logs it.

use std::fmt;
use std::time::Duration;

use stellar_guest_sdk::http::BaseUrl;
use stellar_guest_sdk::{
    Credential, CredentialKind, Credentials, OptionDecl, OptionType, ProviderError, ProviderResult,
    Settings, nonempty, option,
};

/// Azure Resource Manager.
pub(crate) const DEFAULT_ARM: &str = "https://management.azure.com";
/// Microsoft Entra ID (AAD) token endpoint host.
pub(crate) const DEFAULT_LOGIN: &str = "https://login.microsoftonline.com";
/// Blob endpoint of a storage account; `{account}` is the account name.
pub(crate) const DEFAULT_BLOB: &str = "https://{account}.blob.core.windows.net";
/// The placeholder of `blob-endpoint`.
pub(crate) const ACCOUNT_PLACEHOLDER: &str = "{account}";
/// The placeholder of `function-url-override`.
pub(crate) const NAME_PLACEHOLDER: &str = "{name}";
const DEFAULT_WAIT_TIMEOUT_S: u64 = 900;
const DEFAULT_POLL_INTERVAL_MS: u64 = 2000;
const DEFAULT_MAX_INSTANCES: u64 = 100;

pub(crate) fn options() -> Vec<OptionDecl> {
    vec![
        option(
            "location",
            OptionType::Text,
            None,
            "Azure region offering Flex Consumption, e.g. eastus (required)",
        ),
        option(
            "subscription-id",
            OptionType::Text,
            None,
            "subscription to deploy into; else AZURE_SUBSCRIPTION_ID",
        ),
        option(
            "maximum-instance-count",
            OptionType::Integer,
            Some(&DEFAULT_MAX_INSTANCES.to_string()),
            "functionAppConfig.scaleAndConcurrency.maximumInstanceCount (40 to 1000)",
        ),
        option(
            "arm-endpoint",
            OptionType::ApiUrl,
            Some(DEFAULT_ARM),
            "another Azure Resource Manager base URL (a fake, another cloud)",
        ),
        option(
            "login-endpoint",
            OptionType::ApiUrl,
            Some(DEFAULT_LOGIN),
            "another Microsoft Entra ID token endpoint base URL",
        ),
        option(
            "blob-endpoint",
            OptionType::ApiUrl,
            Some(DEFAULT_BLOB),
            "another blob endpoint, {account} = storage account (e.g. Azurite's)",
        ),
        option(
            "function-url-override",
            OptionType::EndpointUrl,
            None,
            "send the timed requests here instead of https://<app>/api/measure; {name} = function",
        ),
        option(
            "wait-timeout-s",
            OptionType::Integer,
            Some(&DEFAULT_WAIT_TIMEOUT_S.to_string()),
            "seconds to wait for one long-running ARM operation",
        ),
        option(
            "poll-interval-ms",
            OptionType::Integer,
            Some(&DEFAULT_POLL_INTERVAL_MS.to_string()),
            "first delay between two polls of a long-running operation (milliseconds)",
        ),
    ]
}

/// What `configure` established.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) location: String,
    pub(crate) subscription: String,
    pub(crate) tenant: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) max_instances: u32,
    pub(crate) arm: BaseUrl,
    pub(crate) login: BaseUrl,
    /// Template with [`ACCOUNT_PLACEHOLDER`].
    pub(crate) blob: String,
    pub(crate) url_override: Option<String>,
    pub(crate) wait_timeout: Duration,
    pub(crate) poll_interval: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("location", &self.location)
            .field("subscription", &self.subscription)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("max_instances", &self.max_instances)
            .field("arm", &self.arm.to_string())
            .field("login", &self.login.to_string())
            .field("blob", &self.blob)
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
        let azure = CredentialKind::Azure;
        if credentials.find(&azure).is_none() {
            return Err(ProviderError::Unauthorized(
                "no `azure` credential was granted to this adapter (stellar reads it from \
                 AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET)"
                    .to_string(),
            ));
        }
        let location = settings
            .nonempty("location")
            .ok_or_else(|| {
                ProviderError::Invalid(
                    "no Azure location: set Stellar.ProviderSettings.location to a region that \
                     offers Flex Consumption, e.g. \"eastus\""
                        .to_string(),
                )
            })?
            .to_ascii_lowercase();
        if !location.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ProviderError::Invalid(format!(
                "Stellar.ProviderSettings.location: {location:?} is not an Azure location name \
                 (lower-case letters and digits, e.g. \"eastus\")"
            )));
        }
        let subscription = settings
            .nonempty("subscription-id")
            .or_else(|| nonempty(credentials.value(&azure, "subscription-id")))
            .ok_or_else(|| {
                ProviderError::Invalid(
                    "no Azure subscription: set AZURE_SUBSCRIPTION_ID or \
                     Stellar.ProviderSettings.subscription-id"
                        .to_string(),
                )
            })?
            .to_string();
        check_guid(&subscription, "the subscription id")?;
        let tenant = credentials.require(&azure, "tenant-id")?.trim().to_string();
        if !tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(ProviderError::Invalid(
                "AZURE_TENANT_ID is not a tenant id or domain".to_string(),
            ));
        }
        let client_id = credentials.require(&azure, "client-id")?.trim().to_string();
        let client_secret = credentials.require(&azure, "client-secret")?.to_string();
        let url = |key: &str, default: &str| -> ProviderResult<BaseUrl> {
            let value = nonempty(settings.get(key)).unwrap_or(default);
            BaseUrl::parse(value)
                .map_err(|e| ProviderError::Invalid(format!("Stellar.ProviderSettings.{key}: {e}")))
        };
        let arm = url("arm-endpoint", DEFAULT_ARM)?;
        let login = url("login-endpoint", DEFAULT_LOGIN)?;
        let blob = settings
            .nonempty("blob-endpoint")
            .unwrap_or(DEFAULT_BLOB)
            .trim_end_matches('/')
            .to_string();
        BaseUrl::parse(&blob.replace(ACCOUNT_PLACEHOLDER, "account")).map_err(|e| {
            ProviderError::Invalid(format!("Stellar.ProviderSettings.blob-endpoint: {e}"))
        })?;
        let url_override = settings
            .nonempty("function-url-override")
            .map(str::to_string);
        let max_instances =
            settings.bounded("maximum-instance-count", DEFAULT_MAX_INSTANCES, 40, 1000)?;
        let wait_timeout_s = settings.bounded("wait-timeout-s", DEFAULT_WAIT_TIMEOUT_S, 1, 7200)?;
        let poll_ms = settings.bounded("poll-interval-ms", DEFAULT_POLL_INTERVAL_MS, 1, 60_000)?;
        Ok(Self {
            location,
            subscription,
            tenant,
            client_id,
            client_secret,
            max_instances: u32::try_from(max_instances).unwrap_or(1000),
            arm,
            login,
            blob,
            url_override,
            wait_timeout: Duration::from_secs(wait_timeout_s),
            poll_interval: Duration::from_millis(poll_ms),
        })
    }

    /// The blob service base URL of storage account `account`.
    pub(crate) fn blob_base(&self, account: &str) -> String {
        self.blob.replace(ACCOUNT_PLACEHOLDER, account)
    }

    /// Where the timed requests go: the override (with `{name}`) or the function's URL.
    pub(crate) fn public_url(&self, name: &str, function_url: &str) -> String {
        match &self.url_override {
            Some(template) => template.replace(NAME_PLACEHOLDER, name),
            None => function_url.to_string(),
        }
    }
}

/// A GUID such as `00000000-0000-0000-0000-000000000000`.
fn check_guid(value: &str, what: &str) -> ProviderResult<()> {
    let groups: Vec<&str> = value.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "{what} {value:?} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SUB: &str = "00000000-1111-2222-3333-444444444444";

    fn credential(values: &[(&str, &str)]) -> Vec<Credential> {
        vec![Credential {
            kind: CredentialKind::Azure,
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }]
    }

    fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sp() -> Vec<Credential> {
        credential(&[
            ("tenant-id", "tenant-1"),
            ("client-id", "client-1"),
            ("client-secret", "s3cret-value"),
            ("subscription-id", SUB),
        ])
    }

    #[test]
    fn defaults_and_redaction() {
        let c = Config::from_settings(settings(&[("location", "EastUS")]), sp()).unwrap();
        assert_eq!(c.location, "eastus");
        assert_eq!(c.subscription, SUB);
        assert_eq!(c.arm.to_string(), DEFAULT_ARM);
        assert_eq!(c.blob_base("abc"), "https://abc.blob.core.windows.net");
        assert_eq!(c.max_instances, 100);
        assert_eq!(c.poll_interval, Duration::from_millis(2000));
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
        assert_eq!(
            c.public_url("st-1", "https://h/api/measure"),
            "https://h/api/measure"
        );
    }

    #[test]
    fn setting_wins_over_credential_for_the_subscription() {
        let other = "aaaaaaaa-1111-2222-3333-444444444444";
        let c = Config::from_settings(
            settings(&[("location", "westus"), ("subscription-id", other)]),
            sp(),
        )
        .unwrap();
        assert_eq!(c.subscription, other);
    }

    #[test]
    fn bad_input_is_named() {
        let no_sub = credential(&[
            ("tenant-id", "t"),
            ("client-id", "c"),
            ("client-secret", "s"),
        ]);
        let err = Config::from_settings(settings(&[("location", "eastus")]), no_sub).unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.contains("AZURE_SUBSCRIPTION_ID")),
            "{err:?}"
        );
        let err = Config::from_settings(settings(&[]), sp()).unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.contains("location")),
            "{err:?}"
        );
        let err = Config::from_settings(settings(&[("location", "east us")]), sp()).unwrap_err();
        assert!(matches!(err, ProviderError::Invalid(_)), "{err:?}");
        let err = Config::from_settings(
            settings(&[("location", "eastus"), ("subscription-id", "nope")]),
            sp(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.contains("GUID")),
            "{err:?}"
        );
        let err = Config::from_settings(
            settings(&[("location", "eastus"), ("maximum-instance-count", "5")]),
            sp(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.contains("maximum-instance-count")),
            "{err:?}"
        );
        let err =
            Config::from_settings(settings(&[("location", "eastus")]), Vec::new()).unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
        let err = Config::from_settings(settings(&[("location", "eastus"), ("zone", "1")]), sp())
            .unwrap_err();
        assert!(matches!(err, ProviderError::Invalid(_)), "{err:?}");
    }
}
