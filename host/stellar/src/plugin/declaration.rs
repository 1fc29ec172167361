//! What an adapter declares in `describe`, checked and put in plain words.
//!
//! A declaration is input from a possibly hostile component: it is validated once at load
//! (name grammar, bounded strings and lists, well-formed host patterns) and from then on it
//! drives the host: which artifact to build, which credentials to hand over, which options the
//! experiment may set, and where the driver may send timed requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::bindings::{ArtifactKind, ColdStartScope, CredentialKind, OptionType, ProviderInfo};
use super::sandbox::any_matches;

/// Most entries in any list of a declaration.
const MAX_LIST: usize = 64;
/// Longest host pattern, option name or version.
const MAX_SHORT: usize = 253;
/// Longest option description or default.
const MAX_DESCRIPTION: usize = 512;

/// Why a declaration was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeclarationError(String);

/// Checks what `describe` returned.
pub fn validate(info: &ProviderInfo) -> Result<(), DeclarationError> {
    let err = |m: String| Err(DeclarationError(m));
    if !stellar_config::is_provider_name(&info.name) {
        return err(format!(
            "describe() returned the name {:?}; a provider name is lower-case letters, digits, \
             `-` and `_`, at most {} characters",
            super::budget::cut(&info.name, 80),
            stellar_config::MAX_PROVIDER_NAME
        ));
    }
    if info.version.is_empty() || info.version.len() > MAX_SHORT {
        return err(format!(
            "describe() returned a version of {} bytes (expected 1 to {MAX_SHORT})",
            info.version.len()
        ));
    }
    for (what, list) in [
        ("allowed-hosts", &info.allowed_hosts),
        ("endpoint-hosts", &info.endpoint_hosts),
    ] {
        if list.len() > MAX_LIST {
            return err(format!(
                "describe() declared {} {what} (at most {MAX_LIST})",
                list.len()
            ));
        }
        if let Some(bad) = list.iter().find(|p| !is_host_pattern(p)) {
            return err(format!(
                "describe() declared {what} entry {:?}, which is not `host`, `host:port` or \
                 `*.suffix`",
                super::budget::cut(bad, 80)
            ));
        }
    }
    if info.artifacts.is_empty() || info.artifacts.len() > MAX_LIST {
        return err(
            "describe() must declare between 1 and 64 artifact kinds (`none` when it \
                    needs no build)"
                .into(),
        );
    }
    if info.credentials.len() > MAX_LIST || info.options.len() > MAX_LIST {
        return err(format!(
            "describe() declared {} credentials and {} options (at most {MAX_LIST} each)",
            info.credentials.len(),
            info.options.len()
        ));
    }
    for kind in &info.credentials {
        if let CredentialKind::Env(name) = kind
            && !is_env_name(name)
        {
            return err(format!(
                "describe() asks for the environment variable {:?}, which is not a variable \
                 name (letters, digits and `_`)",
                super::budget::cut(name, 80)
            ));
        }
    }
    let mut seen = BTreeMap::new();
    for option in &info.options {
        let name_ok = !option.name.is_empty()
            && option.name.len() <= MAX_SHORT
            && option
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return err(format!(
                "describe() declared the option {:?}; option names are letters, digits, `-`, \
                 `_` and `.`",
                super::budget::cut(&option.name, 80)
            ));
        }
        if seen.insert(option.name.as_str(), ()).is_some() {
            return err(format!(
                "describe() declared the option `{}` twice",
                option.name
            ));
        }
        if option.description.len() > MAX_DESCRIPTION
            || option
                .default_value
                .as_ref()
                .is_some_and(|d| d.len() > MAX_DESCRIPTION)
        {
            return err(format!(
                "describe(): the description or default of option `{}` is longer than \
                 {MAX_DESCRIPTION} bytes",
                option.name
            ));
        }
    }
    Ok(())
}

