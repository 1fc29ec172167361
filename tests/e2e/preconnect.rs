//! `Connection: preconnect` against a real loopback HTTP server: every connection of a burst
//! is open before the burst's first request arrives, each request gets its own connection,
//! and every row records its connect time.
//!
//! The check is on the order of events the server saw (accepts, then requests), not on time.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    Accepted,
    Request,
}

/// A minimal HTTP/1.1 server on 127.0.0.1:0 that answers every request with `200 ok` and
/// logs accepts and requests in the order it sees them.
fn server() -> (u16, Arc<Mutex<Vec<Event>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            log.lock().unwrap().push(Event::Accepted);
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line.starts_with("GET ") {
                        log.lock().unwrap().push(Event::Request);
                    }
                    if line == "\r\n" {
                        let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, events)
}

fn run(dir: &Path, port: u16) -> std::path::PathBuf {
    let experiment = dir.join("preconnect.json");
    fs_err::write(
        &experiment,
        format!(
            r#"{{ "Provider": "http://127.0.0.1:{port}/fn",
  "Stellar": {{ "Seed": 3, "Connection": "preconnect" }},
  "SubExperiments": [ {{ "Title": "pre", "Bursts": 2, "BurstSizes": [8],
    "IATSeconds": 1, "IATType": "deterministic", "DesiredServiceTimes": ["0ms"] }} ] }}"#
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .args(["run", experiment.to_str().unwrap(), "--json", "-o"])
        .arg(dir.join("results"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stellar run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let analysis: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    std::path::PathBuf::from(analysis["run_dir"].as_str().unwrap())
}

#[test]
fn preconnect_opens_a_bursts_connections_before_its_first_request() {
    let (port, events) = server();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run(dir.path(), port);

    let rows = stellar_results::read_latencies(run_dir.join("00-pre/latencies.csv")).unwrap();
    assert_eq!(rows.len(), 16);
    for row in &rows {
        assert!(row.is_ok(), "{row:?}");
        assert!(row.connect_ms.is_some_and(|c| c >= 0.0), "{row:?}");
    }
    // The second burst (due 1 s in) had its 8 connections opened 250 ms early: the server
    // accepted all 16 connections before it saw the second burst's first request.
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events.iter().filter(|e| **e == Event::Accepted).count(),
        16,
        "one connection per request: {events:?}"
    );
    let ninth_request = events
        .iter()
        .enumerate()
        .filter(|(_, e)| **e == Event::Request)
        .nth(8)
        .map(|(i, _)| i)
        .unwrap();
    let last_accept = events.iter().rposition(|e| *e == Event::Accepted).unwrap();
    assert!(last_accept < ninth_request, "{events:?}");
}
