//! A third-party adapter from outside the main build: `examples/adapter-template` (provider
//! `fakecloud`, artifact kind `none`, one `env:FAKECLOUD_TOKEN` credential) is built from
//! source and run by the `stellar` binary against a FakeCloud fake on loopback. Checks that
//! the token is handed over only when granted, never leaks into output or results, that
//! `plugins inspect` speaks plain words, and that an installed adapter is found by name.

use crate::support::repo;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// The token the fake accepts; it must never show up in stellar's output or results.
const SECRET: &str = "fc-secret-4e1d9b7a-never-print-me";
const TOKEN_VAR: &str = "FAKECLOUD_TOKEN";

/// The template, built once per test binary into the target directory the host build uses for
/// the first-party plugins (so the SDK and its dependencies are already compiled there).
fn template_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        // STELLAR_PLUGIN_HOSTILE_WASM = <T>/wasm32-wasip2/release/stellar_plugin_hostile.wasm
        let target_dir = Path::new(env!("STELLAR_PLUGIN_HOSTILE_WASM"))
            .ancestors()
            .nth(3)
            .expect("the hostile fixture's path has the usual depth")
            .to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(repo())
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-wasip2",
            ])
            .arg("--manifest-path")
            .arg(repo().join("examples/adapter-template/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir);
        // Like host/stellar/build.rs: flags of the outer build must not reach this one (they
        // would also make cargo recompile what the plugin build already compiled).
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_MAKEFLAGS",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            command.env_remove(var);
        }
        let started = Instant::now();
        let output = command.output().expect("running cargo");
        eprintln!(
            "adapter template built in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert!(
            output.status.success(),
            "building examples/adapter-template failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let wasm = target_dir.join("wasm32-wasip2/release/stellar_adapter_template.wasm");
        assert!(wasm.is_file(), "expected {}", wasm.display());
        wasm
    })
}

/// One request the fake received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Without the query.
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// Functions deployed on the fake: name → the URL FakeCloud reports (`None`: the first PUT
/// was throttled, nothing is deployed yet).
type Functions = Mutex<BTreeMap<String, Option<String>>>;

/// FakeCloud's REST API and its function gateway on one loopback port:
/// - `PUT /v1/functions/{name}` (JSON body) → 429 the first time for each name (throttling,
///   which the adapter must retry), then 201 new / 200 replaced, `{"name","url"}`
/// - `GET /v1/functions` → `{"functions":[{"name","url"}]}`
/// - `DELETE /v1/functions/{name}` → 204, 404 when unknown
/// - anything under `/v1` without `authorization: Bearer <SECRET>` → 401 `{"error"}`
/// - `GET /invoke/{name}[?query]` → 200 with a small body while the function exists
struct FakeCloud {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeCloud {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let functions = Arc::new(Functions::default());
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, functions) = (Arc::clone(&log), Arc::clone(&functions));
                std::thread::spawn(move || {
                    let _ = serve(stream, &log, &functions);
                });
            }
        });
        Self { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Answers one request, then closes the connection.
fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>, functions: &Functions) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let target = words.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let (mut authorization, mut length) = (None, 0);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let Some((name, value)) = header.trim_end().split_once(':') else {
            break; // the blank line ending the head (or EOF)
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let seen = Seen {
        method,
        path,
        authorization,
        body,
    };
    let (status, reply) = route(&seen, functions);
    log.lock().unwrap().push(seen);
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{reply}",
        reply.len()
    )?;
    stream.flush()
}

