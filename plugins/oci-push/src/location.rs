//! URLs a registry hands back: upload `Location` headers (relative or absolute) and token
//! realms. Both are hostile input: an absolute `Location` must stay on the registry's scheme
//! and host (the upload carries the registry's credentials), and a realm that would receive
//! the password must be https or the registry itself.

use stellar_guest_sdk::http::Scheme;

/// A URL split into what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) scheme: Scheme,
    /// `host[:port]`, lower case.
    pub(crate) authority: String,
    /// Starts with `/`.
    pub(crate) path_and_query: String,
}

/// Splits an absolute `http(s)://authority/path?query` URL (fragment dropped).
pub(crate) fn parse_absolute(url: &str) -> Result<Target, String> {
    if url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!("{url:?} holds control characters or spaces"));
    }
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(format!("{url:?} is not an http(s) URL"));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?} has no usable host"));
    }
    let path_and_query = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok(Target {
        scheme,
        authority: authority.to_ascii_lowercase(),
        path_and_query,
    })
}

/// Resolves an upload `Location` against the registry (`scheme`, `authority`) and the path
/// of the request that returned it. An absolute URL on another scheme or host is refused.
pub(crate) fn resolve_location(
    location: &str,
    scheme: Scheme,
    authority: &str,
    request_path: &str,
) -> Result<String, String> {
    let location = location.trim();
    if location.is_empty() {
        return Err("an empty Location header".to_string());
    }
    if location.chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!(
            "Location {location:?} holds control characters or spaces"
        ));
    }
    if location.starts_with("//") {
        return Err(format!(
            "Location {location:?} is scheme-relative (another host)"
        ));
    }
    if location.contains("://") {
        let target = parse_absolute(location).map_err(|e| format!("Location {e}"))?;
        if target.scheme != scheme || !target.authority.eq_ignore_ascii_case(authority) {
            return Err(format!(
                "Location {location:?} points away from the registry ({}://{authority}); not followed",
                scheme.as_str()
            ));
        }
        return Ok(target.path_and_query);
    }
    let location = location.split('#').next().unwrap_or_default();
    if location.starts_with('/') {
        return Ok(location.to_string());
    }
    // Relative path: against the directory of the request's path.
    let base = request_path.split('?').next().unwrap_or("/");
    let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    Ok(format!("{dir}{location}"))
}

/// `location` with `name=value` (value percent-encoded) appended to its query.
pub(crate) fn with_query(location: &str, name: &str, value: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}{name}={}", percent_encode(value))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "127.0.0.1:5000";

    #[test]
    fn relative_and_absolute_locations() {
        let r = |l| resolve_location(l, Scheme::Http, REG, "/v2/a/b/blobs/uploads/");
        assert_eq!(
            r("/v2/a/b/blobs/uploads/u1?_state=x").unwrap(),
            "/v2/a/b/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            r("http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?_state=x").unwrap(),
            "/v2/a/b/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            r("HTTP://127.0.0.1:5000/x").unwrap_err(),
            "Location \"HTTP://127.0.0.1:5000/x\" is not an http(s) URL"
        );
        assert_eq!(r("u2").unwrap(), "/v2/a/b/blobs/uploads/u2");
        for hostile in [
            "http://evil.example/v2/x",
            "https://127.0.0.1:5000/v2/x",
            "http://127.0.0.1:5001/v2/x",
            "//evil.example/v2",
            "/v2/x\r\nx-injected: 1",
            "http://user@127.0.0.1:5000/",
            "",
        ] {
            assert!(r(hostile).is_err(), "{hostile:?} accepted");
        }
    }

    #[test]
    fn query_is_appended_encoded() {
        assert_eq!(
            with_query("/u?_state=a", "digest", "sha256:ab"),
            "/u?_state=a&digest=sha256%3Aab"
        );
        assert_eq!(
            with_query("/u", "scope", "repository:a/b:pull,push"),
            "/u?scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn absolute_urls_split() {
        let t = parse_absolute("https://Auth.Example:8443/token?x=1#f").unwrap();
        assert_eq!(t.scheme, Scheme::Https);
        assert_eq!(t.authority, "auth.example:8443");
        assert_eq!(t.path_and_query, "/token?x=1");
        assert_eq!(
            parse_absolute("https://a.example").unwrap().path_and_query,
            "/"
        );
        assert!(parse_absolute("ftp://a").is_err());
    }
}
