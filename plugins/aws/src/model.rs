//! The Lambda REST API's request bodies and the parts of its responses the adapter reads,
//! plus the checks a function spec must pass before anything is sent.
//!
//! Bodies that carry code are built as a JSON prefix and suffix around the base64 zip
//! (`..."ZipFile":"` + b64 + `"}}`), so the zip itself can be streamed between them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stellar_guest_sdk::{Arch, Endpoint, FunctionSpec, Protocol, ProviderError, ProviderResult};

use crate::config::Config;

/// Runtime for a zip with a `bootstrap` executable at its root.
pub(crate) const RUNTIME: &str = "provided.al2023";
/// Largest zip Lambda accepts inline (direct upload); larger ones need S3.
pub(crate) const MAX_ZIP_BYTES: u64 = 50 << 20;
/// Functions stellar created start with this (the host's naming).
pub(crate) const NAME_PREFIX: &str = "st-";
/// Resource-policy statement ids the adapter adds.
pub(crate) const STATEMENT_URL_PUBLIC: &str = "stellar-url-public";
pub(crate) const STATEMENT_URL_INVOKE: &str = "stellar-url-invoke";

pub(crate) fn architecture(arch: Arch) -> &'static str {
    match arch {
        Arch::X8664 => "x86_64",
        Arch::Arm64 => "arm64",
    }
}

/// Lambda function names: 1–64 letters, digits, `-` or `_` (they go into URL paths as is).
pub(crate) fn check_name(name: &str) -> ProviderResult<()> {
    if (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "function name {name:?} must be 1 to 64 letters, digits, `-` or `_`"
        )))
    }
}

/// Checks what Lambda would reject anyway, with clearer messages and before any upload.
pub(crate) fn check_spec(name: &str, spec: &FunctionSpec) -> ProviderResult<()> {
    check_name(name)?;
    if !(128..=10_240).contains(&spec.memory_mb) {
        return Err(ProviderError::Invalid(format!(
            "memory {} MB is outside AWS Lambda's range (128 to 10240 MB)",
            spec.memory_mb
        )));
    }
    if !(1..=900).contains(&spec.timeout_s) {
        return Err(ProviderError::Invalid(format!(
            "timeout {} s is outside AWS Lambda's range (1 to 900 s)",
            spec.timeout_s
        )));
    }
    if spec.instance_concurrency > 1 {
        return Err(ProviderError::Invalid(format!(
            "instance concurrency {} is not possible on AWS Lambda: an instance serves one \
             request at a time",
            spec.instance_concurrency
        )));
    }
    if let Some((key, _)) = spec.options.first() {
        return Err(ProviderError::Invalid(format!(
            "unknown option `{key}` for the aws provider (it takes none)"
        )));
    }
    if let Some(artifact) = &spec.artifact {
        check_zip_size(artifact.size())?;
    }
    Ok(())
}

pub(crate) fn check_zip_size(size: u64) -> ProviderResult<()> {
    if size > MAX_ZIP_BYTES {
        Err(ProviderError::Invalid(format!(
            "the artifact is {size} bytes; AWS Lambda takes at most {MAX_ZIP_BYTES} bytes (50 MiB) \
             zipped by direct upload, and uploading through S3 is not supported yet"
        )))
    } else {
        Ok(())
    }
}

fn map(pairs: &[(String, String)]) -> BTreeMap<&str, &str> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Environment<'a> {
    pub(crate) variables: BTreeMap<&'a str, &'a str>,
}

/// `POST /2015-03-31/functions` without `Code` (which is streamed after it).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateFunction<'a> {
    pub(crate) function_name: &'a str,
    pub(crate) runtime: &'static str,
    pub(crate) handler: &'static str,
    pub(crate) role: &'a str,
    pub(crate) package_type: &'static str,
    pub(crate) memory_size: u32,
    pub(crate) timeout: u32,
    pub(crate) architectures: [&'static str; 1],
    pub(crate) environment: Environment<'a>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) tags: BTreeMap<&'a str, &'a str>,
}