fn route(request: &Seen, functions: &Functions) -> (u16, String) {
    let error =
        |status: u16, message: &str| (status, serde_json::json!({ "error": message }).to_string());
    let mut functions = functions.lock().unwrap();
    if let Some(name) = request.path.strip_prefix("/invoke/") {
        return match (request.method.as_str(), functions.get(name)) {
            ("GET", Some(Some(_))) => (200, r#"{"hello":"from fakecloud"}"#.to_owned()),
            _ => error(404, "no such function"),
        };
    }
    if request.authorization.as_deref() != Some(&format!("Bearer {SECRET}")) {
        return error(401, "missing or wrong token");
    }
    let name = request.path.strip_prefix("/v1/functions/");
    match (request.method.as_str(), name) {
        ("GET", None) if request.path == "/v1/functions" => {
            let list: Vec<_> = functions
                .iter()
                .filter_map(|(name, url)| {
                    Some(serde_json::json!({ "name": name, "url": url.as_ref()? }))
                })
                .collect();
            (200, serde_json::json!({ "functions": list }).to_string())
        }
        ("PUT", Some(name)) => {
            let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
                return error(400, "the body is not JSON");
            };
            if !(spec["memory_mb"].is_u64()
                && spec["timeout_s"].is_u64()
                && spec["region"].is_string()
                && spec["env"].is_object()
                && spec["tags"].is_object())
            {
                return error(400, "expected memory_mb, timeout_s, region, env and tags");
            }
            if !functions.contains_key(name) {
                functions.insert(name.to_owned(), None);
                return error(429, "rate exceeded, try again");
            }
            // The real cloud's shape: its own hostname, which the test never resolves.
            let url = format!("https://{name}.run.fakecloud.example/");
            let status = match functions.insert(name.to_owned(), Some(url.clone())) {
                Some(Some(_)) => 200,
                _ => 201,
            };
            (
                status,
                serde_json::json!({ "name": name, "url": url }).to_string(),
            )
        }
        ("DELETE", Some(name)) => match functions.remove(name) {
            Some(Some(_)) => (204, String::new()),
            _ => error(404, "no such function"),
        },
        _ => error(404, "no such route"),
    }
}

/// A tempdir with an experiment for the fake, and the directories stellar may write to.
struct Setup {
    dir: tempfile::TempDir,
    fake: FakeCloud,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeCloud::start();
        let experiment = serde_json::json!({
            "Provider": "fakecloud",
            "Stellar": {
                "Seed": 7,
                "OutputDir": dir.path().join("results"),
                "ProviderSettings": {
                    "api": fake.url(),
                    "functions-url": format!("{}/invoke", fake.url()),
                },
            },
            "SubExperiments": [{
                "Title": "fake",
                "Bursts": 3,
                "BurstSizes": [1],
                "IATSeconds": 0.2,
                "IATType": "deterministic",
                "DesiredServiceTimes": ["0ms"],
                "Parallelism": 1,
            }],
        });
        fs_err::write(
            dir.path().join("experiment.json"),
            serde_json::to_string_pretty(&experiment).unwrap(),
        )
        .unwrap();
        for sub in ["results", "cache", "data"] {
            fs_err::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Self { dir, fake }
    }

    fn experiment(&self) -> PathBuf {
        self.dir.path().join("experiment.json")
    }

