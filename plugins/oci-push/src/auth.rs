//! `WWW-Authenticate` challenges (RFC 7235 syntax) and the answers a registry expects: Basic
//! credentials, or a bearer token fetched from the challenge's realm (the distribution token
//! protocol, `docs/spec/auth/token.md` of distribution/distribution).

use std::collections::BTreeMap;

use stellar_guest_sdk::base64;

/// One challenge: its scheme (lower case) and parameters (names lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) scheme: String,
    pub(crate) params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` value, which may hold several challenges
/// (`Bearer realm="https://x/token",service="x",scope="repository:a:pull" , Basic realm="r"`).
/// Unparseable input yields what could be read before it.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        // A token: either a new scheme (followed by space or end) or a parameter name.
        let name_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let after = rest[name_end..].trim_start();
        if name.is_empty() {
            // A stray `=` cannot be read further; a separator is skipped.
            let Some(first) = rest.chars().next().filter(|&c| c != '=') else {
                break;
            };
            rest = &rest[first.len_utf8()..];
            continue;
        }
        if let Some(value_part) = after.strip_prefix('=') {
            // A parameter of the current challenge.
            let value_part = value_part.trim_start();
            let (value, remaining) = if let Some(quoted) = value_part.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            } else {
                let end = value_part.find(',').unwrap_or(value_part.len());
                (value_part[..end].trim().to_string(), &value_part[end..])
            };
            match out.last_mut() {
                Some(challenge) => {
                    challenge.params.insert(name.to_ascii_lowercase(), value);
                }
                None => break,
            }
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        } else {
            out.push(Challenge {
                scheme: name.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
            rest = after.trim_start_matches(',').trim_start();
        }
    }
    out
}

/// `Basic <base64(user:password)>`.
pub(crate) fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::encode(format!("{user}:{password}").as_bytes())
    )
}

/// The token in a token endpoint's JSON answer (`token`, or OAuth's `access_token`).
pub(crate) fn token_from_response(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["token", "access_token"]
        .iter()
        .find_map(|k| json.get(k).and_then(|v| v.as_str()))
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_with_commas_inside_quotes() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:samalba/my-app:pull,push");
    }

    #[test]
    fn basic_and_several_challenges() {
        let c = parse_challenges(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            c,
            vec![Challenge {
                scheme: "basic".into(),
                params: [("realm".to_string(), "Registry Realm".to_string())].into()
            }]
        );
        let c =
            parse_challenges(r#"Bearer realm="https://r/t", error="invalid_token", Basic realm=x"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].params["error"], "invalid_token");
        assert_eq!(c[1].scheme, "basic");
        assert_eq!(c[1].params["realm"], "x");
        let c = parse_challenges(r#"Bearer realm="a\"b""#);
        assert_eq!(c[0].params["realm"], "a\"b");
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        for h in [
            "",
            "=",
            "==,,",
            "Bearer realm=\"unterminated",
            ",,, Bearer",
            "realm=x",
            "Bearer ,=x",
        ] {
            let _ = parse_challenges(h);
        }
    }

    #[test]
    fn tokens_and_basic() {
        assert_eq!(
            basic("oauth2accesstoken", "ya29.x"),
            "Basic b2F1dGgyYWNjZXNzdG9rZW46eWEyOS54"
        );
        assert_eq!(
            token_from_response(br#"{"token":"abc","expires_in":300}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token_from_response(br#"{"access_token":"xyz"}"#).as_deref(),
            Some("xyz")
        );
        assert_eq!(token_from_response(br#"{"token":"a\r\nb"}"#), None);
        assert_eq!(token_from_response(b"nope"), None);
    }
}
