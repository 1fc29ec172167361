//! Request parsing: what an invocation asks the measurement function to do.
//!
//! STeLLAR's client sends its parameters as a query string (`IncrementLimit=..&PayloadLengthBytes=..
//! &DataTransferChainIDs=[]`); Lambda events carry them as JSON. Both become one [`Invocation`],
//! so every entry point shares the same keys, defaults and error messages.

use crate::{Error, Result};
use serde_json::Value;

/// The parameter names (case-sensitive, as in STeLLAR).
pub mod keys {
    /// STeLLAR's busy-loop count (u64).
    pub const INCREMENT_LIMIT: &str = "IncrementLimit";
    /// Time-based busy spin in milliseconds (f64 >= 0).
    pub const SPIN_MS: &str = "SpinMs";
    /// Payload length in bytes (u64), recorded.
    pub const PAYLOAD_LENGTH_BYTES: &str = "PayloadLengthBytes";
    /// STeLLAR's chain ids, e.g. `[]` or `[a b]`, recorded.
    pub const DATA_TRANSFER_CHAIN_IDS: &str = "DataTransferChainIDs";
    /// The caller's request id, echoed back.
    pub const REQUEST_ID: &str = "RequestID";
}

const EXPECTED_U64: &str = "an unsigned integer";
const EXPECTED_MS: &str = "a finite number >= 0 (milliseconds)";
const EXPECTED_STRING: &str = "a string";

/// One parsed request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    /// `IncrementLimit`: how many busy-loop iterations to run (0 if absent).
    pub increment_limit: u64,
    /// `SpinMs`: how long to busy-spin, in milliseconds (0 if absent). Always finite and >= 0.
    pub spin_ms: f64,
    /// `PayloadLengthBytes` (0 if absent).
    pub payload_length_bytes: u64,
    /// `DataTransferChainIDs` as received, e.g. `[]` or `[a b]`.
    pub data_transfer_chain_ids: Option<String>,
    /// `RequestID`, if the caller sent one.
    pub request_id: Option<String>,
}

impl Invocation {
    /// Parses a URL query string (with or without a leading `?`). Keys and values are
    /// percent-decoded (`+` is a space); the first occurrence of a key wins; unknown keys are
    /// ignored.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the key if a known key has a malformed value.
    pub fn from_query(query: &str) -> Result<Self> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut inv = Self::default();
        let mut seen = Seen::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(raw_key);
            let value = percent_decode(raw_value);
            match key.as_str() {
                keys::INCREMENT_LIMIT if !seen.increment_limit => {
                    seen.increment_limit = true;
                    inv.increment_limit = parse_u64(keys::INCREMENT_LIMIT, &value)?;
                }
                keys::SPIN_MS if !seen.spin_ms => {
                    seen.spin_ms = true;
                    inv.spin_ms = parse_ms(&value)?;
                }
                keys::PAYLOAD_LENGTH_BYTES if !seen.payload_length_bytes => {
                    seen.payload_length_bytes = true;
                    inv.payload_length_bytes = parse_u64(keys::PAYLOAD_LENGTH_BYTES, &value)?;
                }
                keys::DATA_TRANSFER_CHAIN_IDS if inv.data_transfer_chain_ids.is_none() => {
                    inv.data_transfer_chain_ids = Some(value);
                }
                keys::REQUEST_ID if inv.request_id.is_none() => inv.request_id = Some(value),
                _ => {}
            }
        }
        Ok(inv)
    }

    /// Parses a JSON object with the same keys as the query string (for the Lambda entry point).
    /// Numbers may be JSON numbers or strings holding numbers (API Gateway passes strings);
    /// `null` counts as absent; unknown keys are ignored.
    ///
    /// # Errors
    /// [`Error::NotAnObject`] if `value` is not an object; [`Error::InvalidParameter`] naming
    /// the key if a known key has a malformed value.
    pub fn from_json_value(value: &Value) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(Error::NotAnObject {
                found: json_type(value),
            });
        };
        let get = |key: &str| map.get(key).filter(|v| !v.is_null());
        let mut inv = Self::default();
        if let Some(v) = get(keys::INCREMENT_LIMIT) {
            inv.increment_limit = json_u64(keys::INCREMENT_LIMIT, v)?;
        }
        if let Some(v) = get(keys::SPIN_MS) {
            inv.spin_ms = match v {
                Value::String(s) => parse_ms(s)?,
                Value::Number(n) => check_ms(n.as_f64(), || v.to_string())?,
                other => return Err(invalid(keys::SPIN_MS, EXPECTED_MS, other.to_string())),
            };
        }
        if let Some(v) = get(keys::PAYLOAD_LENGTH_BYTES) {
            inv.payload_length_bytes = json_u64(keys::PAYLOAD_LENGTH_BYTES, v)?;
        }
        if let Some(v) = get(keys::DATA_TRANSFER_CHAIN_IDS) {
            inv.data_transfer_chain_ids = Some(json_string(keys::DATA_TRANSFER_CHAIN_IDS, v)?);
        }
        if let Some(v) = get(keys::REQUEST_ID) {
            inv.request_id = Some(json_string(keys::REQUEST_ID, v)?);
        }
        Ok(inv)
    }

    /// The ids in `DataTransferChainIDs` (`"[a b]"` -> `["a", "b"]`; absent or `"[]"` -> empty).
    #[must_use]
    pub fn chain_ids(&self) -> Vec<&str> {
        self.data_transfer_chain_ids
            .as_deref()
            .map_or_else(Vec::new, |s| {
                let s = s.trim();
                let s = s.strip_prefix('[').unwrap_or(s);
                let s = s.strip_suffix(']').unwrap_or(s);
                s.split_whitespace().collect()
            })
    }
}

