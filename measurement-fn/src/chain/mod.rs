//! Data-transfer chains: STeLLAR's producer-consumer experiments (IISWC'21 §VI).
//!
//! Why: a chain of N functions passes one payload from function to function, and the time a
//! hop takes is what the experiment measures. Each function learns its place from its
//! environment, set when stellar provisions the chain (never from the request, so a stranger
//! cannot make a deployed function call arbitrary URLs):
//!
//! | variable | meaning |
//! | --- | --- |
//! | [`HOP_ENV`] | this function's position, 0 = the producer the driver calls |
//! | [`LENGTH_ENV`] | N, the chain length |
//! | [`NEXT_URL_ENV`] | the successor's URL (absent on the last function) |
//! | [`TRANSFER_ENV`] | `inline` (HTTP body) or a storage backend, see [`Transfer`] |
//!
//! **Protocol.** The producer gets the driver's ordinary request (`PayloadLengthBytes`,
//! `RequestID`, optional `PayloadSeed`), computes the SHA-256 of the seeded payload
//! ([`payload`]), then calls hop 1: `POST <next>?RequestID=..&PayloadLengthBytes=..&PayloadSeed=..
//! &ChainHop=1` with header [`SHA256_HEADER`] and, inline, the payload as a streamed body
//! (storage: the object key in `ObjectKey`, body empty). Every receiver reads the body (or
//! downloads the object) while hashing it, checks length and hash, and calls its successor the
//! same way with the payload regenerated from the seed (byte-identical to what it verified,
//! and never held whole in memory). Replies flow back: a receiver answers [`ChainReply`] with
//! its own [`ChainHop`] followed by its successors'; the producer answers the usual
//! [`crate::MeasurementResponse`] with `chain` = [`ChainReport`].
//!
//! **Clocks.** Every duration (`*_ns` without `unix`) is measured on the monotonic clock of
//! the function that reports it; `*_unix_ns` are wall-clock labels of that function's machine.
//! The host computes transfer times from durations (see the README's data-transfer section).
//!
//! A hop that cannot reach its successor (connection refused, timeout, non-200) answers `502`
//! with `{"error": "chain hop I -> J (..): .."}`; its callers pass that message on, so the
//! driver's error row names the failing hop.

pub mod payload;
#[cfg(feature = "http-server")]
pub mod serve;
#[cfg(feature = "http-server")]
mod storage;

use serde::{Deserialize, Serialize};

/// This function's position in the chain.
pub const HOP_ENV: &str = "STELLAR_CHAIN_HOP";
/// The chain length N.
pub const LENGTH_ENV: &str = "STELLAR_CHAIN_LENGTH";
/// The successor's URL.
pub const NEXT_URL_ENV: &str = "STELLAR_CHAIN_NEXT_URL";
/// How the payload travels: `inline`, `s3`, `azure-blob`.
pub const TRANSFER_ENV: &str = "STELLAR_CHAIN_TRANSFER";
/// Header carrying the payload's expected SHA-256 (hex) from sender to receiver.
pub const SHA256_HEADER: &str = "x-stellar-payload-sha256";

/// The storage variables of a storage-transfer chain member (set by the host from the user's
/// environment, never from the experiment file).
pub mod storage_env {
    /// Endpoint base URL (S3: path-style; Blob: the account's blob endpoint).
    pub const ENDPOINT: &str = "STELLAR_STORAGE_ENDPOINT";
    /// Bucket (S3) or container (Blob).
    pub const BUCKET: &str = "STELLAR_STORAGE_BUCKET";
    /// S3 signing region.
    pub const REGION: &str = "STELLAR_STORAGE_REGION";
    /// S3 access key id (the standard name, so on Lambda the role's credentials are used).
    pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// S3 secret key.
    pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// S3 session token (temporary credentials).
    pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// Blob storage account.
    pub const ACCOUNT: &str = "STELLAR_STORAGE_ACCOUNT";
    /// Blob account key (base64), for SharedKey.
    pub const ACCOUNT_KEY: &str = "STELLAR_STORAGE_KEY";
}

/// Query keys of hop requests.
pub mod keys {
    /// The receiving hop's position.
    pub const CHAIN_HOP: &str = "ChainHop";
    /// The payload's seed.
    pub const PAYLOAD_SEED: &str = "PayloadSeed";
    /// The storage object holding the payload (storage transfers).
    pub const OBJECT_KEY: &str = "ObjectKey";
    /// Tests only (with `STELLAR_FAULTS=1`): the hop whose sender finds its successor down.
    pub const FAULT_CHAIN_DOWN_HOP: &str = "FaultChainDownHop";
}

/// How a payload moves from one hop to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transfer {
    /// In the HTTP request body, streamed.
    Inline,
    /// Through an S3-API bucket (upload, pass the key, download, delete).
    S3,
    /// Through an Azure Blob container.
    AzureBlob,
}

impl Transfer {
    /// The name used in the environment and in results.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inline => "inline",
            Self::S3 => "s3",
            Self::AzureBlob => "azure-blob",
        }
    }

    /// Parses [`Transfer::as_str`].
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Inline, Self::S3, Self::AzureBlob]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A function's place in a chain, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// Position, 0 = producer.
    pub hop: u32,
    /// Chain length.
    pub length: u32,
    /// The successor, if any.
    pub next_url: Option<String>,
    /// How payloads travel.
    pub transfer: Transfer,
}

