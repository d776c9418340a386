//! The Rust app server layer (`webpubsub_fleet::handler`) behind the local hub: the hub calls a
//! `WebPubSubHandler` served by actix-web, which names users, puts them in groups, refuses one,
//! replies to user events with the state its connect answer set, hears `connected`,
//! `disconnected` and the group presence events; bad requests get a clear 4xx; the official JS
//! client connects through it; `load --scenario app-server` runs a fleet through it.
//!
//! Run: `cargo test --test app_server` (the JS test needs `bash scripts/setup-interop.sh`).

mod support;

use std::net::TcpListener;
use std::sync::Mutex;

use actix_web::{App, HttpServer};
use serde_json::{Value, json};
use support::http::request;
use support::hub::{HUB, start_hub_with};
use support::interop::{Agent, Identity, Sdk};
use support::{eventually, within};
use webpubsub_fleet::client::{Client, ClientOptions, Event, SendOptions};
use webpubsub_fleet::credential::{Credential, TokenOptions, event_signature};
use webpubsub_fleet::handler::{
    ConnectRequest, ConnectResponse, ConnectedRequest, DisconnectedRequest, EventData,
    EventHandlerService, GroupRequest, HandlerOptions, UserEventRequest, UserEventResponse,
    WebPubSubHandler,
};
use webpubsub_fleet::hub::{EventHandler, Hub, SystemEvent};
use webpubsub_fleet::protocol::{Payload, Secret};

const ROOM: &str = "app-room";
const REFUSED: &str = "mallory";

/// Records every event it handles as one JSON line, and decides as the example app does.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Value>>,
}

impl Recorder {
    fn note(&self, line: Value) {
        self.seen.lock().unwrap().push(line);
    }

    fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, event: &str) -> usize {
        self.seen().iter().filter(|v| v["event"] == event).count()
    }
}

impl WebPubSubHandler for Recorder {
    async fn connect(&self, request: ConnectRequest) -> ConnectResponse {
        let sub = request.claims.get("sub").and_then(|s| s.first()).cloned();
        self.note(json!({"event": "connect", "sub": sub, "subprotocols": request.subprotocols}));
        match sub.as_deref() {
            Some(REFUSED) | None => ConnectResponse::refuse(403, "not welcome here"),
            Some(user) => ConnectResponse::accept()
                .user_id(format!("app-{user}"))
                .groups([ROOM])
                .set_state("greeting", format!("hello {user}")),
        }
    }

    async fn user_event(&self, request: UserEventRequest) -> UserEventResponse {
        let greeting = request.context.states.get("greeting").cloned();
        self.note(json!({
            "event": "user",
            "name": request.context.event_name,
            "userId": request.context.user_id,
            "greeting": greeting,
        }));
        match (request.context.event_name.as_str(), &request.data) {
            ("fail", _) => UserEventResponse::error(400, "this event fails"),
            (_, EventData::Text(s)) => UserEventResponse::text(format!(
                "{} / {s}",
                greeting
                    .and_then(|g| g.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ))
            .set_state("replied", true),
            (_, other) => UserEventResponse::json(json!({ "got": format!("{other:?}") })),
        }
    }

    async fn connected(&self, request: ConnectedRequest) {
        self.note(json!({"event": "connected", "userId": request.context.user_id}));
    }

    async fn disconnected(&self, request: DisconnectedRequest) {
        self.note(json!({"event": "disconnected", "userId": request.context.user_id}));
    }

    async fn group_joined(&self, request: GroupRequest) {
        self.note(
            json!({"event": "joined", "group": request.group, "userId": request.context.user_id}),
        );
    }

    async fn group_left(&self, request: GroupRequest) {
        self.note(
            json!({"event": "left", "group": request.group, "userId": request.context.user_id}),
        );
    }
}

/// The app server and the hub that calls it.
struct Pair {
    hub: Hub,
    service: EventHandlerService<Recorder>,
    app_addr: std::net::SocketAddr,
    server: actix_web::dev::ServerHandle,
}

impl Pair {
    /// A hub whose one handler (taking `events` and every user event) is an app server built
    /// on the handler layer with `options` (given the hub's endpoint and key).
    async fn start(
        events: &[SystemEvent],
        options: impl FnOnce(HandlerOptions, &Hub) -> HandlerOptions,
    ) -> Pair {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let app_addr = listener.local_addr().unwrap();
        let handler = EventHandler::new(format!(
            "http://{app_addr}/api/webpubsub/hubs/{{hub}}/{{event}}"
        ))
        .system_events(events.iter().copied());
        let hub = start_hub_with(|c| c.handler(handler)).await;
        let service =
            EventHandlerService::new(options(HandlerOptions::new(HUB), &hub), Recorder::default())
                .expect("valid options");
        let served = service.clone();
        let server = HttpServer::new(move || App::new().configure(|cfg| served.configure(cfg)))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Pair {
            hub,
            service,
            app_addr,
            server: handle,
        }
    }

