//! What an Azure Functions custom handler needs beyond plain HTTP: the per-instance identity
//! and the non-proxied invocation envelope.
//!
//! - **Instance id.** On Flex Consumption `WEBSITE_INSTANCE_ID` names the site, not the
//!   instance; each instance is a container whose name the platform puts in `CONTAINER_NAME`
//!   (and `WEBSITE_POD_NAME`). When the process runs as a custom handler
//!   (`FUNCTIONS_CUSTOMHANDLER_PORT` set), [`instance_id_from_env`] uses the first of those
//!   that is set, so instance ids match what Azure scales.
//! - **Envelope.** With `enableForwardingHttpRequest` the host forwards the original request
//!   (`/api/<fn>?query`), which the plain server already answers. Without it the host POSTs
//!   `{"Data":{"req":{"Url","Method","Query","Headers",...}},"Metadata":{...}}` to `/<fn>` and
//!   expects `{"Outputs":{"res":{"statusCode","body","headers"}},"Logs":[],"ReturnValue":null}`
//!   (MicrosoftDocs/azure-docs `articles/azure-functions/functions-custom-handlers.md`,
//!   "Request payload" / "Response payload"): [`envelope_query`] and [`envelope_reply`].

use serde_json::{Map, Value};

/// Set by the Functions host for a custom handler: the port to listen on.
pub const CUSTOM_HANDLER_PORT_ENV: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
/// Per-instance names on Flex Consumption, in priority order.
pub const INSTANCE_ENV_VARS: [&str; 2] = ["CONTAINER_NAME", "WEBSITE_POD_NAME"];

/// The Azure instance name, when this process is a custom handler and the platform names its
/// instance.
pub fn instance_id_from_env(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |var: &str| {
        env(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    set(CUSTOM_HANDLER_PORT_ENV)?;
    INSTANCE_ENV_VARS.iter().find_map(|var| set(var))
}

/// The query string of a non-proxied invocation envelope, or `None` when `body` is not one.
/// Taken from `Data.<trigger>.Url` (everything after `?`), else built from
/// `Data.<trigger>.Query` (an object of strings, or of arrays whose first value counts).
pub fn envelope_query(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let data = json.get("Data")?.as_object()?;
    // The HTTP trigger's binding is named `req` in our function.json; accept any name.
    let req = data
        .get("req")
        .or_else(|| data.values().find(|v| v.get("Url").is_some()))?;
    if let Some(url) = req.get("Url").and_then(Value::as_str) {
        return Some(url.split_once('?').map(|(_, q)| q).unwrap_or("").to_owned());
    }
    let query = match req.get("Query") {
        Some(Value::String(text)) => serde_json::from_str::<Map<String, Value>>(text).ok(),
        Some(Value::Object(map)) => Some(map.clone()),
        _ => None,
    }
    .unwrap_or_default();
    let pairs: Vec<String> = query
        .iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::Array(list) => list.first()?.as_str()?,
                other => other.as_str()?,
            };
            Some(format!("{}={}", encode(k), encode(v)))
        })
        .collect();
    Some(pairs.join("&"))
}

/// The reply envelope for an HTTP output binding `res` carrying `status` and a JSON `body`.
pub fn envelope_reply(status: u16, body: &[u8]) -> Vec<u8> {
    serde_json::json!({
        "Outputs": {"res": {
            "statusCode": status,
            "body": String::from_utf8_lossy(body),
            "headers": {"Content-Type": "application/json"}
        }},
        "Logs": [],
        "ReturnValue": null
    })
    .to_string()
    .into_bytes()
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_env::env_of;

    #[test]
    fn instance_is_the_container_only_under_a_custom_handler() {
        let flex = [
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "33001"),
            ("WEBSITE_INSTANCE_ID", "site-wide-id"),
            ("WEBSITE_POD_NAME", "pod-b"),
            ("CONTAINER_NAME", "container-a"),
        ];
        assert_eq!(
            instance_id_from_env(env_of(&flex)).as_deref(),
            Some("container-a")
        );
        assert_eq!(
            instance_id_from_env(env_of(&flex[..3])).as_deref(),
            Some("pod-b")
        );
        // WEBSITE_INSTANCE_ID alone is not per instance on Flex: a random id is better.
        assert_eq!(instance_id_from_env(env_of(&flex[..2])), None);
        // Elsewhere (Kubernetes sets no such variable, but be sure) the names are ignored.
        assert_eq!(
            instance_id_from_env(env_of(&[("CONTAINER_NAME", "x"), ("PORT", "8080")])),
            None
        );
    }

    #[test]
    fn envelope_query_from_the_url_or_the_query_object() {
        let with_url = br#"{"Data":{"req":{"Url":"http://localhost:7071/api/measure?SpinMs=5&RequestID=a%20b","Method":"GET","Query":{"SpinMs":"5"},"Headers":{}}},"Metadata":{}}"#;
        assert_eq!(
            envelope_query(with_url).as_deref(),
            Some("SpinMs=5&RequestID=a%20b")
        );
        let query_only =
            br#"{"Data":{"req":{"Method":"GET","Query":{"SpinMs":["7"],"RequestID":"x y"}}},"Metadata":{}}"#;
        let q = envelope_query(query_only).unwrap();
        assert!(
            q.contains("SpinMs=7") && q.contains("RequestID=x%20y"),
            "{q}"
        );
        let stringly = br#"{"Data":{"req":{"Query":"{\"IncrementLimit\":\"3\"}"}},"Metadata":{}}"#;
        assert_eq!(
            envelope_query(stringly).as_deref(),
            Some("IncrementLimit=3")
        );
        assert_eq!(envelope_query(b"not json"), None);
        assert_eq!(envelope_query(br#"{"SpinMs":1}"#), None);
    }

    #[test]
    fn reply_wraps_status_and_body_in_outputs_res() {
        let reply: Value =
            serde_json::from_slice(&envelope_reply(400, br#"{"error":"x"}"#)).unwrap();
        assert_eq!(reply["Outputs"]["res"]["statusCode"], 400);
        assert_eq!(reply["Outputs"]["res"]["body"], r#"{"error":"x"}"#);
        assert_eq!(reply["ReturnValue"], Value::Null);
        assert_eq!(reply["Logs"], serde_json::json!([]));
    }
}