/// Which first-occurrence-wins keys have been seen (the `Option` keys track this themselves).
#[derive(Default)]
struct Seen {
    increment_limit: bool,
    spin_ms: bool,
    payload_length_bytes: bool,
}

fn invalid(key: &'static str, expected: &'static str, value: String) -> Error {
    Error::InvalidParameter {
        key,
        expected,
        value,
    }
}

fn parse_u64(key: &'static str, value: &str) -> Result<u64> {
    value
        .parse()
        .map_err(|_| invalid(key, EXPECTED_U64, value.to_owned()))
}

fn parse_ms(value: &str) -> Result<f64> {
    check_ms(value.parse().ok(), || value.to_owned())
}

/// Accepts finite, non-negative milliseconds that fit a `Duration`.
fn check_ms(ms: Option<f64>, shown: impl FnOnce() -> String) -> Result<f64> {
    match ms {
        Some(ms)
            if ms.is_finite()
                && ms >= 0.0
                && std::time::Duration::try_from_secs_f64(ms / 1000.0).is_ok() =>
        {
            Ok(ms)
        }
        _ => Err(invalid(keys::SPIN_MS, EXPECTED_MS, shown())),
    }
}

fn json_u64(key: &'static str, v: &Value) -> Result<u64> {
    match v {
        Value::String(s) => parse_u64(key, s),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| invalid(key, EXPECTED_U64, v.to_string())),
        other => Err(invalid(key, EXPECTED_U64, other.to_string())),
    }
}

