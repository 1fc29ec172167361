//! The instance id on Google Cloud Run: the metadata server's `instance/id`.
//!
//! Cloud Run sets `K_SERVICE` (the service name) in every container, but no variable names the
//! instance; the metadata server does: `GET http://metadata.google.internal/computeMetadata/v1/instance/id`
//! with `Metadata-Flavor: Google` (the host can be overridden with `GCE_METADATA_HOST`, as
//! Google's client libraries allow; the tests point it at a loopback fake). The id is read once
//! at process start ([`crate::instance::global`]) with a short timeout; off Cloud Run
//! (`K_SERVICE` unset) nothing is asked, and a metadata server that does not answer properly
//! leaves the random id in place.
//!
//! A plain blocking HTTP/1.1 client on `std::net` is enough for one small GET and keeps this in
//! the light core (no tokio).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Set by Cloud Run (and Knative) to the service name.
pub const SERVICE_ENV: &str = "K_SERVICE";
/// Overrides the metadata server's `host[:port]`.
pub const METADATA_HOST_ENV: &str = "GCE_METADATA_HOST";
/// The metadata server's name inside Google Cloud.
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// The path of the instance id.
pub const INSTANCE_ID_PATH: &str = "/computeMetadata/v1/instance/id";
/// Connect and read timeout of the one metadata request.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Largest metadata answer read.
const MAX_ANSWER_BYTES: u64 = 16 * 1024;

/// The Cloud Run instance id, when this process runs on Cloud Run (`K_SERVICE` set) and the
/// metadata server answers.
pub fn instance_id_from_env(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |var: &str| {
        env(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    set(SERVICE_ENV)?;
    let host = set(METADATA_HOST_ENV).unwrap_or_else(|| DEFAULT_METADATA_HOST.to_owned());
    match fetch_instance_id(&host) {
        Ok(id) => Some(id),
        Err(why) => {
            // stderr may be closed; the random id is the fallback either way.
            let _ = writeln!(
                std::io::stderr(),
                "stellar-measure: no Cloud Run instance id from the metadata server {host}: {why}"
            );
            None
        }
    }
}

/// `GET http://<host>/computeMetadata/v1/instance/id` with `Metadata-Flavor: Google`; the
/// answer must be `200`, carry `Metadata-Flavor: Google` (so a proxy's page is not taken for
/// an id) and a non-empty one-line body.
pub fn fetch_instance_id(host: &str) -> Result<String, String> {
    let authority = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let address = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&address, TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("socket: {e}"))?;
    let request = format!(
        "GET {INSTANCE_ID_PATH} HTTP/1.1\r\nHost: {host}\r\nMetadata-Flavor: Google\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER_BYTES)
        .read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    parse_answer(&answer)
}

/// The id from a raw HTTP/1.1 answer (`Content-Length`, chunked or close-delimited body).
pub fn parse_answer(answer: &[u8]) -> Result<String, String> {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no complete header")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let mut body = &answer[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status:?}"));
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if header("metadata-flavor") != Some("Google") {
        return Err("the answer lacks `Metadata-Flavor: Google`".to_owned());
    }
    let decoded;
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        decoded = dechunk(body)?;
        body = &decoded;
    } else if let Some(length) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body = body
            .get(..length)
            .ok_or("the body is shorter than Content-Length")?;
    }
    let id = String::from_utf8_lossy(body).trim().to_owned();
    if id.is_empty() || id.len() > 256 || id.contains(['\r', '\n']) {
        return Err(format!("not an instance id: {id:?}"));
    }
    Ok(id)
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is cut")?;
        let size_text = String::from_utf8_lossy(&body[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).ok_or("a chunk is cut")?);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot loopback metadata server answering `answer`; returns its `host:port` and
    /// the request it received.
    fn fake_metadata(answer: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        (address, handle)
    }

    fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(pk, _)| *pk == k)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn reads_the_id_from_the_metadata_server_on_cloud_run() {
        let (host, server) = fake_metadata(
            "HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Type: application/text\r\n\
             Content-Length: 20\r\n\r\n00bf4bf02d4a9b53c1e0",
        );
        let id = instance_id_from_env(env_of(vec![
            ("K_SERVICE", "st-r1-00-00".to_owned()),
            ("GCE_METADATA_HOST", host),
        ]));
        assert_eq!(id.as_deref(), Some("00bf4bf02d4a9b53c1e0"));
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /computeMetadata/v1/instance/id HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\nMetadata-Flavor: Google\r\n"),
            "{request}"
        );
    }

    #[test]
    fn the_cloud_run_id_names_both_the_instance_and_the_platform_instance() {
        let (host, server) = fake_metadata(
            "HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Length: 6\r\n\r\ncr-i-7",
        );
        let instance = crate::instance::Instance::from_env(env_of(vec![
            ("K_SERVICE", "st-r1-00-00".to_owned()),
            ("GCE_METADATA_HOST", host),
        ]));
        server.join().unwrap();
        assert_eq!(instance.id(), "cr-i-7");
        assert_eq!(instance.platform_id(), Some("cr-i-7"));
    }

    #[test]
    fn nothing_is_asked_off_cloud_run() {
        // No K_SERVICE: the (unreachable) metadata host is never contacted.
        let id = instance_id_from_env(env_of(vec![(
            "GCE_METADATA_HOST",
            "127.0.0.1:1".to_owned(),
        )]));
        assert_eq!(id, None);
    }

    #[test]
    fn bad_answers_are_refused() {
        assert!(
            parse_answer(b"HTTP/1.1 404 Not Found\r\nMetadata-Flavor: Google\r\n\r\n").is_err()
        );
        let err = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nid").unwrap_err();
        assert!(err.contains("Metadata-Flavor"), "{err}");
        assert_eq!(
            parse_answer(
                b"HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            ),
            Ok("abcde".to_owned())
        );
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\n\r\n").is_err());
        // An unreachable server: an error, not a hang or a panic.
        let (host, server) = fake_metadata("HTTP/1.1 500 Oops\r\n\r\n");
        assert!(
            instance_id_from_env(env_of(vec![
                ("K_SERVICE", "s".to_owned()),
                ("GCE_METADATA_HOST", host),
            ]))
            .is_none()
        );
        server.join().unwrap();
    }
}
