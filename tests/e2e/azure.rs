//! The `azure` adapter (Azure Functions, Flex Consumption) without an Azure account:
//!
//! - **Azurite** (npm `azurite`, `azurite-blob` on a free loopback port) is the blob data plane.
//!   The package upload runs against it with the adapter's own SharedKey signatures, which
//!   Azurite validates: a wrong account key fails. Blobs are created and read back with
//!   Azure's Python SDK (`azure_blob.py`, `azure-storage-blob`), an independent client.
//! - A loopback **fake** serves Microsoft Entra ID's token endpoint and the ARM calls the
//!   adapter makes. Its request and response shapes follow Microsoft's published specs
//!   (Azure/azure-rest-api-specs):
//!   - `specification/resources/resource-manager/Microsoft.Resources/stable/2021-04-01/`
//!     `resources.json` (ResourceGroups_CreateOrUpdate 200/201, ResourceGroups_Delete 202 +
//!     `Location`, polled until 200) and `examples/CreateResourceGroup.json`;
//!   - `specification/storage/resource-manager/Microsoft.Storage/stable/2023-05-01/`
//!     `examples/StorageAccountCreate.json` (202 + `Location`, then 200 with the account),
//!     `examples/BlobContainersPut.json`, `examples/StorageAccountListKeys.json`;
//!   - `specification/web/resource-manager/Microsoft.Web/AppService/stable/2024-04-01/`
//!     `examples/CreateOrUpdateAppServicePlan.json`, `examples/CreateOrUpdateWebApp.json`
//!     (200/202; here 202 + `Azure-AsyncOperation` polled through `InProgress` to
//!     `Succeeded` or `Failed`), `ListGeoRegions` (`?sku=FlexConsumption`), `ListWebApps`
//!     (`value` + `nextLink`), `SyncFunctionTriggers`, `UpdateApplicationSettings`;
//!   - `specification/common-types/resource-management/v5/types.json` (`ErrorResponse`:
//!     `{"error":{"code","message"}}`);
//!   - the async protocol: learn.microsoft.com azure-resource-manager/management/
//!     async-operations (`Azure-AsyncOperation`, `Location`, `Retry-After`, `status`).
//!   - the token request: the documented client-credentials grant (form `grant_type`,
//!     `client_id`, `client_secret`, `scope=https://management.azure.com/.default`);
//!   - every request is recorded; the tests assert method, path, api-version, bearer token
//!     and body fields.
//! - A small **Functions host** stand-in downloads the deployed package from Azurite, starts
//!   its `handler` (the real measurement function) with `FUNCTIONS_CUSTOMHANDLER_PORT` and
//!   the app settings, and forwards requests the way `host.json` asks (`/api/measure` as is
//!   with `enableForwardingHttpRequest`, else the JSON envelope).
//!
//! Needs `azurite-blob` (npm `azurite`) and `python3 -m pip install azure-storage-blob`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{free_port, meta, pairs, provider_error};
use serde_json::{Value, json};
use sha2::Digest as _;
use stellar::plugin::{
    ArtifactKind, Credential, CredentialKind, DeployRequest, PluginInstance, PluginRuntime,
    ProviderError, SandboxLimits,
};
use stellar_results::read_latencies;

/// Tenant and subscription ids as in the spec examples' style (any GUID works).
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SUB: &str = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345";
const CLIENT_ID: &str = "0a1b2c3d-e2e0-4a5b-9c8d-7e6f5a4b3c2d";
/// The client secret: must never show up in any output.
const SECRET: &str = "e2e-Secr3t~value&with=specials";
/// The access token the fake issues.
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-arm-token";
const LOCATION: &str = "eastus";

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on {port}: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A base64 key for `account` (Azurite HMACs with the decoded bytes, as Azure does).
fn key_for(account: &str, salt: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(format!("{salt}/{account}")))
}

fn python_blob(args: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/azure_blob.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success() || args.first() == Some(&"download"),
        "azure_blob.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `azurite-blob` on a loopback port with the given accounts, in memory; killed on drop.
struct Azurite {
    child: Child,
}

impl Azurite {
    fn start(port: u16, accounts: &BTreeMap<String, String>) -> Self {
        let list: Vec<String> = accounts.iter().map(|(a, k)| format!("{a}:{k}")).collect();
        let mut child = match Command::new("azurite-blob")
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableProductStyleUrl",
                "--disableTelemetry",
                "--silent",
            ])
            .env("AZURITE_ACCOUNTS", list.join(";"))
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`azurite-blob` is not on PATH; the azure tests need it: npm install -g azurite"
            ),
            Err(e) => panic!("starting azurite-blob: {e}"),
        };
        wait_for_port(port, "azurite-blob", &mut child);
        Self { child }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) at: Instant,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn param(&self, name: &str) -> Option<String> {
        form_pairs(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Some(Recorded {
        at: Instant::now(),
        method,
        path,
        query,
        headers,
        body,
    })
}

type Reply = (u16, Vec<(String, String)>, Vec<u8>);

fn write_reply(stream: &mut TcpStream, (status, headers, body): Reply) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Serves `handle` on a free loopback port, one thread per connection, one request each.
fn serve(handle: Arc<dyn Fn(Recorded) -> Reply + Send + Sync>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handle = handle.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if let Some(req) = read_request(&mut reader) {
                    let mut stream = stream;
                    write_reply(&mut stream, handle(req));
                }
            });
        }
    });
    port
}

fn json_reply(status: u16, body: Value) -> Reply {
    (
        status,
        vec![("content-type".into(), "application/json".into())],
        body.to_string().into_bytes(),
    )
}

fn arm_error(status: u16, code: &str, message: &str) -> Reply {
    json_reply(status, json!({"error": {"code": code, "message": message}}))
}

