//! The hub as an emulator for app servers, checked by the official event handler SDK: an app
//! built on `@azure/web-pubsub-express` 1.1.0 (`tests/interop/handler_app.js`) behind the hub,
//! with abuse protection limited to the hub's origin and every signature checked, a connect
//! handler that names the user, puts them in a group and refuses one user, a user-event
//! handler that replies, and connected/disconnected counted; the official JS and Python
//! clients connect through it.
//!
//! Run: `bash scripts/setup-interop.sh && cargo test --test interop_handler_express`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::{Value, json};
use support::DEADLINE;
use support::interop::{Agent, Identity, Sdk};
use tokio::sync::mpsc;
use webpubsub_fleet::hub::{EventHandler, Hub, HubConfig, SystemEvent};

const KEY: &str = "an-access-key-the-app-server-checks-signatures-with";
const HUB: &str = "chat";

/// The app server process, its stdin (closing it ends the app) and its output lines.
struct App {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl App {
    fn spawn() -> App {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let node_dir = root.join("target/interop/node");
        assert!(
            node_dir
                .join("node_modules/@azure/web-pubsub-express/package.json")
                .exists(),
            "@azure/web-pubsub-express is not installed: run `bash scripts/setup-interop.sh` first"
        );
        let mut child = Command::new("node")
            .arg(root.join("tests/interop/handler_app.js"))
            .env("WPS_NODE_DIR", node_dir)
            .env("WPS_HUB", HUB)
            .env("WPS_ACCESS_KEY", KEY)
            .env("WPS_REFUSED_USER", "mallory")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts the app server");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or(json!({"unparsed": line}));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        App {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    async fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| matches(v)) {
            return v.clone();
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) => {
                    self.seen.push(v.clone());
                    if matches(&v) {
                        return v;
                    }
                }
                other => panic!(
                    "the app server never reported {what} ({other:?}); saw {:?}",
                    self.seen
                ),
            }
        }
    }

    fn configure(&mut self, endpoint: &str) {
        let stdin = self.stdin.as_mut().expect("open");
        writeln!(stdin, "{}", json!({ "endpoint": endpoint })).expect("the app reads stdin");
    }
}

impl Drop for App {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_rt::test]
async fn official_clients_through_an_app_built_on_the_official_handler_sdk() {
    let mut app = App::spawn();
    let port = app.expect("listening", |v| v["event"] == "listening").await["port"]
        .as_u64()
        .expect("a port");
    // The SDK's default path, with {hub} as the hub name.
    let handler = EventHandler::new(format!(
        "http://127.0.0.1:{port}/api/webpubsub/hubs/{{hub}}/"
    ))
    .system_events(SystemEvent::ALL);
    let hub = Hub::start(
        HubConfig::new()
            .bind("127.0.0.1:0".parse().expect("address"))
            .workers(1)
            .access_key(KEY)
            .handler(handler),
    )
    .await
    .expect("the hub starts");
    app.configure(&hub.endpoint());
    app.expect("configured", |v| v["event"] == "configured")
        .await;

    let mut js = Agent::spawn(Sdk::Js, "js", &hub, HUB, &Identity::member("js-user"));
    let mut py = Agent::spawn(
        Sdk::PythonSync,
        "py",
        &hub,
        HUB,
        &Identity::member("py-user"),
    );
    js.start().await;
    py.start().await;
    // The connect handler named them.
    assert_eq!(js.seen_of("connected")[0]["userId"], "app-js-user");
    assert_eq!(py.seen_of("connected")[0]["userId"], "app-py-user");
    let connect = app
        .expect("connect", |v| {
            v["event"] == "connect" && v["sub"] == "js-user"
        })
        .await;
    assert!(
        connect["subprotocols"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{connect}"
    );
    for user in ["app-js-user", "app-py-user"] {
        let connected = app
            .expect(user, |v| v["event"] == "connected" && v["userId"] == user)
            .await;
        assert_eq!(
            connected["valid"], true,
            "the signature checks out: {connected}"
        );
    }

    // A user event: the app's reply comes back as a server message; the state its connect
    // answer set came along.
    js.ok(json!({"op": "event", "event": "echo", "data": "from js"}))
        .await;
    let reply = js
        .expect("the echo", |v| v["event"] == "server-message")
        .await;
    assert_eq!(reply["data"], "echo: from js", "{reply}");
    let user_event = app
        .expect("the user event", |v| v["event"] == "user-event")
        .await;
    assert_eq!(user_event["userId"], "app-js-user");
    assert_eq!(user_event["greeting"], "hello js-user", "{user_event}");
    py.ok(json!({"op": "event", "event": "echo", "data": "from py"}))
        .await;
    let reply = py
        .expect("the echo", |v| v["event"] == "server-message")
        .await;
    assert_eq!(reply["data"], "echo: from py", "{reply}");

    // The connect answer's group was joined before the first frame: a REST send to it reaches
    // both (as a server message, which is how the service delivers REST sends).
    py.ok(json!({"op": "server", "to": "group", "target": "app-room", "data": "to the room"}))
        .await;
    for agent in [&mut js, &mut py] {
        agent
            .expect("the room message", |v| {
                v["event"] == "server-message" && v["data"] == "to the room"
            })
            .await;
    }

    // The refused user is refused before the upgrade, with the app's status.
    let mut mallory = Agent::spawn(Sdk::Js, "mallory", &hub, HUB, &Identity::member("mallory"));
    let refused = mallory.call(json!({"op": "start"})).await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(hub.stats().connections_opened, 2);
    mallory.finish().await;

    js.ok(json!({"op": "stop"})).await;
    py.ok(json!({"op": "stop"})).await;
    let last = app
        .expect("two disconnected", |v| {
            v["event"] == "disconnected" && v["disconnected"] == 2
        })
        .await;
    assert_eq!(last["connected"], 2, "{last}");
    assert!(
        !app.seen.iter().any(|v| v["event"] == "bad-signature"),
        "{:?}",
        app.seen
    );
    assert!(hub.stats().event_handlers_refused.is_empty());
    js.finish().await;
    py.finish().await;
    hub.stop().await;
}
