//! End-to-end test of the `stellar-measure-http` binary, driven the way the local runtime drives
//! it: spawn with `PORT=0` and piped stdin/stdout, wait for the READY line, talk plain HTTP/1.1
//! over one keep-alive TCP connection, then close stdin (or send SIGTERM) and expect an exit.

use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use stellar_measure::{MeasurementResponse, ReadySignal};

/// A running instance; killed on drop if a test fails half-way.
struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
    ready: ReadySignal,
}

impl Running {
    fn spawn() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stellar-measure-http"))
            .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
            .env_remove("FC_SERVER_PORT")
            .env("PORT", "0")
            .env("STELLAR_LISTEN_ADDR", "127.0.0.1")
            .env("STELLAR_EXIT_ON_STDIN_EOF", "1")
            .env("STELLAR_PROVIDER", "local-test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn stellar-measure-http");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read READY line");
        let ready = ReadySignal::parse_line(&line).expect("READY line");
        assert_ne!(ready.port, 0);
        assert_eq!(ready.pid, child.id());
        Self {
            child,
            stdout,
            ready,
        }
    }

    fn connect(&self) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", self.ready.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        Conn { stream, reader }
    }

    /// Polls for exit for up to `limit`.
    fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// One HTTP/1.1 keep-alive connection.
struct Conn {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

struct Reply {
    status: u16,
    content_type: Option<String>,
    body: Value,
}

impl Conn {
    fn request(&mut self, method: &str, target: &str, body: &str) -> Reply {
        write!(
            self.stream,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("write request");
        let mut status_line = String::new();
        self.reader
            .read_line(&mut status_line)
            .expect("status line");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut content_length = None;
        let mut content_type = None;
        loop {
            let mut header = String::new();
            self.reader.read_line(&mut header).expect("header line");
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').expect("header colon");
            match name.to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.trim().parse::<usize>().ok(),
                "content-type" => content_type = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        let mut body = vec![0; content_length.expect("content-length header")];
        self.reader.read_exact(&mut body).expect("body");
        Reply {
            status,
            content_type,
            body: serde_json::from_slice(&body).expect("JSON body"),
        }
    }

    fn get(&mut self, target: &str) -> Reply {
        self.request("GET", target, "")
    }
}

fn measurement(reply: Reply) -> MeasurementResponse {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    serde_json::from_value(reply.body).expect("MeasurementResponse")
}

#[test]
fn cold_then_warm_then_exit_on_stdin_eof() {
    let mut inst = Running::spawn();
    let mut conn = inst.connect();

    let first = measurement(conn.get("/?SpinMs=30&RequestID=first&DataTransferChainIDs=[]"));
    assert!(first.cold);
    assert_eq!(first.invocations_on_instance, 1);
    assert_eq!(first.instance_id, inst.ready.instance_id);
    assert_eq!(first.request_id, "first");
    assert!(first.spin_ns >= 30_000_000, "spin_ns {}", first.spin_ns);
    assert_eq!(first.spin_requested_ms, 30.0);
    assert!(first.instance_start_unix_ns <= first.handler_received_unix_ns);
    assert!(first.handler_done_unix_ns >= first.handler_received_unix_ns + 30_000_000);
    assert_eq!(
        first.timestamp_chain,
        vec![first.handler_received_unix_ns.to_string()]
    );
    assert_eq!(first.runtime.provider, "local-test");
    assert_eq!(first.runtime.pid, inst.ready.pid);

    // Same keep-alive connection, another path.
    let second = measurement(conn.get("/benchmarking?IncrementLimit=1000&PayloadLengthBytes=8"));
    assert!(!second.cold);
    assert_eq!(second.invocations_on_instance, 2);
    assert_eq!(second.instance_id, first.instance_id);
    assert_eq!(second.instance_start_unix_ns, first.instance_start_unix_ns);
    assert_eq!(second.increments, 1000);
    assert_eq!(second.payload_length_bytes, 8);
    assert_eq!(second.request_id.len(), 16);
    // Receipt signals: ready between start and the first receipt, one nonce per process.
    let ready = first.ready_unix_ns.expect("ready time");
    assert!(first.instance_start_unix_ns <= ready && ready <= first.handler_received_unix_ns);
    assert_eq!(second.ready_unix_ns, Some(ready));
    assert_eq!(first.process_nonce.as_deref().map(str::len), Some(16));
    assert_eq!(second.process_nonce, first.process_nonce);
    assert_eq!(
        (first.in_flight_at_receipt, first.first_in_flight),
        (Some(0), Some(false))
    );
    assert_eq!(
        (second.in_flight_at_receipt, second.first_in_flight),
        (Some(0), Some(false))
    );

    // A POST with a body is served too, and the connection stays usable afterwards.
    let third = measurement(conn.request("POST", "/x?IncrementLimit=1", "{\"ignored\":true}"));
    assert_eq!(third.invocations_on_instance, 3);

    let bad = conn.get("/?SpinMs=abc");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.content_type.as_deref(), Some("application/json"));
    let msg = bad
        .body
        .get("error")
        .and_then(Value::as_str)
        .expect("error");
    assert!(msg.contains("SpinMs"), "{msg}");

    // A bad request is not an invocation.
    let fourth = measurement(conn.get("/"));
    assert_eq!(fourth.invocations_on_instance, 4);

    // Closing stdin ends the instance.
    drop(inst.child.stdin.take());
    let status = inst
        .wait_for_exit(Duration::from_secs(5))
        .expect("exit within 5 s of stdin EOF");
    assert!(status.success(), "{status}");

    // The READY line was the only stdout output.
    let mut rest = String::new();
    inst.stdout.read_to_string(&mut rest).expect("read stdout");
    assert_eq!(rest, "");
}

#[test]
fn sigterm_exits_cleanly() {
    let mut inst = Running::spawn();
    let mut conn = inst.connect();
    assert!(measurement(conn.get("/")).cold);
    let kill = Command::new("kill")
        .args(["-TERM", &inst.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let status = inst
        .wait_for_exit(Duration::from_secs(5))
        .expect("exit within 5 s of SIGTERM");
    assert!(status.success(), "{status}");
}

#[test]
fn separate_instances_have_separate_identities() {
    let a = Running::spawn();
    let b = Running::spawn();
    assert_ne!(a.ready.instance_id, b.ready.instance_id);
    assert!(measurement(a.connect().get("/")).cold);
    assert!(measurement(b.connect().get("/")).cold);
}
