//! Known-answer test: assertions signed by this crate must equal, byte for byte, the ones
//! Google's own Python library (`google-auth`) signs for the same throwaway key, claims and
//! `iat`. RS256 (PKCS#1 v1.5) is deterministic, so equal bytes mean the same header, claims,
//! encoding and signature. The keys are generated fresh by `scripts/google_auth_assertion.py`
//! with PyPI `cryptography`; nothing secret is committed. Needs `python3` with `google-auth`
//! and `cryptography` (the README's test command installs them).

use std::process::Command;

use stellar_gcp_auth::{ServiceAccountKey, assertion};

#[test]
fn assertions_match_google_auth_byte_for_byte() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/google_auth_assertion.py"
    );
    let output = Command::new("python3")
        .arg(script)
        .output()
        .expect("run python3 (needs google-auth and cryptography from PyPI)");
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8 output");
    let mut cases = 0;
    for line in text.lines() {
        let case: serde_json::Value = serde_json::from_str(line).expect("one JSON case per line");
        let key = ServiceAccountKey::parse(case["key_json"].as_str().unwrap()).expect("key parses");
        let iat = case["iat"].as_u64().unwrap();
        let scope = case["scope"].as_str().unwrap();
        let expected = case["assertion"].as_str().unwrap();
        let ours = assertion(&key, scope, iat);
        assert_eq!(ours, expected, "case {cases} ({})", key.client_email);
        // A different iat must change the token (the comparison can fail).
        assert_ne!(assertion(&key, scope, iat + 1), expected);
        cases += 1;
    }
    assert_eq!(cases, 2, "the oracle printed {cases} cases");
}
