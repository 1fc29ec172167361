//! The plugin host against real components built from source: the hostile fixture proves the
//! sandbox (undeclared hosts, runaway loops, memory, filesystem, panics) and the host goes on;
//! the local adapter round-trips through the embedded runtime.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use stellar::plugin::{
    ArtifactKind, DeployRequest, LoadPath, PluginError, PluginRuntime, PluginSource, SandboxLimits,
};

fn hostile() -> PluginSource {
    PluginSource::File(PathBuf::from(env!("STELLAR_PLUGIN_HOSTILE_WASM")))
}

fn stuck_describe() -> PluginSource {
    PluginSource::File(PathBuf::from(env!("STELLAR_PLUGIN_STUCK_DESCRIBE_WASM")))
}

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn runtime(limits: SandboxLimits, cache: &tempfile::TempDir) -> PluginRuntime {
    PluginRuntime::with_cache_dir(limits, Some(cache.path().to_owned())).unwrap()
}

fn request(artifact: Option<PathBuf>) -> DeployRequest {
    DeployRequest {
        name: "f".into(),
        memory_mb: 128,
        timeout_s: 30,
        arm64: false,
        env: vec![],
        tags: vec![],
        instance_concurrency: 0,
        options: vec![],
        artifact: artifact.map(|p| (p, ArtifactKind::NativeBinary)),
    }
}

/// A one-shot HTTP server on 127.0.0.1:0 answering `body` to every request.
fn tiny_server(body: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[tokio::test]
async fn undeclared_host_is_refused_with_a_clear_error_and_the_host_goes_on() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(SandboxLimits::default(), &cache);
    let plugin = rt.load(hostile()).await.unwrap();
    assert_eq!(plugin.info().name, "hostile");
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();

    inst.configure(
        &settings(&[("mode", "undeclared-host"), ("target", "127.0.0.2:9")]),
        &[],
    )
    .await
    .unwrap();
    let err = inst.list_apis().await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PluginError::UndeclaredHost { .. }), "{msg}");
    assert!(msg.contains("plugin `hostile`"), "{msg}");
    assert!(msg.contains("127.0.0.2:9"), "{msg}");
    assert!(msg.contains("allowed-hosts: 127.0.0.1"), "{msg}");

    // A name that would resolve to loopback is still refused: the allow-list is by name.
    inst.configure(
        &settings(&[("mode", "undeclared-host"), ("target", "localhost:9")]),
        &[],
    )
    .await
    .unwrap();
    assert!(matches!(
        inst.list_apis().await,
        Err(PluginError::UndeclaredHost { .. })
    ));

    // The same instance keeps working for a declared host.
    let port = tiny_server("http://127.0.0.1:1/ok");
    inst.configure(
        &settings(&[
            ("mode", "allowed-host"),
            ("target", &format!("127.0.0.1:{port}")),
        ]),
        &[],
    )
    .await
    .unwrap();
    let apis = inst.list_apis().await.unwrap();
    assert_eq!(apis[0].url, "http://127.0.0.1:1/ok");
}

#[tokio::test]
async fn runaway_plugin_is_stopped_at_the_deadline_and_poisoned() {
    let cache = tempfile::tempdir().unwrap();
    let limits = SandboxLimits {
        call_timeout: Duration::from_millis(500),
        ..SandboxLimits::default()
    };
    let rt = runtime(limits, &cache);
    let plugin = rt.load(hostile()).await.unwrap();
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();
    inst.configure(&settings(&[("mode", "spin-forever")]), &[])
        .await
        .unwrap();
    let started = Instant::now();
    let err = inst.list_apis().await.unwrap_err();
    assert!(matches!(err, PluginError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(
        inst.list_apis().await,
        Err(PluginError::Poisoned { .. })
    ));
    // The runtime is fine: a fresh instance answers.
    let mut fresh = rt.instantiate(&plugin, &[]).await.unwrap();
    assert_eq!(fresh.describe().await.unwrap().name, "hostile");
}

#[tokio::test]
async fn memory_cap_stops_a_greedy_plugin() {
    let cache = tempfile::tempdir().unwrap();
    let limits = SandboxLimits {
        memory_bytes: 64 << 20,
        ..SandboxLimits::default()
    };
    let rt = runtime(limits, &cache);
    let plugin = rt.load(hostile()).await.unwrap();
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();
    inst.configure(&settings(&[("mode", "alloc"), ("bytes", "209715200")]), &[])
        .await
        .unwrap();
    let err = inst.list_apis().await.unwrap_err();
    assert!(matches!(err, PluginError::Trap { .. }), "{err}");

    let mut small = rt.instantiate(&plugin, &[]).await.unwrap();
    small
        .configure(&settings(&[("mode", "alloc"), ("bytes", "1048576")]), &[])
        .await
        .unwrap();
    assert!(small.list_apis().await.is_ok());
}

#[tokio::test]
async fn plugin_sees_no_filesystem_and_no_environment() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(SandboxLimits::default(), &cache);
    let plugin = rt.load(hostile()).await.unwrap();
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();
    inst.configure(&settings(&[("mode", "read-file")]), &[])
        .await
        .unwrap();
    let apis = inst.list_apis().await.unwrap();
    let meta: std::collections::BTreeMap<_, _> = apis[0].meta.iter().cloned().collect();
    assert!(
        meta.get("file").is_some_and(|v| v.starts_with("error")),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("env-count").map(String::as_str),
        Some("0"),
        "{meta:?}"
    );
}