fn is_host_pattern(pattern: &str) -> bool {
    let body = pattern.strip_prefix("*.").unwrap_or(pattern);
    let (host, port) = match body.rsplit_once(':') {
        Some((h, p)) if !pattern.starts_with("*.") => (h, Some(p)),
        _ => (body, None),
    };
    pattern.len() <= MAX_SHORT
        && port.is_none_or(|p| p.parse::<u16>().is_ok())
        && !host.is_empty()
        && host.split('.').all(|label| {
            label == "*"
                || (!label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        })
        // A lone `*` label outside a `*.` pattern, or `*.*`, would match too much.
        && (pattern.starts_with("*.") || !host.split('.').any(|l| l == "*"))
        && host.split('.').any(|l| l != "*")
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A credential kind as the user writes it after `--grant` (`aws`, `env:NAME`).
pub fn grant_name(kind: &CredentialKind) -> String {
    match kind {
        CredentialKind::Aws => "aws".into(),
        CredentialKind::Azure => "azure".into(),
        CredentialKind::Gcp => "gcp".into(),
        CredentialKind::Alibaba => "alibaba".into(),
        CredentialKind::Kubernetes => "kubernetes".into(),
        CredentialKind::Env(name) => format!("env:{name}"),
    }
}

/// What a credential kind is, in words.
pub fn credential_words(kind: &CredentialKind) -> String {
    match kind {
        CredentialKind::Aws => {
            "AWS keys (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)".into()
        }
        CredentialKind::Azure => {
            "an Azure service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)"
                .into()
        }
        CredentialKind::Gcp => {
            "a Google service-account key (the file GOOGLE_APPLICATION_CREDENTIALS names)".into()
        }
        CredentialKind::Alibaba => {
            "Alibaba Cloud keys (ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET)"
                .into()
        }
        CredentialKind::Kubernetes => "a kubeconfig (KUBECONFIG or ~/.kube/config)".into(),
        CredentialKind::Env(name) => format!("the environment variable {name}"),
    }
}

/// What an artifact kind is, in words.
pub fn artifact_words(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::LambdaZip => "a Lambda zip (`bootstrap`, provided.al2023)",
        ArtifactKind::CustomHandlerZip => "an Azure Functions custom-handler zip",
        ArtifactKind::FcCustomZip => "an Alibaba Function Compute custom-runtime zip",
        ArtifactKind::OciImage => "an OCI container image",
        ArtifactKind::NativeBinary => "the measurement function as an executable for this machine",
        ArtifactKind::None => {
            "nothing (the adapter's functions are not stellar's measurement function)"
        }
    }
}

fn option_type_words(kind: OptionType) -> &'static str {
    match kind {
        OptionType::Text => "text",
        OptionType::Integer => "integer",
        OptionType::Boolean => "true/false",
        OptionType::ApiUrl => "URL the adapter may call",
        OptionType::EndpointUrl => "URL timed requests may go to",
        OptionType::EndpointsFile => "file of endpoints, read by stellar and handed over",
    }
}

fn scope_words(scope: ColdStartScope) -> &'static str {
    match scope {
        ColdStartScope::Function => "per function",
        ColdStartScope::App => "per app (functions of one app share instances)",
        ColdStartScope::Service => "per service",
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}