/// A function's site, storage account, key and app settings.
type Deployment = (Value, String, String, Vec<(String, String)>);
/// Started custom handlers by function: process, port, whether requests are forwarded.
type Handlers = Arc<Mutex<HashMap<String, (Child, u16, bool)>>>;
/// A failure case: what the fake does, words of the error, its kind.
type Case = (Script, &'static str, fn(&ProviderError) -> bool);

/// What the fake does wrong on purpose.
#[derive(Debug, Default, Clone)]
pub(crate) struct Script {
    pub(crate) wrong_key: bool,
    pub(crate) storage_taken: bool,
    pub(crate) plan_quota: bool,
    pub(crate) site_fails: bool,
    pub(crate) throttle_site_once: bool,
}

struct Op {
    polls_left: u32,
    error: Option<Value>,
}

struct State {
    base: String,
    blob_port: u16,
    script: Script,
    resources: BTreeMap<String, Value>,
    settings: HashMap<String, Vec<(String, String)>>,
    keys: BTreeMap<String, String>,
    ops: HashMap<String, Op>,
    next_op: u32,
    requests: Vec<Recorded>,
    azurite: Option<Azurite>,
}

/// The fake Entra ID + ARM (+ Azurite behind it), on loopback.
pub(crate) struct FakeAzure {
    state: Arc<Mutex<State>>,
    port: u16,
    blob_port: u16,
}

impl FakeAzure {
    pub(crate) fn start(script: Script) -> Self {
        let blob_port = free_port();
        let state = Arc::new(Mutex::new(State {
            base: String::new(),
            blob_port,
            script,
            resources: BTreeMap::new(),
            settings: HashMap::new(),
            keys: BTreeMap::new(),
            ops: HashMap::new(),
            next_op: 0,
            requests: Vec::new(),
            azurite: None,
        }));
        let shared = state.clone();
        let port = serve(Arc::new(move |req: Recorded| {
            let mut state = shared.lock().unwrap();
            state.requests.push(req.clone());
            handle(&mut state, &req)
        }));
        state.lock().unwrap().base = format!("http://127.0.0.1:{port}");
        Self {
            state,
            port,
            blob_port,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn hosts(&self) -> Vec<String> {
        vec![
            format!("127.0.0.1:{}", self.port),
            format!("127.0.0.1:{}", self.blob_port),
        ]
    }

    pub(crate) fn blob_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{{account}}", self.blob_port)
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub(crate) fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    pub(crate) fn set_script(&self, script: Script) {
        self.state.lock().unwrap().script = script;
    }

    /// Resource groups that exist.
    pub(crate) fn groups(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .resources
            .iter()
            .filter(|(_, v)| v["type"] == "Microsoft.Resources/resourceGroups")
            .map(|(_, v)| v["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Creates a resource group directly (as a crashed run would have left it).
    pub(crate) fn add_group(&self, name: &str) {
        let path = format!("/subscriptions/{SUB}/resourcegroups/{name}");
        self.state.lock().unwrap().resources.insert(
            path.to_ascii_lowercase(),
            json!({"id": path, "name": name, "type": "Microsoft.Resources/resourceGroups",
                   "location": LOCATION, "properties": {"provisioningState": "Succeeded"}}),
        );
    }

    /// The site of stellar function `function`, its storage account and key, and app settings.
    fn deployment_of(&self, function: &str) -> Option<Deployment> {
        let state = self.state.lock().unwrap();
        let site = state
            .resources
            .values()
            .find(|r| {
                r["type"] == "Microsoft.Web/sites" && r["tags"]["stellar-function"] == function
            })?
            .clone();
        let container = site
            .pointer("/properties/functionAppConfig/deployment/storage/value")?
            .as_str()?;
        let account = container
            .strip_prefix("https://")?
            .split('.')
            .next()?
            .to_string();
        let key = state.keys.get(&account)?.clone();
        let settings = state
            .settings
            .get(site["name"].as_str()?)
            .cloned()
            .unwrap_or_default();
        Some((site, account, key, settings))
    }

    /// Downloads blob `app-package/released-package.zip` of `account` with the Python SDK.
    fn download_package(&self, account: &str, key: &str, out: &Path) -> bool {
        let endpoint = format!("http://127.0.0.1:{}/{account}", self.blob_port);
        python_blob(&[
            "download",
            &endpoint,
            account,
            key,
            "app-package",
            "released-package.zip",
            out.to_str().unwrap(),
        ])
        .status
        .success()
    }
}

fn new_op(state: &mut State, polls: u32, error: Option<Value>) -> String {
    state.next_op += 1;
    let id = format!("op-{:04}", state.next_op);
    state.ops.insert(
        id.clone(),
        Op {
            polls_left: polls,
            error,
        },
    );
    id
}

fn api_version_for(segments: &[&str]) -> &'static str {
    if segments.contains(&"microsoft.storage") {
        "2023-05-01"
    } else if segments.contains(&"microsoft.web") {
        "2024-04-01"
    } else {
        "2021-04-01"
    }
}

fn handle(state: &mut State, req: &Recorded) -> Reply {
    let lower = req.path.to_ascii_lowercase();
    let seg: Vec<&str> = lower.trim_start_matches('/').split('/').collect();
    // Microsoft Entra ID: the client-credentials grant.
    if let [tenant, "oauth2", "v2.0", "token"] = seg.as_slice() {
        let form: BTreeMap<String, String> = form_pairs(&String::from_utf8_lossy(&req.body))
            .into_iter()
            .collect();
        let ok = req.method == "POST"
            && *tenant == TENANT
            && req.header("content-type") == Some("application/x-www-form-urlencoded")
            && form.get("grant_type").map(String::as_str) == Some("client_credentials")
            && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("scope").map(String::as_str)
                == Some("https://management.azure.com/.default");
        if !ok {
            return json_reply(
                400,
                json!({"error": "invalid_request", "error_description": "AADSTS900144: malformed client-credentials request"}),
            );
        }
        if form.get("client_secret").map(String::as_str) != Some(SECRET) {
            return json_reply(
                401,
                json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}),
            );
        }
        return json_reply(
            200,
            json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": TOKEN}),
        );
    }
    if req.header("authorization") != Some(format!("Bearer {TOKEN}").as_str()) {
        return arm_error(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        );
    }
    let api = req.param("api-version").unwrap_or_default();
    let base = state.base.clone();
    // Operation status monitors.
    match seg.as_slice() {
        ["subscriptions", _, "operationresults", id] => {
            let Some(op) = state.ops.get_mut(*id) else {
                return arm_error(404, "NotFound", "no such operation");
            };
            if op.polls_left > 0 {
                op.polls_left -= 1;
                let location = format!("{base}{}?{}", req.path, req.query);
                return (
                    202,
                    vec![
                        ("location".into(), location),
                        ("retry-after".into(), "0".into()),
                    ],
                    Vec::new(),
                );
            }
            return (200, Vec::new(), Vec::new());
        }
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.web",
            "locations",
            _,
            "operationresults",
            id,
        ] => {
            let Some(op) = state.ops.get_mut(*id) else {
                return arm_error(404, "NotFound", "no such operation");
            };
            if op.polls_left > 0 {
                op.polls_left -= 1;
                return json_reply(200, json!({"status": "InProgress"}));
            }
            return match &op.error {
                None => json_reply(200, json!({"status": "Succeeded"})),
                Some(error) => json_reply(200, json!({"status": "Failed", "error": error})),
            };
        }
        _ => {}
    }
    let expected_api = api_version_for(&seg);
    if api != expected_api {
        return arm_error(
            400,
            "InvalidApiVersionParameter",
            &format!("api-version {api:?}; this fake expects {expected_api} here"),
        );
    }
    if seg.get(1) != Some(&SUB) {
        return arm_error(
            404,
            "SubscriptionNotFound",
            "The subscription could not be found.",
        );
    }
    let key = lower.clone();
    match (req.method.as_str(), seg.as_slice()) {
        (
            "GET",
            [
                "subscriptions",
                _,
                "providers",
                "microsoft.web",
                "georegions",
            ],
        ) => {
            assert_eq!(req.param("sku").as_deref(), Some("FlexConsumption"));
            let regions: Vec<Value> = ["East US", "North Europe", "Australia East"]
                .iter()
                .map(|n| {
                    json!({
                        "id": format!("/subscriptions/{SUB}/providers/Microsoft.Web/geoRegions/{n}"),
                        "name": n, "type": "Microsoft.Web/geoRegions",
                        "properties": {"name": n, "displayName": n}})
                })
                .collect();
            json_reply(200, json!({ "value": regions }))
        }
        ("GET", ["subscriptions", _, "providers", "microsoft.web", "sites"]) => {
            // One site per page, to exercise nextLink.
            let sites: Vec<Value> = state
                .resources
                .values()
                .filter(|r| r["type"] == "Microsoft.Web/sites")
                .cloned()
                .collect();
            let skip: usize = req
                .param("$skipToken")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let shown: Vec<&Value> = sites.iter().skip(skip).take(1).collect();
            let mut page = json!({ "value": shown });
            if skip + 1 < sites.len() {
                page["nextLink"] = json!(format!(
                    "{base}/subscriptions/{SUB}/providers/Microsoft.Web/sites?api-version=2024-04-01&$skipToken={}",
                    skip + 1
                ));
            }
            json_reply(200, page)
        }
        (method, ["subscriptions", _, "resourcegroups", rg]) => match method {
            "PUT" => {
                let body = req.json();
                let exists = state.resources.contains_key(&key);
                let group = json!({
                    "id": format!("/subscriptions/{SUB}/resourceGroups/{rg}"), "name": rg,
                    "type": "Microsoft.Resources/resourceGroups", "location": body["location"],
                    "tags": body["tags"], "properties": {"provisioningState": "Succeeded"}});
                state.resources.insert(key, group.clone());
                json_reply(if exists { 200 } else { 201 }, group)
            }
            "GET" => match state.resources.get(&key) {
                Some(g) => json_reply(200, g.clone()),
                None => arm_error(
                    404,
                    "ResourceGroupNotFound",
                    &format!("Resource group '{rg}' could not be found."),
                ),
            },
            "DELETE" => {
                if !state.resources.contains_key(&key) {
                    return arm_error(
                        404,
                        "ResourceGroupNotFound",
                        &format!("Resource group '{rg}' could not be found."),
                    );
                }
                let prefix = format!("{key}/");
                state
                    .resources
                    .retain(|k, _| *k != key && !k.starts_with(&prefix));
                let op = new_op(state, 1, None);
                (
                    202,
                    vec![
                        (
                            "location".into(),
                            format!(
                                "{base}/subscriptions/{SUB}/operationresults/{op}?api-version=2021-04-01"
                            ),
                        ),
                        ("retry-after".into(), "0".into()),
                    ],
                    Vec::new(),
                )
            }
            _ => arm_error(405, "MethodNotAllowed", method),
        },
        (method, ["subscriptions", _, "resourcegroups", rg, rest @ ..]) => {
            let group_key = format!("/subscriptions/{SUB}/resourcegroups/{rg}");
            if !state.resources.contains_key(&group_key) {
                return arm_error(
                    404,
                    "ResourceGroupNotFound",
                    &format!("Resource group '{rg}' could not be found."),
                );
            }
            arm_resource(state, req, method, rest, key)
        }
        _ => arm_error(
            404,
            "NotFound",
            &format!("the fake does not serve {} {}", req.method, req.path),
        ),
    }
}

fn arm_resource(
    state: &mut State,
    req: &Recorded,
    method: &str,
    rest: &[&str],
    key: String,
) -> Reply {
    let base = state.base.clone();
    let id = req.path.clone();
    match (method, rest) {
        ("PUT", ["providers", "microsoft.storage", "storageaccounts", account]) => {
            if state.script.storage_taken {
                return arm_error(
                    409,
                    "StorageAccountAlreadyTaken",
                    &format!("The storage account named {account} is already taken."),
                );
            }
            let body = req.json();
            assert_eq!(body["kind"], "StorageV2");
            assert_eq!(body["sku"]["name"], "Standard_LRS");
            let resource = json!({"id": id, "name": account, "type": "Microsoft.Storage/storageAccounts",
                "location": body["location"], "kind": "StorageV2", "sku": body["sku"], "tags": body["tags"],
                "properties": {"provisioningState": "Succeeded",
                    "primaryEndpoints": {"blob": format!("https://{account}.blob.core.windows.net/")}}});
            state.resources.insert(key, resource);
            // The account's data plane comes up: (re)start Azurite with every account's key.
            state
                .keys
                .insert(account.to_string(), key_for(account, "real"));
            state.azurite = None;
            state.azurite = Some(Azurite::start(state.blob_port, &state.keys));
            let op = new_op(state, 1, None);
            (
                202,
                vec![
                    (
                        "location".into(),
                        format!(
                            "{base}/subscriptions/{SUB}/operationresults/{op}?api-version=2023-05-01"
                        ),
                    ),
                    ("retry-after".into(), "0".into()),
                ],
                Vec::new(),
            )
        }
        ("GET", ["providers", "microsoft.storage" | "microsoft.web", _, _]) => {
            match state.resources.get(&key) {
                Some(r) => json_reply(200, r.clone()),
                None => arm_error(404, "ResourceNotFound", &format!("{id} was not found.")),
            }
        }
        (
            "PUT",
            [
                "providers",
                "microsoft.storage",
                "storageaccounts",
                account,
                "blobservices",
                "default",
                "containers",
                container,
            ],
        ) => {
            let endpoint = format!("http://127.0.0.1:{}/{account}", state.blob_port);
            let Some(real_key) = state.keys.get(*account).cloned() else {
                return arm_error(404, "ResourceNotFound", "no such storage account");
            };
            python_blob(&["create-container", &endpoint, account, &real_key, container]);
            json_reply(
                201,
                json!({"id": id, "name": container,
                "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
                "properties": {"publicAccess": "None", "leaseStatus": "Unlocked"}}),
            )
        }
        (
            "POST",
            [
                "providers",
                "microsoft.storage",
                "storageaccounts",
                account,
                "listkeys",
            ],
        ) => {
            let Some(real_key) = state.keys.get(*account).cloned() else {
                return arm_error(404, "ResourceNotFound", "no such storage account");
            };
            let served = if state.script.wrong_key {
                key_for(account, "wrong")
            } else {
                real_key
            };
            json_reply(
                200,
                json!({"keys": [
                {"keyName": "key1", "value": served, "permissions": "Full"},
                {"keyName": "key2", "value": key_for(account, "second"), "permissions": "Full"}]}),
            )
        }
        ("PUT", ["providers", "microsoft.web", "serverfarms", plan]) => {
            if state.script.plan_quota {
                return arm_error(
                    400,
                    "SubscriptionIsOverQuotaForSku",
                    "This region has quota of 0 instances for your subscription. Try selecting different region or SKU.",
                );
            }
            let body = req.json();
            let resource = json!({"id": id, "name": plan, "type": "Microsoft.Web/serverfarms",
                "kind": body["kind"], "location": body["location"], "sku": body["sku"], "tags": body["tags"],
                "properties": {"provisioningState": "Succeeded", "reserved": true, "status": "Ready"}});
            state.resources.insert(key, resource.clone());
            json_reply(200, resource)
        }
        ("PUT", ["providers", "microsoft.web", "sites", app]) => {
            if state.script.throttle_site_once {
                state.script.throttle_site_once = false;
                return (
                    429,
                    vec![("retry-after".into(), "1".into()), ("content-type".into(), "application/json".into())],
                    json!({"error": {"code": "TooManyRequests", "message": "Too many requests, retry after 1 second."}}).to_string().into_bytes(),
                );
            }
            let body = req.json();
            let settings: Vec<(String, String)> = body
                .pointer("/properties/siteConfig/appSettings")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|s| {
                            (
                                s["name"].as_str().unwrap_or("").to_string(),
                                s["value"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            state.settings.insert(app.to_string(), settings);
            let resource = json!({"id": id, "name": app, "type": "Microsoft.Web/sites",
                "kind": body["kind"], "location": body["location"], "tags": body["tags"],
                "properties": {"state": "Running", "defaultHostName": format!("{app}.azurewebsites.net"),
                    "serverFarmId": body["properties"]["serverFarmId"], "reserved": true,
                    "functionAppConfig": body["properties"]["functionAppConfig"]}});
            state.resources.insert(key, resource);
            let error = state.script.site_fails.then(|| json!({"code": "FunctionAppProvisioningFailed", "message": "The function app could not be provisioned."}));
            let op = new_op(state, 2, error);
            (
                202,
                vec![
                    (
                        "azure-asyncoperation".into(),
                        format!(
                            "{base}/subscriptions/{SUB}/providers/Microsoft.Web/locations/{LOCATION}/operationResults/{op}?api-version=2024-04-01"
                        ),
                    ),
                    ("retry-after".into(), "0".into()),
                ],
                Vec::new(),
            )
        }
        ("PATCH", ["providers", "microsoft.web", "sites", _]) => {
            let patch = req.json();
            let Some(site) = state.resources.get_mut(&key) else {
                return arm_error(404, "ResourceNotFound", "no such site");
            };
            if let Some(scale) = patch.pointer("/properties/functionAppConfig/scaleAndConcurrency")
            {
                site["properties"]["functionAppConfig"]["scaleAndConcurrency"] = scale.clone();
            }
            json_reply(200, site.clone())
        }
        (
            "POST",
            [
                "providers",
                "microsoft.web",
                "sites",
                _,
                "syncfunctiontriggers",
            ],
        ) => (204, Vec::new(), Vec::new()),
        (
            "PUT",
            [
                "providers",
                "microsoft.web",
                "sites",
                app,
                "config",
                "appsettings",
            ],
        ) => {
            let body = req.json();
            let settings: Vec<(String, String)> = body["properties"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            state.settings.insert(app.to_string(), settings);
            json_reply(
                200,
                json!({"id": id, "name": "appsettings", "properties": body["properties"]}),
            )
        }
        _ => arm_error(
            404,
            "NotFound",
            &format!("the fake does not serve {method} {}", req.path),
        ),
    }
}

/// The Functions host stand-in: `/<function>/api/measure?...` starts that function's
/// package (downloaded from Azurite) once, then forwards as `host.json` says.
pub(crate) struct FunctionsHost {
    port: u16,
    handlers: Handlers,
}

impl FunctionsHost {
    pub(crate) fn start(fake: Arc<FakeAzure>, dir: PathBuf) -> Self {
        let handlers: Handlers = Arc::default();
        let shared = handlers.clone();
        let port = serve(Arc::new(move |req: Recorded| {
            let mut parts = req.path.trim_start_matches('/').splitn(2, '/');
            let function = parts.next().unwrap_or("").to_string();
            let rest = format!("/{}", parts.next().unwrap_or(""));
            let mut handlers = shared.lock().unwrap();
            if !handlers.contains_key(&function) {
                match start_handler(&fake, &dir, &function) {
                    Ok(started) => {
                        handlers.insert(function.clone(), started);
                    }
                    Err(e) => return json_reply(502, json!({"error": e})),
                }
            }
            let (_, port, forwarding) = handlers.get(&function).unwrap();
            let (port, forwarding) = (*port, *forwarding);
            drop(handlers);
            if forwarding {
                // enableForwardingHttpRequest: the original request, same path and query.
                let target = if req.query.is_empty() {
                    rest
                } else {
                    format!("{rest}?{}", req.query)
                };
                let (status, body) = http_call(port, &req.method, &target, b"");
                json_reply(status, serde_json::from_slice(&body).unwrap_or(Value::Null))
            } else {
                // The envelope: POST /<fn> with Data.req, answer from Outputs.res.
                let envelope = json!({"Data": {"req": {"Url": format!("http://localhost{rest}?{}", req.query),
                    "Method": req.method, "Query": {}, "Headers": {}, "Params": {}}}, "Metadata": {}});
                let (_, body) =
                    http_call(port, "POST", "/measure", envelope.to_string().as_bytes());
                let reply: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let res = &reply["Outputs"]["res"];
                json_reply(
                    res["statusCode"].as_u64().unwrap_or(500) as u16,
                    serde_json::from_str(res["body"].as_str().unwrap_or("null"))
                        .unwrap_or(Value::Null),
                )
            }
        }));
        Self { port, handlers }
    }

    pub(crate) fn url_template(&self) -> String {
        format!("http://127.0.0.1:{}/{{name}}/api/measure", self.port)
    }
}

impl Drop for FunctionsHost {
    fn drop(&mut self) {
        for (_, (mut child, _, _)) in self.handlers.lock().unwrap().drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Downloads the function's package, unpacks it (keeping the zip's Unix modes) and starts its
/// custom handler like the Functions host: `FUNCTIONS_CUSTOMHANDLER_PORT`, the app settings,
/// a per-instance `CONTAINER_NAME`.
fn start_handler(
    fake: &FakeAzure,
    dir: &Path,
    function: &str,
) -> Result<(Child, u16, bool), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let (site, account, key, settings) = fake
        .deployment_of(function)
        .ok_or_else(|| format!("no function app for {function}"))?;
    let app_dir = dir.join(function);
    fs_err::create_dir_all(&app_dir).map_err(|e| e.to_string())?;
    let package = app_dir.join("released-package.zip");
    if !fake.download_package(&account, &key, &package) {
        return Err("the package is not in the deployment container".into());
    }
    let mut zip = zip::ZipArchive::new(fs_err::File::open(&package).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
        let out = app_dir.join(entry.enclosed_name().ok_or("bad zip entry name")?);
        if let Some(parent) = out.parent() {
            fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        fs_err::write(&out, bytes).map_err(|e| e.to_string())?;
        if let Some(mode) = entry.unix_mode() {
            fs_err::set_permissions(&out, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| e.to_string())?;
        }
    }
    let host: Value = serde_json::from_slice(
        &fs_err::read(app_dir.join("host.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let exe = host["customHandler"]["description"]["defaultExecutablePath"]
        .as_str()
        .ok_or("host.json has no defaultExecutablePath")?;
    let forwarding = host["customHandler"]["enableForwardingHttpRequest"] == true;
    let port = free_port();
    let mut child = Command::new(app_dir.join(exe))
        .current_dir(&app_dir)
        .env_clear()
        .envs(settings)
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("STELLAR_LISTEN_ADDR", "127.0.0.1")
        .env("WEBSITE_INSTANCE_ID", "site-wide-instance-id")
        .env(
            "CONTAINER_NAME",
            format!("{}-c1", site["name"].as_str().unwrap_or("app")),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the handler (is it executable?): {e}"))?;
    wait_for_port(port, "the custom handler", &mut child);
    Ok((child, port, forwarding))
}

/// One HTTP/1.1 exchange with `connection: close`.
fn http_call(port: u16, method: &str, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

fn credentials(secret: &str) -> Vec<Credential> {
    vec![Credential {
        kind: CredentialKind::Azure,
        values: pairs(&[
            ("tenant-id", TENANT),
            ("client-id", CLIENT_ID),
            ("client-secret", secret),
            ("subscription-id", SUB),
        ]),
    }]
}

fn settings(fake: &FakeAzure, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let (url, blob) = (fake.url(), fake.blob_endpoint());
    let mut items = vec![
        ("location", LOCATION),
        ("arm-endpoint", url.as_str()),
        ("login-endpoint", url.as_str()),
        ("blob-endpoint", blob.as_str()),
        ("poll-interval-ms", "20"),
        ("wait-timeout-s", "60"),
    ];
    items.extend_from_slice(extra);
    pairs(&items)
}

/// A custom-handler zip made by stellar's own packager around `content`.
fn write_zip(dir: &Path, file: &str, content: &[u8]) -> (PathBuf, Vec<u8>) {
    let handler = dir.join(format!("{file}.handler"));
    fs_err::write(&handler, content).unwrap();
    let path = dir.join(file);
    stellar::package::custom_handler_zip::custom_handler_zip(&handler, &path, 30, None, 0).unwrap();
    let zip = fs_err::read(&path).unwrap();
    (path, zip)
}

fn request(name: &str, memory_mb: u32, artifact: Option<PathBuf>) -> DeployRequest {
    DeployRequest {
        name: name.into(),
        memory_mb,
        timeout_s: 30,
        arm64: false,
        env: pairs(&[("STELLAR_PROVIDER", "azure")]),
        tags: pairs(&[
            ("stellar-run", "e2erun"),
            ("stellar-sub-experiment", "00-warm"),
        ]),
        instance_concurrency: 0,
        options: vec![],
        artifact: artifact.map(|p| (p, ArtifactKind::CustomHandlerZip)),
    }
}

async fn azure_instance(
    cache: &tempfile::TempDir,
    hosts: &[String],
) -> (PluginRuntime, PluginInstance) {
    let rt = PluginRuntime::with_cache_dir(SandboxLimits::default(), Some(cache.path().to_owned()))
        .unwrap();
    let plugin = rt
        .load(stellar::embedded::plugin_for("azure").unwrap())
        .await
        .unwrap();
    let info = plugin.info();
    assert_eq!(info.name, "azure");
    assert_eq!(info.artifacts, vec![ArtifactKind::CustomHandlerZip]);
    assert!(matches!(
        info.credentials.as_slice(),
        [CredentialKind::Azure]
    ));
    let inst = rt.instantiate(&plugin, hosts).await.unwrap();
    (rt, inst)
}

/// `(method, path without the subscription prefix, api-version)` of the ARM requests.
fn arm_calls(requests: &[Recorded]) -> Vec<(String, String, String)> {
    requests
        .iter()
        .filter(|r| !r.path.ends_with("/oauth2/v2.0/token"))
        .map(|r| {
            (
                r.method.clone(),
                r.path.replace(&format!("/subscriptions/{SUB}"), ""),
                r.param("api-version").unwrap_or_default(),
            )
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn azure_adapter_deploys_updates_lists_and_removes_against_fake_arm_and_azurite() {
    let fake = FakeAzure::start(Script {
        throttle_site_once: true,
        ..Script::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (_rt, mut inst) = azure_instance(&cache, &fake.hosts()).await;
    inst.configure(&settings(&fake, &[]), &credentials(SECRET))
        .await
        .unwrap();

    let (zip_path, zip) = write_zip(
        work.path(),
        "app.zip",
        &b"#!/bin/sh\necho v1\n".repeat(5000),
    );
    let started = Instant::now();
    let endpoint = inst
        .deploy_function(&request("st-e2erun-00-00", 1500, Some(zip_path)))
        .await
        .unwrap();
    let deploy_time = started.elapsed();
    let app = meta(&endpoint, "app").to_string();
    assert_eq!(endpoint.id, "st-e2erun-00-00");
    assert_eq!(
        endpoint.url,
        format!("https://{app}.azurewebsites.net/api/measure")
    );
    assert_eq!(meta(&endpoint, "resource-group"), "stellar-st-e2erun-00-00");
    assert_eq!(meta(&endpoint, "instance-memory-mb"), "2048");
    assert_eq!(meta(&endpoint, "plan"), "FC1");

    let requests = fake.requests();
    // One token, by the documented client-credentials grant.
    let tokens: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.path.ends_with("/token"))
        .collect();
    assert_eq!(tokens.len(), 1, "the token is cached");
    let token = tokens[0];
    assert_eq!(token.method, "POST");
    assert_eq!(token.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        token.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form: BTreeMap<String, String> = form_pairs(&String::from_utf8_lossy(&token.body))
        .into_iter()
        .collect();
    assert_eq!(
        form,
        BTreeMap::from([
            ("client_id".to_string(), CLIENT_ID.to_string()),
            ("client_secret".to_string(), SECRET.to_string()),
            ("grant_type".to_string(), "client_credentials".to_string()),
            (
                "scope".to_string(),
                "https://management.azure.com/.default".to_string()
            ),
        ])
    );
    // Every ARM call carries the bearer token.
    for r in requests.iter().filter(|r| !r.path.ends_with("/token")) {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{} {}",
            r.method,
            r.path
        );
    }
    let rg = "/resourcegroups/stellar-st-e2erun-00-00";
    let group = "/resourceGroups/stellar-st-e2erun-00-00";
    let storage_account = fake
        .state
        .lock()
        .unwrap()
        .keys
        .keys()
        .next()
        .cloned()
        .unwrap();
    let sa = format!("{group}/providers/Microsoft.Storage/storageAccounts/{storage_account}");
    let site = format!("{group}/providers/Microsoft.Web/sites/{app}");
    let plan = format!("{group}/providers/Microsoft.Web/serverfarms/st-e2erun-00-00-plan");
    let calls = arm_calls(&requests);
    // The sequence, checked piece by piece (poll counts follow the fake's script).
    let kinds: Vec<(String, String)> = calls
        .iter()
        .filter(|(m, p, _)| m != "GET" || !p.to_ascii_lowercase().contains("operationresults"))
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    let want: Vec<(String, String)> = [
        ("GET", "/providers/Microsoft.Web/geoRegions".to_string()),
        ("PUT", rg.to_string()),
        ("PUT", sa.clone()),
        ("GET", sa.clone()),
        (
            "PUT",
            format!("{sa}/blobServices/default/containers/app-package"),
        ),
        ("POST", format!("{sa}/listKeys")),
        ("PUT", plan.clone()),
        ("PUT", site.clone()),
        ("PUT", site.clone()),
        ("GET", site.clone()),
        ("POST", format!("{site}/syncfunctiontriggers")),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p))
    .collect();
    assert_eq!(kinds, want);
    for (m, p, v) in &calls {
        let want = if p.starts_with("/resourcegroups/") && !p.contains("/providers/") {
            "2021-04-01"
        } else if p.contains("Microsoft.Storage")
            || p.starts_with("/operationresults") && v == "2023-05-01"
        {
            "2023-05-01"
        } else if p.starts_with("/operationresults") {
            v.as_str()
        } else {
            "2024-04-01"
        };
        assert_eq!(v, want, "{m} {p}");
    }
    // Storage 202 + Location was polled to its end; the site's 202 + Azure-AsyncOperation too.
    assert!(
        calls
            .iter()
            .any(|(m, p, _)| m == "GET" && p.starts_with("/operationresults/")),
        "{calls:#?}"
    );
    assert!(
        calls
            .iter()
            .any(|(_, p, _)| p.contains("/locations/eastus/operationResults/")),
        "{calls:#?}"
    );
    // 429 + Retry-After: 1 was waited out before the second PUT of the site.
    let site_puts: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with(&format!("/sites/{app}")))
        .collect();
    assert_eq!(site_puts.len(), 2);
    let gap = site_puts[1].at - site_puts[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");

    // Bodies.
    let body_of = |method: &str, suffix: &str| {
        requests
            .iter()
            .rev()
            .find(|r| r.method == method && r.path.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {method} {suffix}"))
            .json()
    };
    let group_body = body_of("PUT", rg);
    assert_eq!(group_body["location"], LOCATION);
    assert_eq!(group_body["tags"]["stellar-run"], "e2erun");
    assert_eq!(group_body["tags"]["stellar-function"], "st-e2erun-00-00");
    let plan_body = body_of("PUT", "/serverfarms/st-e2erun-00-00-plan");
    assert_eq!(
        plan_body["sku"],
        json!({"name": "FC1", "tier": "FlexConsumption"})
    );
    assert_eq!(plan_body["properties"]["reserved"], true);
    assert_eq!(plan_body["kind"], "functionapp");
    let site_body = body_of("PUT", &format!("/sites/{app}"));
    assert_eq!(site_body["kind"], "functionapp,linux");
    assert!(
        site_body["properties"]["serverFarmId"]
            .as_str()
            .unwrap()
            .ends_with("/serverfarms/st-e2erun-00-00-plan")
    );
    let fac = &site_body["properties"]["functionAppConfig"];
    assert_eq!(fac["runtime"], json!({"name": "custom", "version": "1.0"}));
    assert_eq!(fac["scaleAndConcurrency"]["instanceMemoryMB"], 2048);
    assert_eq!(fac["scaleAndConcurrency"]["maximumInstanceCount"], 100);
    assert_eq!(fac["deployment"]["storage"]["type"], "blobContainer");
    assert_eq!(
        fac["deployment"]["storage"]["value"],
        format!("https://{storage_account}.blob.core.windows.net/app-package")
    );
    assert_eq!(
        fac["deployment"]["storage"]["authentication"]["type"],
        "StorageAccountConnectionString"
    );
    let app_settings = site_body["properties"]["siteConfig"]["appSettings"]
        .as_array()
        .unwrap();
    let setting = |name: &str| {
        app_settings
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["value"].as_str())
            .unwrap_or_else(|| panic!("no app setting {name}"))
            .to_string()
    };
    let real_key = key_for(&storage_account, "real");
    assert!(setting("AzureWebJobsStorage").contains(&format!(
        "AccountName={storage_account};AccountKey={real_key}"
    )));
    assert_eq!(
        setting("DEPLOYMENT_STORAGE_CONNECTION_STRING"),
        setting("AzureWebJobsStorage")
    );
    assert_eq!(setting("STELLAR_PROVIDER"), "azure");
    assert_eq!(setting("STELLAR_MEMORY_MB"), "1500");

    // The package reached Azurite byte for byte (read back with Azure's Python SDK).
    let downloaded = work.path().join("downloaded.zip");
    assert!(fake.download_package(&storage_account, &real_key, &downloaded));
    assert_eq!(sha256(&fs_err::read(&downloaded).unwrap()), sha256(&zip));

    // A site without stellar's tag is not listed; ours is (through nextLink paging).
    fake.state.lock().unwrap().resources.insert(
        "/subscriptions/x/resourcegroups/other/providers/microsoft.web/sites/aaa-other".into(),
        json!({"id": "/x", "name": "aaa-other", "type": "Microsoft.Web/sites", "tags": {},
               "properties": {"defaultHostName": "aaa-other.azurewebsites.net"}}),
    );
    let listed = inst.list_apis().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].url, endpoint.url);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.query.contains("skipToken=1")),
        "nextLink followed"
    );

    // Update: new package, 4096 MB instances, new settings.
    fake.clear_requests();
    let (zip2_path, zip2) = write_zip(
        work.path(),
        "app2.zip",
        &b"#!/bin/sh\necho v2\n".repeat(7000),
    );
    let mut update = request("st-e2erun-00-00", 4096, Some(zip2_path));
    update.env = pairs(&[("STELLAR_PROVIDER", "azure"), ("MODE", "two")]);
    let started = Instant::now();
    let updated = inst.update_function(&endpoint.id, &update).await.unwrap();
    let update_time = started.elapsed();
    assert_eq!(updated.url, endpoint.url);
    assert_eq!(meta(&updated, "instance-memory-mb"), "4096");
    assert!(fake.download_package(&storage_account, &real_key, &downloaded));
    assert_eq!(sha256(&fs_err::read(&downloaded).unwrap()), sha256(&zip2));
    let requests = fake.requests();
    let patch = requests.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(
        patch.json()["properties"]["functionAppConfig"]["scaleAndConcurrency"]["instanceMemoryMB"],
        4096
    );
    let settings_put = requests
        .iter()
        .find(|r| r.path.ends_with("/config/appsettings"))
        .unwrap();
    assert_eq!(settings_put.method, "PUT");
    assert_eq!(
        settings_put.param("api-version").as_deref(),
        Some("2024-04-01")
    );
    assert_eq!(settings_put.json()["properties"]["MODE"], "two");
    assert!(
        requests
            .iter()
            .any(|r| r.path.ends_with("/syncfunctiontriggers"))
    );

    // Remove: the resource group's DELETE, polled via Location until done.
    fake.clear_requests();
    let started = Instant::now();
    inst.remove_function(&endpoint.id).await.unwrap();
    let remove_time = started.elapsed();
    assert!(fake.groups().is_empty(), "{:?}", fake.groups());
    let calls = arm_calls(&fake.requests());
    assert_eq!(
        (
            calls[0].0.as_str(),
            calls[0].1.as_str(),
            calls[0].2.as_str()
        ),
        ("DELETE", rg, "2021-04-01")
    );
    assert!(
        calls[1..]
            .iter()
            .all(|(m, p, _)| m == "GET" && p.starts_with("/operationresults/")),
        "{calls:?}"
    );
    let err = inst.remove_function(&endpoint.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    eprintln!(
        "azure adapter against the fakes: deploy {:.2} s (incl. 1 s Retry-After and Azurite start), \
         update {:.2} s, remove {:.2} s; zip {} B / {} B",
        deploy_time.as_secs_f64(),
        update_time.as_secs_f64(),
        remove_time.as_secs_f64(),
        zip.len(),
        zip2.len()
    );
}

#[tokio::test]
async fn azure_adapter_bad_input_is_named_and_leaves_nothing_behind() {
    let fake = FakeAzure::start(Script::default());
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (zip_path, _) = write_zip(work.path(), "app.zip", b"#!/bin/sh\n");
    let deploy_req = || request("st-bad-00-00", 512, Some(zip_path.clone()));

    // Missing subscription: refused in configure, before any request.
    let (_rt, mut inst) = azure_instance(&cache, &fake.hosts()).await;
    let mut no_sub = credentials(SECRET);
    no_sub[0].values.retain(|(k, _)| k != "subscription-id");
    let err = inst
        .configure(&settings(&fake, &[]), &no_sub)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AZURE_SUBSCRIPTION_ID"), "{err}");
    assert!(fake.requests().is_empty());

    // Wrong secret: 401 from the token endpoint, no ARM call, the secret not in the message.
    let (_rt, mut inst) = azure_instance(&cache, &fake.hosts()).await;
    inst.configure(&settings(&fake, &[]), &credentials("not-the-secret"))
        .await
        .unwrap();
    let err = inst.deploy_function(&deploy_req()).await.unwrap_err();
    assert!(
        matches!(provider_error(&err), ProviderError::Unauthorized(m) if m.contains("AADSTS7000215") && m.contains("AZURE_CLIENT_SECRET")),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
    assert!(fake.requests().iter().all(|r| r.path.ends_with("/token")));

    // A location without Flex Consumption: named, nothing created.
    let (_rt, mut inst) = azure_instance(&cache, &fake.hosts()).await;
    inst.configure(
        &settings(&fake, &[("location", "westus")]),
        &credentials(SECRET),
    )
    .await
    .unwrap();
    let err = inst.deploy_function(&deploy_req()).await.unwrap_err();
    assert!(
        matches!(provider_error(&err), ProviderError::Invalid(m) if m.contains("\"westus\" does not offer Flex Consumption") && m.contains("eastus")),
        "{err}"
    );
    assert!(!fake.requests().iter().any(|r| r.method == "PUT"));

    let (_rt, mut inst) = azure_instance(&cache, &fake.hosts()).await;
    inst.configure(&settings(&fake, &[]), &credentials(SECRET))
        .await
        .unwrap();
    let cases: [Case; 4] = [
        (
            Script {
                storage_taken: true,
                ..Script::default()
            },
            "StorageAccountAlreadyTaken",
            |e| matches!(e, ProviderError::Invalid(m) if m.contains("already taken")),
        ),
        (
            Script {
                plan_quota: true,
                ..Script::default()
            },
            "SubscriptionIsOverQuotaForSku",
            |e| matches!(e, ProviderError::Quota(_)),
        ),
        (
            Script {
                site_fails: true,
                ..Script::default()
            },
            "FunctionAppProvisioningFailed",
            |e| matches!(e, ProviderError::Invalid(m) if m.contains("Failed")),
        ),
        (
            Script {
                wrong_key: true,
                ..Script::default()
            },
            "HTTP 403",
            |e| matches!(e, ProviderError::Unauthorized(_)),
        ),
    ];
    for (script, words, kind) in cases {
        fake.set_script(script.clone());
        fake.clear_requests();
        let err = inst.deploy_function(&deploy_req()).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains(words), "{script:?}: {message}");
        assert!(kind(provider_error(&err)), "{script:?}: {err:?}");
        assert!(
            fake.groups().is_empty(),
            "{script:?} left {:?}",
            fake.groups()
        );
        let requests = fake.requests();
        let last_delete = requests.iter().rposition(|r| r.method == "DELETE");
        assert!(last_delete.is_some(), "{script:?}: the group was deleted");
    }
}

fn stellar(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stellar"))
        .current_dir(dir)
        .args(args)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env("AZURE_SUBSCRIPTION_ID", SUB)
        .env("HOME", dir)
        .env("STELLAR_CACHE_DIR", dir.join("cache"))
        .output()
        .unwrap()
}

#[test]
fn stellar_azure_experiment_file_plans_with_the_azure_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../experiments/stellar-compat/azure-burstiness-warm-cold-cdfs-reduced-parallelism.json",
    );
    let output = stellar(&["run", file.to_str().unwrap(), "--dry-run"], dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("adapter (options and grants checked)"),
        "{stdout}"
    );
    assert!(stdout.contains("azure"), "{stdout}");
    assert!(stdout.contains("custom-handler zip"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
}

#[test]
fn stellar_run_on_azure_against_the_fakes_and_the_real_custom_handler() {
    let fake = Arc::new(FakeAzure::start(Script::default()));
    let dir = tempfile::tempdir().unwrap();
    let host = FunctionsHost::start(fake.clone(), dir.path().join("functions-host"));
    // The handler the run packages: this machine's release build of the HTTP measurement
    // function (the Functions image is Linux x86_64 like this one).
    let handler = dir.path().join("stellar-measure-http");
    fs_err::copy(env!("STELLAR_MEASURE_HTTP_BIN"), &handler).unwrap();
    let experiment = json!({
        "Provider": "azure",
        "Stellar": {
            "Seed": 5,
            "FunctionBinary": "stellar-measure-http",
            "ProviderSettings": {
                "location": LOCATION,
                "arm-endpoint": fake.url(),
                "login-endpoint": fake.url(),
                "blob-endpoint": fake.blob_endpoint(),
                "function-url-override": host.url_template(),
                "poll-interval-ms": "20",
                "wait-timeout-s": "60"
            }
        },
        "SubExperiments": [{
            "Title": "warm",
            "Bursts": 5,
            "BurstSizes": [1],
            "IATSeconds": 0.2,
            "IATType": "deterministic",
            "DesiredServiceTimes": ["5ms"],
            "FunctionMemoryMB": 1500,
            "FunctionImageSizeMB": 2
        }]
    });
    let file = dir.path().join("azure.json");
    fs_err::write(&file, serde_json::to_string_pretty(&experiment).unwrap()).unwrap();
    let out = dir.path().join("results");
    let output = stellar(
        &[
            "run",
            file.to_str().unwrap(),
            "--json",
            "-o",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the secret leaked"
    );
    let analysis: Value = serde_json::from_str(&stdout).unwrap();
    let run_dir = Path::new(analysis["run_dir"].as_str().unwrap()).to_owned();

    // Every timed request reached the real handler through the Functions host stand-in.
    let rows = read_latencies(run_dir.join("00-warm/latencies.csv")).unwrap();
    assert_eq!(rows.len(), 5);
    let instance = rows[0].instance_id.clone();
    assert!(
        instance.ends_with("-c1") && instance.starts_with("st-"),
        "{instance}"
    );
    for row in &rows {
        assert!(row.is_ok(), "{row:?}");
        assert_eq!(
            row.instance_id, instance,
            "the container name, not WEBSITE_INSTANCE_ID"
        );
        assert_eq!(
            row.cold,
            Some(row.invocations_on_instance == Some(1)),
            "{row:?}"
        );
        assert!(row.function_spin_ms.unwrap() >= 5.0, "{row:?}");
    }
    assert_eq!(rows.iter().filter(|r| r.cold == Some(true)).count(), 1);
    // The package was padded to FunctionImageSizeMB (checked on what reached Azurite is in
    // the adapter test; here: the journal, removal and the secret).
    let journal = fs_err::read_to_string(run_dir.join("resources.jsonl")).unwrap();
    for event in ["\"creating\"", "\"created\"", "\"removed\""] {
        assert!(journal.contains(event), "{journal}");
    }
    assert!(fake.groups().is_empty(), "{:?}", fake.groups());
    for entry in fs_err::read_dir(&run_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let text = String::from_utf8_lossy(&fs_err::read(&path).unwrap()).into_owned();
            assert!(!text.contains(SECRET), "{}", path.display());
        }
    }
    let log = fs_err::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(log.contains("packaged the Azure custom handler"), "{log}");

    // A crashed run leaves a resource group behind: one journaled and existing, one journaled
    // and never created; `stellar cleanup` deletes the first and reports the second as gone.
    fake.add_group("stellar-st-orphan-00-00");
    let mut journal = fs_err::OpenOptions::new()
        .append(true)
        .open(run_dir.join("resources.jsonl"))
        .unwrap();
    for name in ["st-orphan-00-00", "st-ghost-00-00"] {
        writeln!(
            journal,
            r#"{{"unix_ms":1,"event":"creating","provider":"azure","function":"{name}"}}"#
        )
        .unwrap();
    }
    drop(journal);
    let output = stellar(&["cleanup", run_dir.to_str().unwrap()], dir.path());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("1 removed, 1 already gone, 0 failed"),
        "{text}"
    );
    assert!(fake.groups().is_empty(), "{:?}", fake.groups());
}