    fn app(&self) -> &Recorder {
        self.service.app()
    }

    fn client(&self, user: &str) -> Client {
        let credential = Credential::from_connection_string(
            self.hub.connection_string(),
            HUB,
            TokenOptions::new()
                .user_id(user)
                .roles(["webpubsub.joinLeaveGroup"]),
        )
        .unwrap();
        Client::new(credential, ClientOptions::new()).unwrap()
    }

    async fn stop(self) {
        self.hub.stop().await;
        // Not graceful: the hub's idle keep-alive connections would hold a graceful stop.
        self.server.stop(false).await;
    }
}

/// The hub's endpoint and key: what an app behind the service is configured with.
fn guarded(options: HandlerOptions, hub: &Hub) -> HandlerOptions {
    options
        .allowed_endpoint(&hub.endpoint())
        .unwrap()
        .access_key(hub.access_key().clone())
}

#[actix_rt::test]
async fn the_app_names_users_refuses_one_replies_and_hears_every_event() {
    let pair = Pair::start(&SystemEvent::ALL, guarded).await;
    let alice = pair.client("alice");
    let mut events = alice.events().await.unwrap();
    let info = within("alice starts", alice.start()).await.unwrap();
    assert_eq!(info.user_id.as_deref(), Some("app-alice"));

    let refused = within("mallory is refused", pair.client(REFUSED).start()).await;
    let refused = refused.expect_err("the app refuses mallory");
    assert!(refused.to_string().contains("403"), "{refused}");

    // The reply carries the state the connect answer set; the state the reply set rides on.
    alice
        .send_event("greet", "hi", SendOptions::new())
        .await
        .unwrap();
    let reply = within("the reply", async {
        loop {
            if let Some(Event::ServerMessage(m)) = events.recv().await {
                return m.data.clone();
            }
        }
    })
    .await;
    assert_eq!(reply, Payload::Text("hello alice / hi".into()));
    let failed = alice.send_event("fail", "x", SendOptions::new()).await;
    assert!(
        failed.is_err(),
        "an error answer fails the event: {failed:?}"
    );

    // Group presence: the connect answer's group, then a join and a leave of the client's own.
    alice.join_group("extra").await.unwrap();
    alice.leave_group("extra").await.unwrap();
    alice.stop().await.unwrap();
    eventually("the disconnected notification", async || {
        pair.app().count("disconnected") == 1
    })
    .await;
    let seen = pair.app().seen();
    let presence: Vec<(String, String)> = seen
        .iter()
        .filter(|v| v["event"] == "joined" || v["event"] == "left")
        .map(|v| {
            assert_eq!(v["userId"], "app-alice", "{v}");
            (
                v["event"].as_str().unwrap().to_owned(),
                v["group"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pair_of = |e: &str, g: &str| (e.to_owned(), g.to_owned());
    assert_eq!(
        presence,
        vec![
            pair_of("joined", ROOM),
            pair_of("joined", "extra"),
            pair_of("left", "extra")
        ],
        "{seen:?}"
    );
    assert_eq!(pair.app().count("connect"), 2);
    assert_eq!(pair.app().count("connected"), 1, "mallory never connected");
    let user_events: Vec<&Value> = seen.iter().filter(|v| v["event"] == "user").collect();
    assert_eq!(user_events[0]["greeting"], "hello alice");
    assert_eq!(user_events[0]["userId"], "app-alice");
    assert!(pair.hub.stats().event_handlers_refused.is_empty());
    pair.stop().await;
}

#[actix_rt::test]
async fn group_presence_events_go_only_to_a_handler_that_asks_for_them() {
    let pair = Pair::start(&[SystemEvent::Connect, SystemEvent::Disconnected], guarded).await;
    let bob = pair.client("bob");
    bob.start().await.unwrap();
    bob.join_group("extra").await.unwrap();
    bob.stop().await.unwrap();
    eventually("the disconnected notification", async || {
        pair.app().count("disconnected") == 1
    })
    .await;
    assert_eq!(
        pair.app().count("joined") + pair.app().count("left"),
        0,
        "{:?}",
        pair.app().seen()
    );
    pair.stop().await;
}

#[actix_rt::test]
async fn a_hub_whose_origin_or_key_the_app_does_not_know_is_refused() {
    // Abuse protection: the app allows another endpoint only; the hub calls nothing.
    let pair = Pair::start(&[SystemEvent::Connect], |o, hub| {
        o.allowed_endpoint("http://other.example:8080")
            .unwrap()
            .access_key(hub.access_key().clone())
    })
    .await;
    let refused = pair
        .client("alice")
        .start()
        .await
        .expect_err("no handler allows the hub");
    assert!(refused.to_string().contains("502"), "{refused}");
    let stats = pair.hub.stats();
    let why = stats
        .event_handlers_refused
        .values()
        .next()
        .expect("the hub says why")
        .clone();
    assert!(why.contains("does not allow the origin"), "{why}");
    assert_eq!(pair.app().count("connect"), 0);
    pair.stop().await;

    // Signatures: the app checks another key; every event is refused with 401.
    let pair = Pair::start(&[SystemEvent::Connect], |o, hub| {
        o.allowed_endpoint(&hub.endpoint())
            .unwrap()
            .access_key(Secret::new("a-key-the-hub-does-not-sign-with-at-all"))
    })
    .await;
    let refused = pair
        .client("alice")
        .start()
        .await
        .expect_err("bad signature");
    assert!(refused.to_string().contains("401"), "{refused}");
    assert_eq!(pair.app().count("connect"), 0);
    pair.stop().await;
}

#[actix_rt::test]
async fn bad_requests_get_a_clear_4xx_and_never_reach_the_app() {
    let pair = Pair::start(&[SystemEvent::Connect], |o, hub| {
        guarded(o.max_body(1024), hub)
    })
    .await;
    let origin = pair.hub.endpoint().trim_start_matches("http://").to_owned();
    let signature = event_signature(pair.hub.access_key(), "c1");
    let path = "/api/webpubsub/hubs/chat/connect";
    let event = |extra: &[(&'static str, &str)]| {
        let mut headers: Vec<(&str, String)> = vec![
            ("ce-awpsversion", "1.0".into()),
            ("WebHook-Request-Origin", origin.clone()),
            ("ce-type", "azure.webpubsub.sys.connect".into()),
            ("ce-hub", HUB.into()),
            ("ce-connectionId", "c1".into()),
            ("ce-signature", signature.clone()),
            ("Content-Type", "application/json".into()),
        ];
        for (name, value) in extra {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name, (*value).to_owned()));
        }
        headers
    };
    let send = async |method: &str, headers: Vec<(&str, String)>, body: &[u8]| {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        request(pair.app_addr, method, path, &headers, body).await
    };

    let ok = send("POST", event(&[]), br#"{"claims":{"sub":["carol"]}}"#).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.json()["userId"], "app-carol");
    assert!(ok.header("ce-connectionState").is_some(), "{ok:?}");

    // What is wrong, the request's headers and body, the status and a word of its reason.
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "garbage body",
            event(&[]),
            b"\x00not json".to_vec(),
            400,
            "not JSON",
        ),
        (
            "claims of the wrong shape",
            event(&[]),
            br#"{"claims":{"sub":"x"}}"#.to_vec(),
            400,
            "not what the service sends",
        ),
        (
            "no ce-awpsversion",
            event(&[])
                .into_iter()
                .filter(|(n, _)| *n != "ce-awpsversion")
                .collect(),
            b"{}".to_vec(),
            400,
            "ce-awpsversion",
        ),
        (
            "wrong signature",
            event(&[("ce-signature", "sha256=00ff")]),
            b"{}".to_vec(),
            401,
            "ce-signature",
        ),
        (
            "another origin",
            event(&[("WebHook-Request-Origin", "evil.example")]),
            b"{}".to_vec(),
            403,
            "not allowed",
        ),
        (
            "unknown type",
            event(&[("ce-type", "azure.webpubsub.sys.reboot")]),
            b"{}".to_vec(),
            400,
            "unknown ce-type",
        ),
        (
            "too large",
            event(&[]),
            vec![b' '; 2048],
            413,
            "1024-byte limit",
        ),
    ];
    for (what, headers, body, status, says) in cases {
        let r = send("POST", headers, &body).await;
        assert_eq!(r.status, status, "{what}: {r:?}");
        assert!(r.body.contains(says), "{what}: {}", r.body);
    }
    let get = send("GET", Vec::new(), b"").await;
    assert_eq!(get.status, 405, "{get:?}");

    // The abuse-protection handshake names the allowed origin; without an origin, 400.
    let preflight = send(
        "OPTIONS",
        vec![
            ("ce-awpsversion", "1.0".into()),
            ("WebHook-Request-Origin", origin.clone()),
        ],
        b"",
    )
    .await;
    assert_eq!(preflight.status, 200);
    assert_eq!(
        preflight.header("WebHook-Allowed-Origin"),
        Some(origin.clone())
    );
    let bare = send("OPTIONS", vec![("ce-awpsversion", "1.0".into())], b"").await;
    assert_eq!(bare.status, 400, "{bare:?}");
    assert_eq!(
        pair.app().count("connect"),
        1,
        "only the good request reached the app"
    );
    pair.stop().await;
}

#[actix_rt::test]
async fn the_official_js_client_connects_through_the_hub_to_the_rust_app() {
    let pair = Pair::start(&SystemEvent::ALL, guarded).await;
    let mut js = Agent::spawn(Sdk::Js, "js", &pair.hub, HUB, &Identity::member("js-user"));
    js.start().await;
    assert_eq!(js.seen_of("connected")[0]["userId"], "app-js-user");
    js.ok(json!({"op": "event", "event": "greet", "data": "from js"}))
        .await;
    let reply = js
        .expect("the reply", |v| v["event"] == "server-message")
        .await;
    assert_eq!(reply["data"], "hello js-user / from js", "{reply}");
    js.ok(json!({"op": "stop"})).await;
    js.finish().await;
    eventually("the disconnected notification", async || {
        pair.app().count("disconnected") == 1
    })
    .await;
    let connect = pair
        .app()
        .seen()
        .into_iter()
        .find(|v| v["event"] == "connect")
        .unwrap();
    assert!(
        connect["subprotocols"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{connect}"
    );
    pair.stop().await;
}

#[test]
fn load_app_server_runs_a_fleet_through_the_app_and_counts_its_calls() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_webpubsub-fleet"))
        .args([
            "load",
            "--scenario",
            "app-server",
            "--clients",
            "20",
            "--group-size",
            "5",
        ])
        .args([
            "--duration",
            "2s",
            "--max-loss",
            "0",
            "--seed",
            "7",
            "--json",
        ])
        .arg(&json)
        .env_remove("WebPubSubConnectionString")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("app server: 20 connect calls (20 admitted)"),
        "{stdout}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let app = &report["app_server"];
    assert_eq!(app["connect_calls"], 20, "{app}");
    assert_eq!(app["connected"], 20, "{app}");
    // Every echo the clients got back was a reply of the app server, and none was lost.
    let sent = report["messages"]["sent"].as_u64().unwrap();
    assert!(sent > 0, "{report}");
    assert_eq!(
        report["messages"]["delivered"].as_u64(),
        Some(sent),
        "{report}"
    );
    assert_eq!(app["user_event_replies"].as_u64(), Some(sent), "{app}");
}