impl<'a> CreateFunction<'a> {
    pub(crate) fn new(spec: &'a FunctionSpec, role: &'a str) -> Self {
        Self {
            function_name: &spec.name,
            runtime: RUNTIME,
            handler: "bootstrap",
            role,
            package_type: "Zip",
            memory_size: spec.memory_mb,
            timeout: spec.timeout_s,
            architectures: [architecture(spec.arch)],
            environment: Environment {
                variables: map(&spec.env),
            },
            tags: map(&spec.tags),
        }
    }

    /// The body around the streamed zip: `{...,"Code":{"ZipFile":"` and `"}}`.
    pub(crate) fn prefix_suffix(&self) -> ProviderResult<(Vec<u8>, Vec<u8>)> {
        Ok((
            open_object(self, br#""Code":{"ZipFile":""#)?,
            br#""}}"#.to_vec(),
        ))
    }
}

/// `PUT /2015-03-31/functions/{name}/code` without `ZipFile` (streamed after it).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateFunctionCode {
    pub(crate) architectures: [&'static str; 1],
}

impl UpdateFunctionCode {
    /// The body around the streamed zip: `{"Architectures":[..],"ZipFile":"` and `"}`.
    pub(crate) fn prefix_suffix(&self) -> ProviderResult<(Vec<u8>, Vec<u8>)> {
        Ok((open_object(self, br#""ZipFile":""#)?, br#""}"#.to_vec()))
    }
}

/// `PUT /2015-03-31/functions/{name}/configuration`.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateFunctionConfiguration<'a> {
    pub(crate) memory_size: u32,
    pub(crate) timeout: u32,
    pub(crate) environment: Environment<'a>,
}

impl<'a> UpdateFunctionConfiguration<'a> {
    pub(crate) fn new(spec: &'a FunctionSpec) -> Self {
        Self {
            memory_size: spec.memory_mb,
            timeout: spec.timeout_s,
            environment: Environment {
                variables: map(&spec.env),
            },
        }
    }
}

/// `POST /2021-10-31/functions/{name}/url`: a public URL, buffered responses.
pub(crate) fn create_url_config() -> serde_json::Value {
    serde_json::json!({"AuthType": "NONE", "InvokeMode": "BUFFERED"})
}

/// The two `POST /2015-03-31/functions/{name}/policy` statements a public function URL
/// needs (since October 2025 both are required).
pub(crate) fn permissions() -> [serde_json::Value; 2] {
    [
        serde_json::json!({
            "StatementId": STATEMENT_URL_PUBLIC,
            "Action": "lambda:InvokeFunctionUrl",
            "Principal": "*",
            "FunctionUrlAuthType": "NONE",
        }),
        serde_json::json!({
            "StatementId": STATEMENT_URL_INVOKE,
            "Action": "lambda:InvokeFunction",
            "Principal": "*",
            "InvokedViaFunctionUrl": true,
        }),
    ]
}

/// `value` serialised as a JSON object with its closing `}` replaced by `,` + `member_start`
/// (or just `member_start` when the object is empty).
fn open_object<T: Serialize>(value: &T, member_start: &[u8]) -> ProviderResult<Vec<u8>> {
    let mut json = serde_json::to_vec(value)
        .map_err(|e| ProviderError::Other(format!("cannot encode the request body: {e}")))?;
    if json.pop() != Some(b'}') {
        return Err(ProviderError::Other(
            "request body is not a JSON object".to_string(),
        ));
    }
    if json != b"{" {
        json.push(b',');
    }
    json.extend_from_slice(member_start);
    Ok(json)
}

/// The function configuration as Lambda reports it (GetFunction's `Configuration`,
/// CreateFunction's and the Update* responses, ListFunctions' items). Unknown fields are
/// ignored; absent ones default.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct FunctionConfiguration {
    pub(crate) function_name: String,
    pub(crate) function_arn: String,
    pub(crate) memory_size: Option<u32>,
    pub(crate) code_sha256: Option<String>,
    pub(crate) code_size: Option<u64>,
    pub(crate) architectures: Vec<String>,
    pub(crate) state: Option<String>,
    pub(crate) state_reason: Option<String>,
    pub(crate) state_reason_code: Option<String>,
    pub(crate) last_update_status: Option<String>,
    pub(crate) last_update_status_reason: Option<String>,
    pub(crate) last_update_status_reason_code: Option<String>,
    /// ISO 8601, e.g. `2019-08-14T22:26:11.234+0000` (Lambda API reference,
    /// FunctionConfiguration.LastModified).
    pub(crate) last_modified: Option<String>,
}

/// Unix milliseconds of Lambda's `LastModified` (`YYYY-MM-DDThh:mm:ss[.fff](+hhmm|+hh:mm|Z)`),
/// or `None` when it does not have that shape.
pub(crate) fn last_modified_unix_ms(text: &str) -> Option<u64> {
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (date, rest) = text.split_once('T')?;
    let mut parts = date.split('-');
    let (y, m, d) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let tz_at = rest.find(['+', '-', 'Z'])?;
    let (time, tz) = rest.split_at(tz_at);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut hms = hms.split(':');
    let (hh, mm, ss) = (num(hms.next()?)?, num(hms.next()?)?, num(hms.next()?)?);
    if hms.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let millis = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        num(&digits)?
    };
    let offset_min = match tz {
        "Z" => 0,
        _ => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let hhmm: String = tz[1..].chars().filter(|c| *c != ':').collect();
            if hhmm.len() != 4 {
                return None;
            }
            sign * (num(&hhmm[..2])? * 60 + num(&hhmm[2..])?)
        }
    };
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_min * 60;
    u64::try_from(secs * 1000 + millis).ok()
}

