//! Shared by the interop tests (`tests/interop_*.rs`): spawning the official-SDK agents of
//! `tests/interop/` and reading what they observe, with a deadline on every wait.
//!
//! An agent is one script process driving one official client (and the official server SDK of
//! its language). It takes its settings from the environment, its commands as JSON lines on
//! stdin, and prints one JSON object per observation on stdout (see `agent_common.py`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use webpubsub_fleet::hub::{Hub, HubStats};

use super::{DEADLINE, eventually};

/// The agents' own deadline: they exit on their own past it, whatever they wait for.
const AGENT_DEADLINE_SECS: &str = "60";

const SETUP_HINT: &str = "run `bash scripts/setup-interop.sh` from the repository root first \
     (it installs the pinned official Python and JS SDKs into target/interop)";

/// The repository root: `cargo test` names it at run time, which stays right when a test
/// binary is shared between checkouts through one `CARGO_TARGET_DIR`.
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn require(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "the interop environment is missing ({what}: {} not found): {SETUP_HINT}",
        path.display()
    );
}

/// The venv's Python, after checking the official client SDK is installed in it.
fn python() -> PathBuf {
    let venv = root().join("target/interop/venv");
    let python = venv.join("bin/python");
    require(&python, "the Python venv");
    let has_client = std::fs::read_dir(venv.join("lib"))
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .any(|dir| {
            dir.path()
                .join("site-packages/azure/messaging/webpubsubclient/aio")
                .is_dir()
        });
    assert!(
        has_client,
        "the interop environment is missing (azure-messaging-webpubsubclient is not in {}): {SETUP_HINT}",
        venv.display()
    );
    python
}

/// Node, after checking the official JS SDKs are installed.
fn node() -> (PathBuf, PathBuf) {
    let dir = root().join("target/interop/node");
    require(
        &dir.join("node_modules/@azure/web-pubsub-client/package.json"),
        "@azure/web-pubsub-client",
    );
    require(
        &dir.join("node_modules/@azure/web-pubsub/package.json"),
        "@azure/web-pubsub",
    );
    (PathBuf::from("node"), dir)
}

/// Which official SDK an agent drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sdk {
    /// `azure-messaging-webpubsubclient`, sync API (`tests/interop/py_sync_client.py`).
    PythonSync,
    /// `azure-messaging-webpubsubclient`, `aio` API (`tests/interop/py_aio_client.py`).
    PythonAio,
    /// `@azure/web-pubsub-client` (`tests/interop/js_client.js`).
    Js,
}

impl Sdk {
    /// Whether callbacks may print out of order: the Python sync client runs every callback
    /// on a thread of its own, so only sequence ids give the order of arrival there.
    pub fn callbacks_unordered(self) -> bool {
        self == Sdk::PythonSync
    }
}

/// What an agent's client is: its token's user and roles.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    /// The token's `sub`.
    pub user: Option<String>,
    /// The token's roles.
    pub roles: Vec<String>,
}

impl Identity {
    /// A user who may join, leave and publish to any group.
    pub fn member(user: &str) -> Identity {
        Identity {
            user: Some(user.to_owned()),
            roles: vec![
                "webpubsub.joinLeaveGroup".to_owned(),
                "webpubsub.sendToGroup".to_owned(),
            ],
        }
    }

    /// A user with no role at all.
    pub fn without_roles(user: &str) -> Identity {
        Identity {
            user: Some(user.to_owned()),
            roles: Vec::new(),
        }
    }
}