fn json_string(key: &'static str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(invalid(key, EXPECTED_STRING, other.to_string())),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` is a byte; a malformed
/// escape is kept literally; invalid UTF-8 is replaced (lossy).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(decoded) = hex {
                    out.push(decoded);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_stellar_query() {
        let inv = Invocation::from_query(
            "IncrementLimit=1234&PayloadLengthBytes=1024&DataTransferChainIDs=[]&SpinMs=2.5&RequestID=r1",
        )
        .unwrap();
        assert_eq!(
            inv,
            Invocation {
                increment_limit: 1234,
                spin_ms: 2.5,
                payload_length_bytes: 1024,
                data_transfer_chain_ids: Some("[]".into()),
                request_id: Some("r1".into()),
            }
        );
        assert!(inv.chain_ids().is_empty());
    }

    #[test]
    fn empty_query_gives_defaults() {
        assert_eq!(Invocation::from_query("").unwrap(), Invocation::default());
        assert_eq!(Invocation::from_query("?").unwrap(), Invocation::default());
    }

    #[test]
    fn leading_question_mark_and_unknown_keys_are_ignored() {
        let inv =
            Invocation::from_query("?foo=bar&incrementlimit=x&IncrementLimit=7&&baz").unwrap();
        assert_eq!(inv.increment_limit, 7);
        assert_eq!(inv.spin_ms, 0.0);
    }

    #[test]
    fn percent_and_plus_decoding() {
        let inv = Invocation::from_query("DataTransferChainIDs=%5Ba+b%5D&RequestID=x%2Fy%zz%+5%4")
            .unwrap();
        assert_eq!(inv.data_transfer_chain_ids.as_deref(), Some("[a b]"));
        assert_eq!(inv.chain_ids(), vec!["a", "b"]);
        assert_eq!(inv.request_id.as_deref(), Some("x/y%zz% 5%4"));
    }

    #[test]
    fn first_occurrence_wins() {
        let inv =
            Invocation::from_query("IncrementLimit=1&IncrementLimit=2&RequestID=a&RequestID=b")
                .unwrap();
        assert_eq!(inv.increment_limit, 1);
        assert_eq!(inv.request_id.as_deref(), Some("a"));
    }

    #[test]
    fn bad_value_names_key_and_type() {
        for (query, key) in [
            ("IncrementLimit=abc", "IncrementLimit"),
            ("IncrementLimit=-1", "IncrementLimit"),
            ("IncrementLimit=", "IncrementLimit"),
            ("PayloadLengthBytes=1.5", "PayloadLengthBytes"),
            ("SpinMs=abc", "SpinMs"),
            ("SpinMs=-1", "SpinMs"),
            ("SpinMs=NaN", "SpinMs"),
            ("SpinMs=inf", "SpinMs"),
            ("SpinMs=1e300", "SpinMs"),
        ] {
            let err = Invocation::from_query(query).unwrap_err();
            let Error::InvalidParameter { key: k, .. } = &err else {
                panic!("{query}: unexpected error {err:?}");
            };
            assert_eq!(*k, key, "{query}");
            let msg = err.to_string();
            assert!(msg.contains(key), "{msg}");
            assert!(msg.contains("expected"), "{msg}");
        }
        let msg = Invocation::from_query("SpinMs=abc")
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "parameter `SpinMs`: expected a finite number >= 0 (milliseconds), got \"abc\""
        );
    }

    #[test]
    fn parses_json_numbers_and_strings() {
        let inv = Invocation::from_json_value(&json!({
            "IncrementLimit": 10,
            "SpinMs": "1.5",
            "PayloadLengthBytes": "64",
            "DataTransferChainIDs": "[x]",
            "RequestID": "abc",
            "Other": [1, 2],
        }))
        .unwrap();
        assert_eq!(
            inv,
            Invocation {
                increment_limit: 10,
                spin_ms: 1.5,
                payload_length_bytes: 64,
                data_transfer_chain_ids: Some("[x]".into()),
                request_id: Some("abc".into()),
            }
        );
        let inv =
            Invocation::from_json_value(&json!({"SpinMs": 3, "IncrementLimit": null})).unwrap();
        assert_eq!(inv.spin_ms, 3.0);
        assert_eq!(inv.increment_limit, 0);
    }

    #[test]
    fn json_errors_name_the_key() {
        for (value, key) in [
            (json!({"IncrementLimit": 1.5}), "IncrementLimit"),
            (json!({"IncrementLimit": -3}), "IncrementLimit"),
            (json!({"IncrementLimit": true}), "IncrementLimit"),
            (json!({"SpinMs": -0.5}), "SpinMs"),
            (json!({"SpinMs": [1]}), "SpinMs"),
            (json!({"PayloadLengthBytes": "x"}), "PayloadLengthBytes"),
            (json!({"RequestID": 5}), "RequestID"),
            (
                json!({"DataTransferChainIDs": ["a"]}),
                "DataTransferChainIDs",
            ),
        ] {
            match Invocation::from_json_value(&value) {
                Err(Error::InvalidParameter { key: k, .. }) => assert_eq!(k, key, "{value}"),
                other => panic!("{value}: unexpected {other:?}"),
            }
        }
        assert!(matches!(
            Invocation::from_json_value(&json!([1])),
            Err(Error::NotAnObject { found: "an array" })
        ));
    }
}