/// `stellar plugins inspect` / `list`: the declaration in plain words. `first_party` decides
/// how credentials are obtained (automatically, or only with `--grant`).
pub fn describe_in_words(info: &ProviderInfo, origin: &str, first_party: bool) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "{} {} ({origin})", info.name, info.version);
    let _ = writeln!(
        text,
        "  provider name:        \"Provider\": \"{}\"",
        info.name
    );
    let _ = writeln!(
        text,
        "  may call:             {}",
        list_or_none(&info.allowed_hosts)
    );
    let from_files: Vec<&str> = info
        .options
        .iter()
        .filter(|o| matches!(o.value_type, OptionType::EndpointsFile))
        .map(|o| o.name.as_str())
        .collect();
    let endpoint_hosts = if from_files.is_empty() || !info.endpoint_hosts.is_empty() {
        list_or_none(&info.endpoint_hosts)
    } else {
        format!("the hosts written in the file of {}", from_files.join(", "))
    };
    let _ = writeln!(text, "  timed requests go to: {endpoint_hosts}");
    let artifacts: Vec<&str> = info.artifacts.iter().map(|k| artifact_words(*k)).collect();
    let _ = writeln!(text, "  deploys:              {}", artifacts.join("; or "));
    if info.credentials.is_empty() {
        let _ = writeln!(text, "  credentials:          none");
    } else {
        let _ = writeln!(text, "  credentials:");
        for kind in &info.credentials {
            let how = if first_party {
                "handed over automatically (first-party adapter)".to_owned()
            } else {
                format!("only with --grant {}", grant_name(kind))
            };
            let _ = writeln!(text, "    - {}: {how}", credential_words(kind));
        }
    }
    let _ = writeln!(
        text,
        "  cold starts:          {}",
        scope_words(info.cold_start_scope)
    );
    let _ = writeln!(
        text,
        "  instance concurrency: {}",
        info.instance_concurrency
    );
    if info.options.is_empty() {
        let _ = writeln!(text, "  options:              none");
    } else {
        let _ = writeln!(text, "  options (Stellar.ProviderSettings):");
        for option in &info.options {
            let default = option
                .default_value
                .as_ref()
                .map(|d| format!(", default {d}"))
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "    {} ({}{default}): {}",
                option.name,
                option_type_words(option.value_type),
                option.description
            );
        }
    }
    text
}

/// The experiment's `Stellar.ProviderSettings` checked against the declared options, and the
/// hosts the user's URL options add.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckedOptions {
    /// Authorities (`host[:port]`) the adapter may also call.
    pub extra_api_hosts: Vec<String>,
    /// Authorities the driver may also send timed requests to.
    pub extra_endpoint_hosts: Vec<String>,
    /// `endpoints-file` options: (key, path as written); the host reads them before
    /// `configure` ([`read_endpoints_file`]).
    pub endpoints_files: Vec<(String, String)>,
}

/// Checks every key and value of `settings` against the options `info` declares.
/// Errors name the key as `Stellar.ProviderSettings.<key>`.
pub fn check_options(
    info: &ProviderInfo,
    settings: &BTreeMap<String, String>,
) -> Result<CheckedOptions, DeclarationError> {
    let mut checked = CheckedOptions::default();
    for (key, value) in settings {
        let Some(option) = info.options.iter().find(|o| &o.name == key) else {
            let known: Vec<&str> = info.options.iter().map(|o| o.name.as_str()).collect();
            return Err(DeclarationError(format!(
                "Stellar.ProviderSettings.{key}: the `{}` adapter has no option `{key}` \
                 (its options: {})",
                info.name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        };
        let bad = |expected: &str| {
            DeclarationError(format!(
                "Stellar.ProviderSettings.{key}: {value:?} is not {expected}"
            ))
        };
        match option.value_type {
            OptionType::Text => {}
            OptionType::Integer => {
                value.trim().parse::<i64>().map_err(|_| bad("an integer"))?;
            }
            OptionType::Boolean => {
                if !matches!(value.trim(), "true" | "false") {
                    return Err(bad("true or false"));
                }
            }
            OptionType::ApiUrl => checked
                .extra_api_hosts
                .push(authority_of(value).ok_or_else(|| bad("an http(s) URL"))?),
            OptionType::EndpointUrl => checked
                .extra_endpoint_hosts
                .push(authority_of(value).ok_or_else(|| bad("an http(s) URL"))?),
            OptionType::EndpointsFile => {
                if value.trim().is_empty() {
                    return Err(bad("a file path"));
                }
                checked.endpoints_files.push((key.clone(), value.clone()));
            }
        }
    }
    Ok(checked)
}

/// Largest endpoints file the host reads.
pub const MAX_ENDPOINTS_FILE_BYTES: u64 = 1 << 20;

/// Reads an `endpoints-file` option's file (`path` relative to `base_dir`): its content and
/// the authorities written in it (see [`authorities_in`]).
pub fn read_endpoints_file(
    key: &str,
    path: &str,
    base_dir: &std::path::Path,
) -> Result<(String, Vec<String>), DeclarationError> {
    let full = base_dir.join(path);
    let fail = |what: String| {
        DeclarationError(format!(
            "Stellar.ProviderSettings.{key}: {}: {what}",
            full.display()
        ))
    };
    let meta = fs_err::metadata(&full).map_err(|e| fail(plain_io(&e)))?;
    if meta.len() > MAX_ENDPOINTS_FILE_BYTES {
        return Err(fail(format!(
            "{} bytes; an endpoints file may have at most {MAX_ENDPOINTS_FILE_BYTES}",
            meta.len()
        )));
    }
    let bytes = fs_err::read(&full).map_err(|e| fail(plain_io(&e)))?;
    let text = String::from_utf8(bytes).map_err(|e| fail(format!("not UTF-8 text ({e})")))?;
    let hosts = authorities_in(&text);
    Ok((text, hosts))
}

fn plain_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        _ => e.to_string(),
    }
}

/// The words of `text` that name an endpoint: `host:port` (port a number) or a host name with
/// a dot and a letter, with an `http(s)://` prefix and a path removed; lower-cased, unique.
pub fn authorities_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let separators =
        |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '[' | ']' | '{' | '}');
    for word in text.split(separators) {
        let word = word
            .strip_prefix("http://")
            .or_else(|| word.strip_prefix("https://"))
            .unwrap_or(word);
        let authority = word.split('/').next().unwrap_or("");
        if authority.is_empty()
            || !authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            continue;
        }
        let with_port = authority
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && !h.contains(':') && p.parse::<u16>().is_ok());
        let dotted_name = authority.contains('.')
            && authority.chars().any(|c| c.is_ascii_alphabetic())
            && !authority.contains(':');
        let authority = authority.to_ascii_lowercase();
        if (with_port || dotted_name) && !found.contains(&authority) {
            found.push(authority);
        }
    }
    found
}