/// Hides what must never reach a test log: tokens in URLs, and the key.
fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), "[REDACTED]");
    }
    for param in ["access_token=", "awps_reconnection_token="] {
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find(param) {
            let (head, tail) = rest.split_at(at + param.len());
            result.push_str(head);
            result.push_str("[REDACTED]");
            let end = tail
                .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
                .unwrap_or(tail.len());
            rest = &tail[end..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// One running agent. Dropping it kills the process if it is still running.
pub struct Agent {
    /// A name for messages (`js`, `py-sync`, ...).
    pub name: String,
    /// The SDK it drives.
    pub sdk: Sdk,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Every line read so far, in order.
    pub seen: Vec<Value>,
    /// Lines read but not yet matched by an expectation.
    pending: Vec<Value>,
    stderr: Arc<Mutex<String>>,
    secrets: Vec<String>,
}

impl Agent {
    /// Starts an agent for `hub`'s hub `hub_name`, with the given identity.
    pub fn spawn(sdk: Sdk, name: &str, hub: &Hub, hub_name: &str, identity: &Identity) -> Agent {
        let dir = root().join("tests/interop");
        let mut command = match sdk {
            Sdk::PythonSync | Sdk::PythonAio => {
                let script = if sdk == Sdk::PythonSync {
                    "py_sync_client.py"
                } else {
                    "py_aio_client.py"
                };
                let mut c = Command::new(python());
                c.arg(dir.join(script))
                    .env("PYTHONUNBUFFERED", "1")
                    // No __pycache__ in the source tree.
                    .env("PYTHONDONTWRITEBYTECODE", "1")
                    // The sync client can miss the wake-up of an ack or of the socket opening
                    // and notice it only at its timeout (see agent_common.py): keep that short.
                    // The local hub answers in milliseconds, so 2 s never cuts a real wait.
                    .env("WPS_SDK_WAIT_SECS", "2");
                c
            }
            Sdk::Js => {
                let (node, node_dir) = node();
                let mut c = Command::new(node);
                c.arg(dir.join("js_client.js"))
                    .env("WPS_NODE_DIR", node_dir);
                c
            }
        };
        let connection_string = hub.connection_string().expose().to_owned();
        command
            .env("WPS_CONNECTION_STRING", &connection_string)
            .env("WPS_HUB", hub_name)
            .env("WPS_USER", identity.user.clone().unwrap_or_default())
            .env("WPS_ROLES", identity.roles.join(","))
            .env("WPS_DEADLINE_SECS", AGENT_DEADLINE_SECS)
            .env("WPS_TIMEOUT_SECS", "10")
            // The SDKs' own logging could print URLs with tokens.
            .env_remove("AZURE_LOG_LEVEL")
            .env_remove("DEBUG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start the {name} agent ({sdk:?}): {e}; {SETUP_HINT}")
        });

        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let agent_name = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        if tx.send(value).is_err() {
                            break;
                        }
                    }
                    Err(_) => {
                        let _ = tx
                            .send(json!({"event": "unparsed", "agent": agent_name, "line": line}));
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().expect("stderr is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        let stdin = child.stdin.take();
        let key = hub.access_key().expose().to_owned();
        let mut agent = Agent {
            name: name.to_owned(),
            sdk,
            child,
            stdin,
            lines,
            seen: Vec::new(),
            pending: Vec::new(),
            stderr,
            secrets: vec![connection_string, key],
        };
        agent.sync_expect("ready", |v| v["event"] == "ready");
        agent
    }

    /// Sends one command.
    pub fn send(&mut self, command: Value) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        let line = format!("{command}\n");
        if let Err(e) = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
        {
            panic!(
                "{}: cannot send {command}: {e}\n{}",
                self.name,
                self.report()
            );
        }
    }

    /// What the agent printed so far, and its stderr, for a failure message.
    pub fn report(&self) -> String {
        let seen: Vec<String> = self.seen.iter().map(Value::to_string).collect();
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let tail: String = stderr
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        redact(
            &format!(
                "--- {} ({:?}) printed:\n{}\n--- its stderr (last lines):\n{}",
                self.name,
                self.sdk,
                seen.join("\n"),
                tail
            ),
            &self.secrets,
        )
    }

    fn take_pending(&mut self, matches: &mut impl FnMut(&Value) -> bool) -> Option<Value> {
        let at = self.pending.iter().position(matches)?;
        Some(self.pending.remove(at))
    }

    /// Waits (asynchronously) for the first unmatched line that `matches`, up to [`DEADLINE`].
    pub async fn expect(&mut self, what: &str, mut matches: impl FnMut(&Value) -> bool) -> Value {
        if let Some(v) = self.take_pending(&mut matches) {
            return v;
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) => {
                    self.seen.push(v.clone());
                    if matches(&v) {
                        return v;
                    }
                    self.pending.push(v);
                }
                Ok(None) => panic!("{}: exited before {what}\n{}", self.name, self.report()),
                Err(_) => panic!(
                    "{}: no {what} within {DEADLINE:?}\n{}",
                    self.name,
                    self.report()
                ),
            }
        }
    }

    /// As [`Agent::expect`], blocking the calling thread (for use before any runtime work).
    fn sync_expect(&mut self, what: &str, mut matches: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.lines.try_recv() {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if matches(&v) {
                        return v;
                    }
                    self.pending.push(v);
                }
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    panic!("{}: exited before {what}\n{}", self.name, self.report())
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    assert!(
                        Instant::now() < deadline,
                        "{}: no {what} within {DEADLINE:?}\n{}",
                        self.name,
                        self.report()
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// Runs one acknowledged command and returns its `result` line.
    pub async fn call(&mut self, mut command: Value) -> Value {
        let tag = format!("t{}", next_tag());
        command["tag"] = json!(tag);
        let op = command["op"].clone();
        self.send(command.clone());
        self.expect(&format!("the result of {command}"), |v| {
            v["event"] == "result" && v["op"] == op && v["tag"] == json!(tag)
        })
        .await
    }

    /// Runs one command that must succeed; returns its result.
    pub async fn ok(&mut self, command: Value) -> Value {
        let result = self.call(command.clone()).await;
        assert_eq!(
            result["ok"],
            json!(true),
            "{}: {command} failed: {result}\n{}",
            self.name,
            self.report()
        );
        result
    }

    /// Starts the client and waits for its `connected` event; returns the connection id.
    pub async fn start(&mut self) -> String {
        self.ok(json!({"op": "start"})).await;
        let connected = self
            .expect("connected", |v| v["event"] == "connected")
            .await;
        connected["connectionId"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: connected without an id: {connected}", self.name))
            .to_owned()
    }

    /// The client's current connection id and state, as the SDK holds them.
    pub async fn status(&mut self) -> (Option<String>, String) {
        self.send(json!({"op": "status"}));
        let status = self.expect("status", |v| v["event"] == "status").await;
        (
            status["connectionId"].as_str().map(str::to_owned),
            status["state"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Every line of this event kind seen so far (matched or not).
    pub fn seen_of(&self, event: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter(|v| v["event"] == event)
            .cloned()
            .collect()
    }

    /// Waits until a data message (group or server) carrying `marker` arrived and every
    /// sequence id from 1 up to the marker's is present, so nothing sent before it is still
    /// on its way; returns the data messages up to the marker in sequence order.
    ///
    /// Valid for one connection's life (sequence ids restart on a new connection).
    pub async fn data_until(&mut self, marker: &str) -> Vec<Value> {
        let is_data = |v: &Value| v["event"] == "group-message" || v["event"] == "server-message";
        let marker_value = json!(marker);
        let marker_line = self
            .expect(&format!("a message with data {marker:?}"), |v| {
                is_data(v) && v["data"] == marker_value
            })
            .await;
        let upto = marker_line["sequenceId"]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: no sequence id on {marker_line}", self.name));
        loop {
            let by_seq: BTreeMap<u64, Value> = self
                .seen
                .iter()
                .filter(|v| is_data(v))
                .filter_map(|v| v["sequenceId"].as_u64().map(|s| (s, v.clone())))
                .filter(|(s, _)| *s <= upto)
                .collect();
            if by_seq.len() as u64 == upto {
                return by_seq.into_values().collect();
            }
            // Some earlier message is still being printed (the Python sync client's callbacks
            // run on threads of their own): wait for the next line.
            let name = self.name.clone();
            self.expect(
                &format!("{name}: every message up to sequence id {upto}"),
                |v| is_data(v),
            )
            .await;
        }
    }

    /// Asks the agent to exit, waits for it to do so on its own, and checks it exited cleanly.
    /// With `INTEROP_VERBOSE` set, prints what it observed first.
    pub async fn finish(mut self) {
        if std::env::var_os("INTEROP_VERBOSE").is_some() {
            eprintln!("{}", self.report());
        }
        self.send(json!({"op": "exit"}));
        let exit = self.expect("exit", |v| v["event"] == "exit").await;
        assert_eq!(
            exit["reason"],
            "exit",
            "{}: {exit}\n{}",
            self.name,
            self.report()
        );
        drop(self.stdin.take());
        let status = self.wait_exit().await;
        assert!(
            status.success(),
            "{}: exited with {status:?}\n{}",
            self.name,
            self.report()
        );
    }

    async fn wait_exit(&mut self) -> ExitStatus {
        let name = self.name.clone();
        eventually(format!("{name} to exit"), async || {
            self.child.try_wait().ok().flatten()
        })
        .await
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn next_tag() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The data of each message, in the order given.
pub fn datas(messages: &[Value]) -> Vec<Value> {
    messages.iter().map(|m| m["data"].clone()).collect()
}

/// Waits until `condition` holds for the hub's counters.
pub async fn until_stats(hub: &Hub, what: &str, condition: impl Fn(&HubStats) -> bool) -> HubStats {
    eventually(format!("the hub's counters: {what}"), async || {
        let stats = hub.stats();
        if condition(&stats) {
            Ok(stats)
        } else {
            Err(format!("{stats:?}"))
        }
    })
    .await
}