impl ChainConfig {
    /// Reads the chain variables; `Ok(None)` when [`HOP_ENV`] is unset (not in a chain).
    ///
    /// # Errors
    /// [`crate::Error::InvalidEnv`] naming the variable for a malformed value, or a successor
    /// missing on any but the last hop.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> crate::Result<Option<Self>> {
        let Some(hop) = env(HOP_ENV).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let number = |var: &'static str, value: String| {
            value
                .trim()
                .parse::<u32>()
                .map_err(|_| crate::Error::InvalidEnv {
                    var,
                    expected: "an unsigned integer",
                    value,
                })
        };
        let hop = number(HOP_ENV, hop)?;
        let length = number(LENGTH_ENV, env(LENGTH_ENV).unwrap_or_default())?;
        if length < 2 || hop >= length {
            return Err(crate::Error::InvalidEnv {
                var: LENGTH_ENV,
                expected: "a chain length of at least 2, greater than STELLAR_CHAIN_HOP",
                value: length.to_string(),
            });
        }
        let transfer_value = env(TRANSFER_ENV).unwrap_or_else(|| "inline".into());
        let transfer =
            Transfer::parse(transfer_value.trim()).ok_or_else(|| crate::Error::InvalidEnv {
                var: TRANSFER_ENV,
                expected: "one of inline, s3, azure-blob",
                value: transfer_value.clone(),
            })?;
        let next_url = env(NEXT_URL_ENV).filter(|v| !v.trim().is_empty());
        if next_url.is_none() && hop + 1 < length {
            return Err(crate::Error::InvalidEnv {
                var: NEXT_URL_ENV,
                expected: "the successor's URL (every hop but the last has one)",
                value: String::new(),
            });
        }
        Ok(Some(Self {
            hop,
            length,
            next_url,
            transfer,
        }))
    }
}

/// The receiving side of a hop, on the receiver's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiveSide {
    /// Receipt of the request (headers parsed), wall clock.
    pub start_unix_ns: u64,
    /// Last payload byte read, wall clock.
    pub end_unix_ns: u64,
    /// Monotonic duration from receipt to the last byte (inline: reading the body; storage:
    /// the whole download).
    pub duration_ns: u64,
    /// Bytes received.
    pub bytes: u64,
    /// SHA-256 (hex) of the received bytes.
    pub sha256: String,
    /// Length and hash equal what the sender announced.
    pub sha256_ok: bool,
    /// Storage only: monotonic duration of removing the object after the download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_ns: Option<u64>,
}

/// The sending side of a hop, on the sender's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendSide {
    /// Start of the transfer (connecting, or the upload request), wall clock.
    pub start_unix_ns: u64,
    /// Monotonic duration from the start until the last payload byte was handed to the
    /// connection (inline) or the upload was acknowledged (storage).
    pub payload_sent_ns: u64,
    /// Monotonic duration from the start until the successor's reply headers arrived (the
    /// successor's own work, `handled_ns`, is inside it).
    pub round_trip_ns: u64,
    /// The platform's cold-start time of the successor, when the front end reports one
    /// (the local gateway's `x-stellar-init-ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor_init_ms: Option<f64>,
}

/// One function's record in a chain reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainHop {
    /// Position, 0 = producer.
    pub hop: u32,
    /// The function's instance id.
    pub instance_id: String,
    /// Its machine's boot id: equal boot ids mean one kernel clock.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// First request this process served.
    pub cold: bool,
    /// Receipt of the request, wall clock.
    pub received_unix_ns: u64,
    /// Monotonic duration from receipt until the reply was ready (includes its successors).
    pub handled_ns: u64,
    /// How the payload arrived (hops >= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive: Option<ReceiveSide>,
    /// How it was passed on (every hop but the last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<SendSide>,
}

/// What a receiving hop answers: its own record, then its successors'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainReply {
    /// Hops in chain order, starting with the answering one.
    pub hops: Vec<ChainHop>,
}

/// The `chain` field of the producer's [`crate::MeasurementResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainReport {
    /// How the payload travelled.
    pub transfer: Transfer,
    /// Chain length N.
    pub length: u32,
    /// Payload length in bytes.
    pub payload_length_bytes: u64,
    /// The payload's seed.
    pub payload_seed: u64,
    /// SHA-256 (hex) of the payload the producer generated.
    pub payload_sha256: String,
    /// Every hop, in order (hop 0 first).
    pub hops: Vec<ChainHop>,
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_env::env_of;

    #[test]
    fn no_hop_variable_means_no_chain() {
        assert_eq!(ChainConfig::from_env(env_of(&[])).unwrap(), None);
    }

    #[test]
    fn reads_a_middle_hop() {
        let c = ChainConfig::from_env(env_of(&[
            (HOP_ENV, "1"),
            (LENGTH_ENV, "3"),
            (NEXT_URL_ENV, "http://127.0.0.1:9/f"),
            (TRANSFER_ENV, "s3"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.hop, 1);
        assert_eq!(c.transfer, Transfer::S3);
        assert_eq!(c.next_url.as_deref(), Some("http://127.0.0.1:9/f"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (pairs, var) in [
            (vec![(HOP_ENV, "x"), (LENGTH_ENV, "2")], HOP_ENV),
            (vec![(HOP_ENV, "0"), (LENGTH_ENV, "1")], LENGTH_ENV),
            (vec![(HOP_ENV, "2"), (LENGTH_ENV, "2")], LENGTH_ENV),
            (vec![(HOP_ENV, "0"), (LENGTH_ENV, "2")], NEXT_URL_ENV),
            (
                vec![
                    (HOP_ENV, "1"),
                    (LENGTH_ENV, "2"),
                    (TRANSFER_ENV, "carrier-pigeon"),
                ],
                TRANSFER_ENV,
            ),
        ] {
            let err = ChainConfig::from_env(env_of(&pairs)).unwrap_err();
            assert!(err.to_string().contains(var), "{err}");
        }
        // The last hop needs no successor.
        assert!(
            ChainConfig::from_env(env_of(&[(HOP_ENV, "1"), (LENGTH_ENV, "2")]))
                .unwrap()
                .is_some()
        );
    }
}
