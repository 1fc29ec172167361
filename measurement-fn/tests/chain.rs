//! Data-transfer chains across real `stellar-measure-http` processes on loopback: each hop is
//! its own process, configured only through its environment (as stellar provisions them), and
//! the payload travels as a streamed HTTP body. The test recomputes every hash itself.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use stellar_measure::chain::payload::{PayloadStream, seed_from_request_id};
use stellar_measure::chain::{self, ChainReport};
use stellar_measure::{MeasurementResponse, ReadySignal};

struct Hop {
    child: Child,
    port: u16,
}

impl Drop for Hop {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn spawn_hop(hop: u32, length: u32, next: Option<u16>, faults: bool) -> Hop {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stellar-measure-http"));
    cmd.env_clear()
        .env("PORT", "0")
        .env("STELLAR_LISTEN_ADDR", "127.0.0.1")
        .env("STELLAR_EXIT_ON_STDIN_EOF", "1")
        .env(chain::HOP_ENV, hop.to_string())
        .env(chain::LENGTH_ENV, length.to_string())
        .env(chain::TRANSFER_ENV, "inline");
    if let Some(port) = next {
        cmd.env(chain::NEXT_URL_ENV, format!("http://127.0.0.1:{port}/next"));
    }
    if faults {
        cmd.env("STELLAR_FAULTS", "1");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn stellar-measure-http");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("READY line");
    let port = ReadySignal::parse_line(&line).expect("READY").port;
    Hop { child, port }
}

/// Hops `length-1` down to 0, each pointing at the one after it.
fn spawn_chain(length: u32, faults: bool) -> Vec<Hop> {
    let mut hops: Vec<Hop> = Vec::new();
    for hop in (0..length).rev() {
        let next = hops.last().map(|h| h.port);
        hops.push(spawn_hop(hop, length, next, faults));
    }
    hops.reverse();
    hops
}

/// One request; returns status and JSON body.
fn request(port: u16, method: &str, target: &str, headers: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).expect("JSON body"))
}

fn independent_sha(seed: u64, len: u64) -> String {
    let mut h = Sha256::new();
    for chunk in PayloadStream::new(seed, len) {
        h.update(&chunk);
    }
    hex::encode(h.finalize())
}

fn check_chain(length: u32, payload: u64) {
    let hops = spawn_chain(length, false);
    let (status, body) = request(
        hops[0].port,
        "GET",
        &format!(
            "/?PayloadLengthBytes={payload}&RequestID=req-{length}&DataTransferChainIDs=%5B%5D"
        ),
        "",
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let reply: MeasurementResponse = serde_json::from_value(body).unwrap();
    let report: ChainReport = reply.chain.expect("chain report");
    assert_eq!(report.length, length);
    assert_eq!(
        report.payload_seed,
        seed_from_request_id(&format!("req-{length}"))
    );
    assert_eq!(
        report.payload_sha256,
        independent_sha(report.payload_seed, payload)
    );
    assert_eq!(report.hops.len(), length as usize);
    let mut instances = std::collections::HashSet::new();
    for (i, hop) in report.hops.iter().enumerate() {
        assert_eq!(hop.hop as usize, i);
        assert!(
            instances.insert(hop.instance_id.clone()),
            "one process per hop"
        );
        let last = i + 1 == length as usize;
        assert_eq!(hop.send.is_some(), !last, "hop {i}");
        if let Some(send) = &hop.send {
            assert!(send.payload_sent_ns <= send.round_trip_ns);
            // The successor's whole handling lies inside this hop's round trip (two durations
            // on two monotonic clocks of one machine).
            assert!(report.hops[i + 1].handled_ns <= send.round_trip_ns);
        }
        if i == 0 {
            assert!(hop.receive.is_none());
            continue;
        }
        let rx = hop.receive.as_ref().expect("receive side");
        assert_eq!(rx.bytes, payload, "hop {i}");
        assert_eq!(rx.sha256, report.payload_sha256, "hop {i}");
        assert!(rx.sha256_ok);
        assert!(rx.end_unix_ns >= rx.start_unix_ns);
    }
}

#[test]
fn inline_chain_of_two() {
    check_chain(2, 1024);
}

#[test]
fn inline_chain_of_eight_with_a_megabyte() {
    check_chain(8, 1 << 20);
}

#[test]
fn receiver_flags_a_payload_that_does_not_match() {
    let hops = spawn_chain(2, false);
    let seed = 7;
    let good: Vec<u8> = PayloadStream::new(seed, 3000).flatten().collect();
    let mut bad = good.clone();
    bad[1234] ^= 1;
    let sha = independent_sha(seed, 3000);
    let target = format!("/?RequestID=r&PayloadLengthBytes=3000&PayloadSeed={seed}&ChainHop=1");
    let header = format!("{}: {sha}\r\n", chain::SHA256_HEADER);
    for (payload, ok) in [(&good, true), (&bad, false)] {
        let (status, body) = request(hops[1].port, "POST", &target, &header, payload);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["hops"][0]["receive"]["sha256_ok"], ok, "{body}");
    }
}

#[test]
fn a_successor_that_is_down_is_an_error_naming_the_hop() {
    let mut hops = spawn_chain(3, false);
    // Hop 2 goes away: hop 1 cannot reach it.
    let gone = hops.pop().unwrap();
    drop(gone);
    let (status, body) = request(hops[0].port, "GET", "/?PayloadLengthBytes=10", "", b"");
    assert_eq!(status, 502);
    let msg = body["error"].as_str().unwrap();
    assert!(msg.starts_with("chain hop 1 -> 2 ("), "{msg}");
    assert!(msg.contains("connecting"), "{msg}");
}

#[test]
fn fault_knob_takes_a_successor_down_only_when_faults_are_enabled() {
    let hops = spawn_chain(3, true);
    let (status, body) = request(
        hops[0].port,
        "GET",
        "/?PayloadLengthBytes=10&FaultChainDownHop=1",
        "",
        b"",
    );
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("chain hop 0 -> 1 ("),
        "{body}"
    );
    let hops = spawn_chain(2, false);
    let (status, _) = request(
        hops[0].port,
        "GET",
        "/?PayloadLengthBytes=10&FaultChainDownHop=1",
        "",
        b"",
    );
    assert_eq!(status, 200, "the knob is ignored without STELLAR_FAULTS=1");
}