#[tokio::test]
async fn plugin_panic_is_reported_with_its_message() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(SandboxLimits::default(), &cache);
    let plugin = rt.load(hostile()).await.unwrap();
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();
    inst.configure(&settings(&[("mode", "panic")]), &[])
        .await
        .unwrap();
    let err = inst.list_apis().await.unwrap_err();
    assert!(matches!(err, PluginError::Trap { .. }), "{err}");
    assert!(err.to_string().contains("panicked"), "{err}");
}

#[tokio::test]
async fn artifacts_are_streamed_to_the_plugin_intact() {
    use sha2::Digest as _;
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(
        SandboxLimits {
            // Smaller than the artifact: it must be streamed, not copied whole.
            memory_bytes: 8 << 20,
            ..SandboxLimits::default()
        },
        &cache,
    );
    let plugin = rt.load(hostile()).await.unwrap();
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bootstrap.zip");
    let data: Vec<u8> = (0..(12u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs_err::write(&path, &data).unwrap();
    let endpoint = inst.deploy_function(&request(Some(path))).await.unwrap();
    let meta: std::collections::BTreeMap<_, _> = endpoint.meta.into_iter().collect();
    assert_eq!(meta["bytes"], data.len().to_string());
    assert_eq!(meta["sha256"], hex::encode(sha2::Sha256::digest(&data)));
    assert_eq!(meta["declared-sha256"], meta["sha256"]);
}

#[tokio::test]
async fn non_component_files_get_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(SandboxLimits::default(), &cache);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-plugin.wasm");
    fs_err::write(&path, b"hello").unwrap();
    let err = rt
        .load(PluginSource::File(path.clone()))
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("not-a-plugin.wasm"), "{msg}");
    assert!(msg.contains("stellar:provider/provider@0.2.0"), "{msg}");
    let missing = rt
        .load(PluginSource::File(dir.path().join("missing.wasm")))
        .await
        .err()
        .unwrap();
    assert!(missing.to_string().contains("missing.wasm"), "{missing}");
}

#[tokio::test]
async fn compiled_components_are_cached() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(SandboxLimits::default(), &cache);
    let first = rt.load(hostile()).await.unwrap();
    assert_eq!(first.load_path(), LoadPath::Compiled);
    let second = rt.load(hostile()).await.unwrap();
    assert_eq!(second.load_path(), LoadPath::Cached);
    eprintln!(
        "plugin load: compile {:?}, cached {:?}",
        first.load_time(),
        second.load_time()
    );
}

#[tokio::test]
async fn local_adapter_round_trips_through_the_embedded_runtime() {
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let local = stellar_local::LocalRuntime::start(stellar_local::LocalRuntimeConfig::new(
        work.path().join("rt"),
    ))
    .await
    .unwrap();
    let rt = runtime(SandboxLimits::default(), &cache);
    let plugin = rt
        .load(stellar::embedded::plugin_for("local").unwrap())
        .await
        .unwrap();
    assert_eq!(plugin.info().allowed_hosts, vec!["127.0.0.1".to_string()]);
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();

    // Before configure, or with a bad token, calls fail cleanly.
    inst.configure(
        &settings(&[("control-url", &local.control_url()), ("token", "wrong")]),
        &[],
    )
    .await
    .unwrap();
    let err = inst.list_apis().await.unwrap_err();
    assert!(
        matches!(
            err.provider_error(),
            Some(stellar::plugin::ProviderError::Unauthorized(_))
        ),
        "{err}"
    );

    inst.configure(
        &settings(&[
            ("control-url", &local.control_url()),
            ("token", local.token()),
        ]),
        &[],
    )
    .await
    .unwrap();
    let bin = work.path().join("stellar-measure-http");
    fs_err::write(&bin, stellar::embedded::MEASURE_HTTP_BIN).unwrap();
    let endpoint = inst.deploy_function(&request(Some(bin))).await.unwrap();
    assert!(
        endpoint.url.starts_with(&local.gateway_url()),
        "{}",
        endpoint.url
    );
    let listed = inst.list_apis().await.unwrap();
    assert_eq!(listed.len(), 1);
    inst.remove_function(&endpoint.id).await.unwrap();
    let err = inst.remove_function(&endpoint.id).await.unwrap_err();
    assert!(
        matches!(
            err.provider_error(),
            Some(stellar::plugin::ProviderError::NotFound(_))
        ),
        "{err}"
    );
    local.shutdown().await;
}

