//! STeLLAR's `chainfunction.proto` messages as hand-written prost derives.
//!
//! Why hand-written: building the function (and the host, which decodes replies) must not need
//! `protoc`. The schema is `measurement-fn/proto/chainfunction.proto`, STeLLAR's file
//! (vhive-serverless/STeLLAR, `src/setup/deployment/raw-code/proto/chainfunction.proto`) plus
//! two stellar fields with tag 100; the tags and types below must match it field for field
//! (the unit tests pin the wire bytes, and the end-to-end test calls the function with stubs
//! that grpcio-tools generates from that file).

/// The gRPC method path: package `proto_gen`, service `ProducerConsumer`, rpc `InvokeNext`.
pub const INVOKE_NEXT_PATH: &str = "/proto_gen.ProducerConsumer/InvokeNext";

/// STeLLAR's `InvokeChainRequest` (fields 1-8) plus `stellarQuery` (100).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct InvokeChainRequest {
    /// STeLLAR's busy-loop count, as a decimal string.
    #[prost(string, tag = "1")]
    pub increment_limit: String,
    /// STeLLAR's chain ids, Go `%v` form (`[]`, `[a b]`).
    #[prost(string, tag = "2")]
    pub data_transfer_chain_ids: String,
    /// Payload length, as a decimal string.
    #[prost(string, tag = "3")]
    pub payload_length_bytes: String,
    /// Inline payload of a chain (recorded length only).
    #[prost(string, tag = "4")]
    pub transfer_payload: String,
    /// Timestamps of earlier functions in a chain.
    #[prost(string, tag = "5")]
    pub timestamp_chain: String,
    /// Storage-transfer bucket (not used by stellar's function).
    #[prost(string, tag = "6")]
    pub bucket: String,
    /// Storage-transfer key (not used by stellar's function).
    #[prost(string, tag = "7")]
    pub key: String,
    /// Storage transfer requested (not used by stellar's function).
    #[prost(bool, tag = "8")]
    pub storage_transfer: bool,
    /// stellar: the HTTP flavour's query string (`SpinMs=5&RequestID=..`); its keys win.
    #[prost(string, tag = "100")]
    pub stellar_query: String,
}

/// STeLLAR's `InvokeChainReply` (field 1) plus `stellarReply` (100).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct InvokeChainReply {
    /// STeLLAR's form: Go `fmt.Sprintf("%v", chain)`, e.g. `[1700000000000000000]`.
    #[prost(string, tag = "1")]
    pub timestamp_chain: String,
    /// stellar: the JSON [`crate::MeasurementResponse`], as the HTTP flavour's body.
    #[prost(string, tag = "100")]
    pub stellar_reply: String,
}

impl InvokeChainRequest {
    /// The query string this request stands for: `stellar_query` first (the first occurrence
    /// of a key wins in [`crate::Invocation::from_query`]), then STeLLAR's non-empty fields.
    #[must_use]
    pub fn to_query(&self) -> String {
        let mut query = self.stellar_query.trim_start_matches('?').to_owned();
        let stellar_fields = [
            (crate::request::keys::INCREMENT_LIMIT, &self.increment_limit),
            (
                crate::request::keys::PAYLOAD_LENGTH_BYTES,
                &self.payload_length_bytes,
            ),
            (
                crate::request::keys::DATA_TRANSFER_CHAIN_IDS,
                &self.data_transfer_chain_ids,
            ),
        ];
        for (key, value) in stellar_fields {
            if value.is_empty() {
                continue;
            }
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(key);
            query.push('=');
            query.push_str(&percent_encode(value));
        }
        query
    }
}

/// STeLLAR's Go `%v` form of a string list: `[a b c]`.
#[must_use]
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn wire_bytes_match_the_proto_tags() {
        let req = InvokeChainRequest {
            increment_limit: "7".into(),
            storage_transfer: true,
            stellar_query: "SpinMs=1".into(),
            ..Default::default()
        };
        // field 1 (len-delimited): 0x0a; field 8 (varint): 0x40; field 100 (len): 0xa2 0x06.
        let mut expected = vec![0x0a, 1, b'7', 0x40, 1, 0xa2, 0x06, 8];
        expected.extend_from_slice(b"SpinMs=1");
        assert_eq!(req.encode_to_vec(), expected);
        let reply = InvokeChainReply {
            timestamp_chain: "[1]".into(),
            stellar_reply: "{}".into(),
        };
        assert_eq!(
            reply.encode_to_vec(),
            vec![0x0a, 3, b'[', b'1', b']', 0xa2, 0x06, 2, b'{', b'}']
        );
        assert_eq!(
            InvokeChainReply::decode(&reply.encode_to_vec()[..]).unwrap(),
            reply
        );
    }

    #[test]
    fn query_puts_stellar_keys_first_and_encodes_stellar_fields() {
        let req = InvokeChainRequest {
            increment_limit: "10".into(),
            data_transfer_chain_ids: "[a b]".into(),
            payload_length_bytes: String::new(),
            stellar_query: "?IncrementLimit=3&SpinMs=2".into(),
            ..Default::default()
        };
        let query = req.to_query();
        assert_eq!(
            query,
            "IncrementLimit=3&SpinMs=2&IncrementLimit=10&DataTransferChainIDs=%5Ba%20b%5D"
        );
        let inv = crate::Invocation::from_query(&query).unwrap();
        assert_eq!(inv.increment_limit, 3);
        assert_eq!(inv.chain_ids(), vec!["a", "b"]);
    }

    #[test]
    fn go_list_form() {
        assert_eq!(go_list(&[]), "[]");
        assert_eq!(go_list(&["1".into(), "2".into()]), "[1 2]");
    }
}