/// `GET /2015-03-31/functions/{name}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetFunction {
    pub(crate) configuration: FunctionConfiguration,
}

/// `GET|POST /2021-10-31/functions/{name}/url`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct FunctionUrlConfig {
    pub(crate) function_url: String,
}

/// `GET /2015-03-31/functions/`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListFunctions {
    #[serde(default)]
    pub(crate) functions: Vec<FunctionConfiguration>,
    #[serde(default)]
    pub(crate) next_marker: Option<String>,
}

/// The endpoint handed to the host for function `name`.
pub(crate) fn endpoint(
    config: &Config,
    name: &str,
    function: &FunctionConfiguration,
    function_url: &str,
) -> Endpoint {
    let (url, source) = config.public_url(name, function_url);
    let mut meta = vec![
        ("function-arn".to_string(), function.function_arn.clone()),
        ("region".to_string(), config.region.clone()),
    ];
    if let Some(arch) = function.architectures.first() {
        meta.push(("architecture".to_string(), arch.clone()));
    }
    if let Some(memory) = function.memory_size {
        meta.push(("memory-mb".to_string(), memory.to_string()));
    }
    if let Some(sha) = &function.code_sha256 {
        meta.push(("code-sha256".to_string(), sha.clone()));
    }
    if let Some(ms) = function
        .last_modified
        .as_deref()
        .and_then(last_modified_unix_ms)
    {
        // Read by `stellar cleanup --older-than`: Lambda reports the last change, so the age
        // counts from the last update (never older than the truth).
        meta.push(("created-unix-ms".to_string(), ms.to_string()));
    }
    meta.push(("url-source".to_string(), source.to_string()));
    Endpoint {
        id: name.to_string(),
        url,
        protocol: Protocol::Http,
        meta,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn last_modified_parses_lambdas_shapes() {
        // The example of the Lambda API reference (GetFunction response).
        assert_eq!(
            last_modified_unix_ms("2019-08-14T22:26:11.234+0000"),
            Some(1_565_821_571_234)
        );
        assert_eq!(
            last_modified_unix_ms("2019-08-14T22:26:11Z"),
            Some(1_565_821_571_000)
        );
        assert_eq!(
            last_modified_unix_ms("2019-08-15T00:26:11.234+02:00"),
            Some(1_565_821_571_234)
        );
        assert_eq!(
            last_modified_unix_ms("1970-01-01T00:00:00.000+0000"),
            Some(0)
        );
        for bad in [
            "",
            "2019-08-14",
            "2019-13-14T00:00:00Z",
            "2019-08-14T22:26:11",
            "x-y-zT1:2:3Z",
        ] {
            assert_eq!(last_modified_unix_ms(bad), None, "{bad}");
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn spec() -> FunctionSpec {
        FunctionSpec {
            name: "st-run1-f0".to_string(),
            memory_mb: 512,
            timeout_s: 30,
            arch: Arch::Arm64,
            env: pairs(&[("B", "2"), ("A", "1")]),
            tags: pairs(&[("stellar-run", "r1")]),
            instance_concurrency: 0,
            options: vec![],
            artifact: None,
        }
    }

    /// prefix + base64 + suffix must be one valid JSON document.
    fn assemble(prefix: &[u8], b64: &str, suffix: &[u8]) -> Value {
        let mut doc = prefix.to_vec();
        doc.extend_from_slice(b64.as_bytes());
        doc.extend_from_slice(suffix);
        serde_json::from_slice(&doc).unwrap()
    }

    #[test]
    fn create_function_body() {
        let spec = spec();
        let create = CreateFunction::new(&spec, "arn:aws:iam::123456789012:role/r");
        let (prefix, suffix) = create.prefix_suffix().unwrap();
        assert_eq!(
            assemble(&prefix, "UEsDBA==", &suffix),
            json!({
                "FunctionName": "st-run1-f0",
                "Runtime": "provided.al2023",
                "Handler": "bootstrap",
                "Role": "arn:aws:iam::123456789012:role/r",
                "PackageType": "Zip",
                "MemorySize": 512,
                "Timeout": 30,
                "Architectures": ["arm64"],
                "Environment": {"Variables": {"A": "1", "B": "2"}},
                "Tags": {"stellar-run": "r1"},
                "Code": {"ZipFile": "UEsDBA=="},
            })
        );
        assert!(prefix.ends_with(br#","Code":{"ZipFile":""#));

        let mut bare = spec;
        bare.tags.clear();
        bare.env.clear();
        bare.arch = Arch::X8664;
        let create = CreateFunction::new(&bare, "arn:aws:iam::123456789012:role/r");
        let (prefix, suffix) = create.prefix_suffix().unwrap();
        let doc = assemble(&prefix, "", &suffix);
        assert_eq!(doc.get("Tags"), None);
        assert_eq!(doc["Environment"], json!({"Variables": {}}));
        assert_eq!(doc["Architectures"], json!(["x86_64"]));
    }

    #[test]
    fn update_bodies() {
        let code = UpdateFunctionCode {
            architectures: [architecture(Arch::X8664)],
        };
        let (prefix, suffix) = code.prefix_suffix().unwrap();
        assert_eq!(
            String::from_utf8(prefix.clone()).unwrap(),
            r#"{"Architectures":["x86_64"],"ZipFile":""#
        );
        assert_eq!(
            assemble(&prefix, "QUJD", &suffix),
            json!({"Architectures": ["x86_64"], "ZipFile": "QUJD"})
        );
        let spec = spec();
        assert_eq!(
            serde_json::to_value(UpdateFunctionConfiguration::new(&spec)).unwrap(),
            json!({"MemorySize": 512, "Timeout": 30,
                   "Environment": {"Variables": {"A": "1", "B": "2"}}})
        );
        #[derive(Serialize)]
        struct Empty {}
        assert_eq!(open_object(&Empty {}, b"\"K\":").unwrap(), b"{\"K\":");
    }

    #[test]
    fn url_and_permission_bodies() {
        assert_eq!(
            create_url_config(),
            json!({"AuthType": "NONE", "InvokeMode": "BUFFERED"})
        );
        let [public, invoke] = permissions();
        assert_eq!(public["StatementId"], "stellar-url-public");
        assert_eq!(public["Action"], "lambda:InvokeFunctionUrl");
        assert_eq!(public["FunctionUrlAuthType"], "NONE");
        assert_eq!(invoke["StatementId"], "stellar-url-invoke");
        assert_eq!(invoke["Action"], "lambda:InvokeFunction");
        assert_eq!(invoke["InvokedViaFunctionUrl"], true);
        assert_eq!(invoke["Principal"], "*");
    }

    #[test]
    fn spec_checks() {
        assert_eq!(check_spec("st-a_1", &spec()), Ok(()));
        let invalid = |s: FunctionSpec| match check_spec(&s.name.clone(), &s) {
            Err(ProviderError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        let mut s = spec();
        s.memory_mb = 64;
        assert!(invalid(s).contains("memory 64 MB"));
        let mut s = spec();
        s.timeout_s = 901;
        assert!(invalid(s).contains("timeout 901 s"));
        let mut s = spec();
        s.instance_concurrency = 4;
        assert!(invalid(s).contains("one request at a time"));
        let mut s = spec();
        s.options = pairs(&[("keep-alive-ms", "1")]);
        assert!(invalid(s).contains("unknown option `keep-alive-ms`"));
        for bad in ["", "a/b", "a.b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(check_zip_size(MAX_ZIP_BYTES), Ok(()));
        assert!(matches!(
            check_zip_size(MAX_ZIP_BYTES + 1),
            Err(ProviderError::Invalid(m)) if m.contains("S3")
        ));
    }

    #[test]
    fn responses_parse_and_become_endpoints() {
        let got: GetFunction = serde_json::from_value(json!({
            "Configuration": {
                "FunctionName": "st-f", "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:st-f",
                "MemorySize": 256, "CodeSha256": "abc=", "CodeSize": 1234,
                "Architectures": ["arm64"], "State": "Active", "LastUpdateStatus": "Successful",
                "Runtime": "provided.al2023", "Unknown": {"x": 1}
            },
            "Code": {"Location": "https://x"}
        }))
        .unwrap();
        let f = got.configuration;
        assert_eq!(f.state.as_deref(), Some("Active"));
        assert_eq!(f.code_size, Some(1234));

        let config = crate::config::Config::from_settings(
            pairs(&[
                ("region", "us-east-1"),
                ("role-arn", "arn:aws:iam::123456789012:role/r"),
            ]),
            crate::config::aws_credential(&[("access-key-id", "a"), ("secret-access-key", "s")]),
        )
        .unwrap();
        let e = endpoint(
            &config,
            "st-f",
            &f,
            "https://u.lambda-url.us-east-1.on.aws/",
        );
        assert_eq!(e.id, "st-f");
        assert_eq!(e.url, "https://u.lambda-url.us-east-1.on.aws/");
        assert_eq!(e.protocol, Protocol::Http);
        assert_eq!(
            e.meta,
            pairs(&[
                (
                    "function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:st-f"
                ),
                ("region", "us-east-1"),
                ("architecture", "arm64"),
                ("memory-mb", "256"),
                ("code-sha256", "abc="),
                ("url-source", "function-url"),
            ])
        );

        let list: ListFunctions = serde_json::from_value(json!({
            "Functions": [{"FunctionName": "st-a"}, {"FunctionName": "other"}],
            "NextMarker": "m=="
        }))
        .unwrap();
        assert_eq!(list.functions.len(), 2);
        assert_eq!(list.next_marker.as_deref(), Some("m=="));
        let empty: ListFunctions = serde_json::from_value(json!({})).unwrap();
        assert!(empty.functions.is_empty() && empty.next_marker.is_none());
    }
}