/// `host[:port]` of an http(s) URL (no user info).
pub fn authority_of(url: &str) -> Option<String> {
    let rest = url
        .trim()
        .strip_prefix("https://")
        .or_else(|| url.trim().strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty() && !authority.contains('@') && !authority.contains('{'))
        .then(|| authority.to_ascii_lowercase())
}

/// Whether the driver may send timed requests to `host` (`port` if the URL named one):
/// it must match the declared endpoint hosts or an authority the user configured.
pub fn endpoint_allowed(
    info: &ProviderInfo,
    extra: &[String],
    host: &str,
    port: Option<u16>,
) -> bool {
    any_matches(&info.endpoint_hosts, host, port) || any_matches(extra, host, port)
}

#[cfg(test)]
mod tests {
    use super::super::bindings::OptionDecl;
    use super::*;

    #[test]
    fn endpoints_file_words_that_name_hosts() {
        let text = r#"[{"GatewayID": "10.0.0.5:80", "FunctionMemoryMB": 128, "ImageSizeMB": 10.5},
                       {"hostname": "Fn.default.192.168.1.240.sslip.io", "eventing": false},
                       {"url": "http://127.0.0.1:9000/x"}, {"PackageType": "Image"}]"#;
        assert_eq!(
            authorities_in(text),
            [
                "10.0.0.5:80",
                "fn.default.192.168.1.240.sslip.io",
                "127.0.0.1:9000"
            ]
        );
    }

    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "mycloud".into(),
            version: "0.1.0".into(),
            allowed_hosts: vec!["api.mycloud.example".into()],
            endpoint_hosts: vec!["*.run.mycloud.example".into()],
            artifacts: vec![ArtifactKind::None],
            credentials: vec![CredentialKind::Env("MYCLOUD_TOKEN".into())],
            options: vec![
                OptionDecl {
                    name: "api".into(),
                    value_type: OptionType::ApiUrl,
                    default_value: Some("https://api.mycloud.example".into()),
                    description: "API base URL".into(),
                },
                OptionDecl {
                    name: "functions-url".into(),
                    value_type: OptionType::EndpointUrl,
                    default_value: None,
                    description: "stand-in".into(),
                },
                OptionDecl {
                    name: "replicas".into(),
                    value_type: OptionType::Integer,
                    default_value: Some("1".into()),
                    description: "n".into(),
                },
                OptionDecl {
                    name: "fast".into(),
                    value_type: OptionType::Boolean,
                    default_value: None,
                    description: "b".into(),
                },
            ],
            cold_start_scope: ColdStartScope::Function,
            instance_concurrency: 1,
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn good_declarations_pass_and_bad_ones_are_named() {
        validate(&info()).unwrap();
        let refused = |f: &dyn Fn(&mut ProviderInfo)| {
            let mut i = info();
            f(&mut i);
            validate(&i).unwrap_err().to_string()
        };
        assert!(refused(&|i| i.name = "My Cloud".into()).contains("provider name"));
        assert!(refused(&|i| i.name = "x".repeat(1 << 20)).len() < 400);
        assert!(refused(&|i| i.artifacts.clear()).contains("artifact"));
        assert!(refused(&|i| i.allowed_hosts.push("*".into())).contains("allowed-hosts"));
        assert!(refused(&|i| i.endpoint_hosts.push("*.*".into())).contains("endpoint-hosts"));
        assert!(refused(&|i| i.endpoint_hosts.push("a b".into())).contains("endpoint-hosts"));
        assert!(
            refused(&|i| i.credentials.push(CredentialKind::Env("A=B".into())))
                .contains("environment variable")
        );
        assert!(refused(&|i| i.options.push(i.options[0].clone())).contains("twice"));
        assert!(refused(&|i| i.version.clear()).contains("version"));
        for ok in [
            "host",
            "host:80",
            "*.suffix.example",
            "*.a.*.on.aws",
            "127.0.0.1",
        ] {
            assert!(is_host_pattern(ok), "{ok}");
        }
    }

    #[test]
    fn options_are_typed_and_urls_widen_hosts() {
        let checked = check_options(
            &info(),
            &settings(&[
                ("api", "http://127.0.0.1:4000/v1"),
                ("functions-url", "http://127.0.0.1:4001/invoke"),
                ("replicas", "3"),
                ("fast", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(checked.extra_api_hosts, vec!["127.0.0.1:4000"]);
        assert_eq!(checked.extra_endpoint_hosts, vec!["127.0.0.1:4001"]);
        let err = |pairs: &[(&str, &str)]| {
            check_options(&info(), &settings(pairs))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[("regoin", "x")]),
            "Stellar.ProviderSettings.regoin: the `mycloud` adapter has no option `regoin` \
             (its options: api, functions-url, replicas, fast)"
        );
        assert!(err(&[("replicas", "many")]).contains("is not an integer"));
        assert!(err(&[("fast", "yes")]).contains("true or false"));
        assert!(err(&[("api", "ftp://x")]).contains("http(s) URL"));
        assert!(err(&[("api", "http://user@evil")]).contains("http(s) URL"));
    }

    #[test]
    fn endpoints_must_match_declarations_or_user_urls() {
        let i = info();
        assert!(endpoint_allowed(&i, &[], "f1.run.mycloud.example", None));
        assert!(!endpoint_allowed(&i, &[], "127.0.0.1", Some(8080)));
        assert!(!endpoint_allowed(&i, &[], "run.mycloud.example.evil", None));
        let extra = vec!["127.0.0.1:8080".to_owned()];
        assert!(endpoint_allowed(&i, &extra, "127.0.0.1", Some(8080)));
        assert!(!endpoint_allowed(&i, &extra, "127.0.0.1", Some(8081)));
    }

    #[test]
    fn plain_words_show_no_rust_debug_names() {
        let text = describe_in_words(&info(), "x.wasm", false);
        assert!(text.contains("--grant env:MYCLOUD_TOKEN"), "{text}");
        assert!(text.contains("*.run.mycloud.example"), "{text}");
        assert!(
            !text.contains("ArtifactKind") && !text.contains("None"),
            "{text}"
        );
        let first_party = describe_in_words(&info(), "embedded", true);
        assert!(first_party.contains("automatically"), "{first_party}");
    }
}