    fn results(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    /// Where `plugins install` puts adapters ($STELLAR_DATA_DIR).
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `stellar` with the token in its environment, its own compiled-component cache
    /// and data directory.
    fn stellar<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new(env!("CARGO_BIN_EXE_stellar"))
            .current_dir(self.dir.path())
            .env(TOKEN_VAR, SECRET)
            .env("STELLAR_CACHE_DIR", self.dir.path().join("cache"))
            .env("STELLAR_DATA_DIR", self.data_dir())
            .args(args)
            .output()
            .unwrap()
    }
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every file below `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The fake's log shows one function deployed with the token (after one throttled try),
/// invoked `invocations` times, and removed after its last invocation.
fn assert_deployed_invoked_removed(seen: &[Seen], invocations: usize) {
    let bearer = format!("Bearer {SECRET}");
    let control: Vec<&Seen> = seen.iter().filter(|s| s.path.starts_with("/v1/")).collect();
    assert!(
        control
            .iter()
            .all(|s| s.authorization.as_deref() == Some(bearer.as_str())),
        "{seen:#?}"
    );
    let puts: Vec<&Seen> = control
        .iter()
        .copied()
        .filter(|s| s.method == "PUT")
        .collect();
    // The first PUT was throttled (429); the adapter retried it once, after its backoff.
    assert_eq!(puts.len(), 2, "{seen:#?}");
    assert_eq!(puts[0].path, puts[1].path, "{seen:#?}");
    let name = puts[0].path.strip_prefix("/v1/functions/").unwrap();
    assert!(name.starts_with("st-"), "{name}");
    let body: serde_json::Value = serde_json::from_slice(&puts[0].body).unwrap();
    assert_eq!(body["region"], "eu-1", "{body}");
    assert!(body["tags"]["stellar-run"].is_string(), "{body}");

    let invoke = format!("/invoke/{name}");
    let invoked: Vec<usize> = (0..seen.len())
        .filter(|&i| seen[i].method == "GET" && seen[i].path == invoke)
        .collect();
    assert_eq!(invoked.len(), invocations, "{seen:#?}");
    let deleted = seen
        .iter()
        .rposition(|s| s.method == "DELETE" && s.path == format!("/v1/functions/{name}"))
        .unwrap_or_else(|| panic!("no DELETE of {name}: {seen:#?}"));
    assert!(invoked.iter().all(|&i| i < deleted), "{seen:#?}");
    assert_eq!(
        deleted,
        seen.len() - 1,
        "the DELETE is the last request: {seen:#?}"
    );
}

#[test]
fn a_third_party_adapter_gets_no_credential_unless_granted() {
    let setup = Setup::new();
    let wasm = template_wasm();
    let output = setup.stellar([
        OsStr::new("run"),
        setup.experiment().as_os_str(),
        OsStr::new("--plugin"),
        wasm.as_os_str(),
        OsStr::new("--quiet"),
    ]);
    let (stdout, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("--grant env:FAKECLOUD_TOKEN"), "{stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    assert!(setup.fake.seen().is_empty(), "{:#?}", setup.fake.seen());
}

#[test]
fn a_granted_third_party_adapter_deploys_runs_and_removes_without_leaking_the_token() {
    let setup = Setup::new();
    let wasm = template_wasm();
    let started = Instant::now();
    let output = setup.stellar([
        OsStr::new("run"),
        setup.experiment().as_os_str(),
        OsStr::new("--plugin"),
        wasm.as_os_str(),
        OsStr::new("--grant"),
        OsStr::new("env:FAKECLOUD_TOKEN"),
        OsStr::new("--quiet"),
    ]);
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    eprintln!(
        "fakecloud run took {:.1} s\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    assert_deployed_invoked_removed(&setup.fake.seen(), 3);

    assert!(!stdout.contains(SECRET), "{stdout}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    let files = files_under(&setup.results());
    assert!(files.iter().any(|f| f.ends_with("plan.json")), "{files:#?}");
    for file in &files {
        let bytes = fs_err::read(file).unwrap();
        assert!(
            !contains(&bytes, SECRET),
            "the token is in {}",
            file.display()
        );
    }
    let csv = files
        .iter()
        .find(|f| f.ends_with("latencies.csv"))
        .unwrap_or_else(|| panic!("no latencies.csv in {files:#?}"));
    let rows = stellar_results::read_latencies(csv).unwrap();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(rows.iter().all(|r| r.is_ok()), "{rows:#?}");
}

#[test]
fn plugins_inspect_describes_the_template_in_plain_words() {
    let setup = Setup::new();
    let wasm = template_wasm();
    let output = setup.stellar([
        OsStr::new("plugins"),
        OsStr::new("inspect"),
        wasm.as_os_str(),
    ]);
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for wanted in [
        "fakecloud",
        "api.fakecloud.example",
        "*.run.fakecloud.example",
        "FAKECLOUD_TOKEN",
        "--grant env:FAKECLOUD_TOKEN",
        "functions-url",
        "region",
    ] {
        assert!(stdout.contains(wanted), "no {wanted:?} in:\n{stdout}");
    }
    for debug_name in [
        "ArtifactKind",
        "CredentialKind",
        "OptionType",
        "None,",
        "Env(",
        "ApiUrl",
    ] {
        assert!(!stdout.contains(debug_name), "{debug_name:?} in:\n{stdout}");
    }
    assert!(setup.fake.seen().is_empty());
}

#[test]
fn an_installed_adapter_is_found_by_its_provider_name() {
    let setup = Setup::new();
    let wasm = template_wasm();
    let output = setup.stellar([
        OsStr::new("plugins"),
        OsStr::new("install"),
        wasm.as_os_str(),
    ]);
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        setup.data_dir().join("plugins/fakecloud.wasm").is_file(),
        "{stdout}"
    );

    let output = setup.stellar(["plugins", "list"]);
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("fakecloud"), "{stdout}");

    let output = setup.stellar([
        OsStr::new("run"),
        setup.experiment().as_os_str(),
        OsStr::new("--grant"),
        OsStr::new("env:FAKECLOUD_TOKEN"),
        OsStr::new("--quiet"),
    ]);
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_deployed_invoked_removed(&setup.fake.seen(), 3);
}
