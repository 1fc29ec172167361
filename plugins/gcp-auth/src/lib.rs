//! Google service-account authentication for stellar's guest adapters, in pure Rust so it
//! builds for wasm32-wasip2: key file JSON → RS256-signed JWT assertion → OAuth access token.
//!
//! This is the flow Google's own libraries run for a service-account key
//! (`google.oauth2.service_account.Credentials` in PyPI `google-auth`): a JWT whose claims are
//! `iat`, `exp` (one hour later), `iss` (the key's `client_email`), `aud` (Google's token
//! endpoint) and `scope`, signed with the key's RSA private key (RSASSA-PKCS1-v1_5 with
//! SHA-256), is posted to `token_uri` as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`;
//! the answer holds an `access_token`. The assertion is written byte for byte as google-auth
//! writes it (same header and claim order, Python's JSON spacing), which the known-answer test
//! in `tests/google_auth_kat.rs` checks against google-auth itself.
//!
//! - [`key`]: the key file, parsed and checked (clear errors naming the field);
//! - [`jwt`]: the signed assertion;
//! - [`token`]: the token request and its answer, and [`token::fetch`] over wasi:http.

pub mod jwt;
pub mod key;
pub mod token;

pub use jwt::{ASSERTION_LIFETIME_S, assertion};
pub use key::{KeyError, ServiceAccountKey};
pub use token::{AccessToken, TokenError};

/// The OAuth scope that covers Cloud Run and Artifact Registry.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
