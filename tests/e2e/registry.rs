//! A real container registry for tests: Debian's `docker-registry` (the CNCF distribution
//! registry, 2.8) started on 127.0.0.1 port 0 with filesystem storage in a temp directory,
//! either open or behind htpasswd Basic auth (`htpasswd -B`, apache2-utils). Killed on drop.
//!
//! ```ignore
//! let registry = RunningRegistry::start(true);   // with auth
//! registry.url;                                   // "http://127.0.0.1:41234"
//! registry.authority();                           // "127.0.0.1:41234"
//! (registry.user.as_deref(), registry.password.as_deref()); // Some("stellar"), Some(..)
//! registry.skopeo_creds();                        // ["--creds", "stellar:..."] or []
//! ```
//!
//! The packages come from the README's test command (`apt-get install docker-registry skopeo
//! apache2-utils`); without them the test fails with that hint rather than being skipped.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The install line the README's test command runs.
pub(crate) const INSTALL: &str = "apt-get install -y docker-registry skopeo apache2-utils";

/// A registry process on loopback.
pub(crate) struct RunningRegistry {
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// The htpasswd user (auth only).
    pub(crate) user: Option<String>,
    /// Its password (auth only), random per registry.
    pub(crate) password: Option<String>,
    /// The storage root (blobs and repositories).
    pub(crate) storage: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

/// Fails with the install hint when `tool` is not on PATH.
pub(crate) fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is not installed: run `{INSTALL}` (the README's test command does)"
    );
}

impl RunningRegistry {
    /// Starts a registry, with htpasswd Basic auth when `auth` (user `stellar`).
    pub(crate) fn start(auth: bool) -> Self {
        require("docker-registry");
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = dir.path().join("storage");
        let (user, password) = if auth {
            require("htpasswd");
            let password = format!("pw-{:016x}", rand::random::<u64>());
            let out = Command::new("htpasswd")
                .args(["-Bbn", "stellar", &password])
                .output()
                .expect("run htpasswd");
            assert!(
                out.status.success(),
                "htpasswd: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            fs_err::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
            (Some("stellar".to_string()), Some(password))
        } else {
            (None, None)
        };
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  \
             filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: \
             127.0.0.1:0\n  secret: stellar-test-secret\n",
            storage.display()
        );
        if auth {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: stellar-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs_err::write(&config_path, config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn docker-registry");
        // It logs `listening on 127.0.0.1:<port>` on stderr; keep draining it afterwards.
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on ")
                    && let Some(sender) = tx.take()
                {
                    let addr: String = line[at + "listening on ".len()..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    let _ = sender.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("docker-registry did not report its address within 20 s");
            }
        };
        Self {
            url: format!("http://{addr}"),
            user,
            password,
            storage,
            child,
            _dir: dir,
        }
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn authority(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// skopeo's `--creds user:password` for this registry (empty without auth).
    pub(crate) fn skopeo_creds(&self) -> Vec<String> {
        match (&self.user, &self.password) {
            (Some(u), Some(p)) => vec!["--creds".into(), format!("{u}:{p}")],
            _ => Vec::new(),
        }
    }

    /// Files under the storage root (blobs and upload sessions included), for checks that
    /// nothing was left behind.
    pub(crate) fn stored_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.storage, &mut out);
        out
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