#[tokio::test]
async fn an_adapter_of_the_old_contract_is_refused_naming_both_versions() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(SandboxLimits::default(), &cache);
    let dir = tempfile::tempdir().unwrap();
    // The smallest component that exports the 0.1.0 interface name.
    let path = dir.path().join("old.wat");
    fs_err::write(
        &path,
        r#"(component (instance $i) (export "stellar:provider/provider@0.1.0" (instance $i)))"#,
    )
    .unwrap();
    let err = rt.load(PluginSource::File(path)).await.err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, PluginError::OldContract { .. }), "{msg}");
    assert!(msg.contains("stellar:provider@0.1.0"), "{msg}");
    assert!(msg.contains("stellar:provider@0.2.0"), "{msg}");
}

#[tokio::test]
async fn a_describe_that_never_returns_is_stopped_within_seconds() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(SandboxLimits::default(), &cache);
    let started = Instant::now();
    let err = rt.load(stuck_describe()).await.err().unwrap();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            err,
            PluginError::Timeout {
                call: "describe",
                ..
            }
        ),
        "{err}"
    );
    // The default call deadline is 900 s; describe gets a few seconds (plus compilation).
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    eprintln!("stuck describe stopped after {elapsed:?}");
}

#[tokio::test]
async fn the_cpu_budget_stops_a_spinning_deploy_despite_a_long_deadline() {
    let cache = tempfile::tempdir().unwrap();
    let limits = SandboxLimits {
        call_timeout: Duration::from_secs(900),
        cpu_budget: Duration::from_secs(1),
        ..SandboxLimits::default()
    };
    let rt = runtime(limits, &cache);
    let plugin = rt.load(hostile()).await.unwrap();
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();
    inst.configure(&settings(&[("deploy-mode", "spin-forever")]), &[])
        .await
        .unwrap();
    let started = Instant::now();
    let err = inst.deploy_function(&request(None)).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            err,
            PluginError::CpuBudget {
                call: "deploy-function",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--plugin-cpu-budget"), "{err}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    eprintln!("spinning deploy stopped by the 1 s CPU budget after {elapsed:?}");
}

#[tokio::test]
async fn time_a_plugin_spends_blocked_is_not_charged_to_its_cpu_budget() {
    let cache = tempfile::tempdir().unwrap();
    let limits = SandboxLimits {
        cpu_budget: Duration::from_millis(500),
        ..SandboxLimits::default()
    };
    let rt = runtime(limits, &cache);
    let plugin = rt.load(hostile()).await.unwrap();
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();
    inst.configure(&settings(&[("mode", "sleep"), ("ms", "2000")]), &[])
        .await
        .unwrap();
    let started = Instant::now();
    let apis = inst.list_apis().await.unwrap();
    assert_eq!(apis[0].id, "slept");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn a_huge_error_string_is_cut_when_shown() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(SandboxLimits::default(), &cache);
    let plugin = rt.load(hostile()).await.unwrap();
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();
    inst.configure(&settings(&[("mode", "big-error")]), &[])
        .await
        .unwrap();
    let err = inst.list_apis().await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("BIG-ERROR:"), "{}", &msg[..200]);
    assert!(msg.len() < 5000, "{} bytes shown", msg.len());
    assert!(
        msg.contains("more bytes cut"),
        "{}",
        &msg[msg.len() - 100..]
    );
}

#[tokio::test]
async fn a_stderr_flood_neither_crashes_the_host_nor_is_shown_whole() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(SandboxLimits::default(), &cache);
    let plugin = rt.load(hostile()).await.unwrap();
    let mut inst = rt.instantiate(&plugin, &[]).await.unwrap();
    inst.configure(&settings(&[("mode", "stderr-flood")]), &[])
        .await
        .unwrap();
    let err = inst.list_apis().await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PluginError::Trap { .. }), "{msg}");
    assert!(msg.contains("earlier bytes of stderr dropped"), "{msg}");
    assert!(msg.len() < 12_000, "{} bytes shown", msg.len());
}
