//! An app server (the service's event handler) on actix-web, built on
//! `webpubsub_fleet::handler`, the Rust counterpart of `@azure/web-pubsub-express`: its
//! `connect` handler names the user (`app-<token user>`), puts them in the group `app-room`
//! and refuses the user `mallory`; it answers the user event `greet` with a text reply that
//! uses the connection state its `connect` answer set; it counts `connected` and
//! `disconnected`. Abuse protection allows the hub's endpoint only, and every event's
//! signature is checked against the hub's access key.
//!
//! Run against the local hub (two terminals; README: "Run your app server against the local
//! hub"):
//! `cargo run -- hub --config examples/app_server_hub.toml` (its first line is the connection
//! string), then `WebPubSubConnectionString='<that line>' cargo run --example app_server`,
//! which serves the hub `chat` at http://127.0.0.1:3000/api/webpubsub/hubs/chat/ and shows its
//! counts at http://127.0.0.1:3000/stats; Ctrl-C stops it.
//!
//! `cargo run --example app_server -- --once` starts a hub in the process whose handler is
//! this app, connects clients through it (one refused), checks the user id, the group, the
//! reply and the counts, and exits (used to check that the example works).

use std::error::Error;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use webpubsub_fleet::client::{Client, ClientOptions, Event, SendOptions};
use webpubsub_fleet::credential::{ConnectionString, Credential, TokenOptions};
use webpubsub_fleet::handler::{
    ConnectRequest, ConnectResponse, ConnectedRequest, DisconnectedRequest, EventData,
    EventHandlerService, HandlerOptions, UserEventRequest, UserEventResponse, WebPubSubHandler,
};
use webpubsub_fleet::hub::{EventHandler, Hub, HubConfig, SystemEvent};
use webpubsub_fleet::protocol::Payload;

mod support;

const HUB: &str = "chat";
const ROOM: &str = "app-room";
const REFUSED: &str = "mallory";

/// The application: what it decides, and what it counted.
#[derive(Default)]
struct ChatApp {
    connects: AtomicU64,
    connected: AtomicU64,
    disconnected: AtomicU64,
    replies: AtomicU64,
}

impl WebPubSubHandler for ChatApp {
    async fn connect(&self, request: ConnectRequest) -> ConnectResponse {
        self.connects.fetch_add(1, Ordering::Relaxed);
        // The token's user id is the `sub` claim, as every claim an array of strings.
        let Some(user) = request.claims.get("sub").and_then(|s| s.first()) else {
            return ConnectResponse::refuse(401, "sign in first: the token names no user");
        };
        if user == REFUSED {
            return ConnectResponse::refuse(403, format!("{user} is not welcome here"));
        }
        ConnectResponse::accept()
            .user_id(format!("app-{user}"))
            .groups([ROOM])
            .roles([format!("webpubsub.sendToGroup.{ROOM}")])
            .set_state("greeting", format!("hello {user}"))
    }

    async fn user_event(&self, request: UserEventRequest) -> UserEventResponse {
        if request.context.event_name != "greet" {
            return UserEventResponse::error(400, "this app knows the event `greet` only");
        }
        let greeting = request
            .context
            .states
            .get("greeting")
            .and_then(|g| g.as_str());
        let said = match &request.data {
            EventData::Text(s) => s.clone(),
            other => format!("{other:?}"),
        };
        self.replies.fetch_add(1, Ordering::Relaxed);
        UserEventResponse::text(format!("{} (you said {said})", greeting.unwrap_or("hello")))
    }

    async fn connected(&self, request: ConnectedRequest) {
        self.connected.fetch_add(1, Ordering::Relaxed);
        tracing::info!(user = ?request.context.user_id, "connected");
    }

    async fn disconnected(&self, request: DisconnectedRequest) {
        self.disconnected.fetch_add(1, Ordering::Relaxed);
        tracing::info!(user = ?request.context.user_id, reason = ?request.reason, "disconnected");
    }
}

impl ChatApp {
    fn counts(&self) -> serde_json::Value {
        serde_json::json!({
            "connects": self.connects.load(Ordering::Relaxed),
            "connected": self.connected.load(Ordering::Relaxed),
            "disconnected": self.disconnected.load(Ordering::Relaxed),
            "replies": self.replies.load(Ordering::Relaxed),
        })
    }
}

/// Serves `handler` (and `/stats`) on `listener` with one worker.
fn serve(
    handler: EventHandlerService<ChatApp>,
    listener: TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    Ok(HttpServer::new(move || {
        let stats = handler.clone();
        App::new().configure(|cfg| handler.configure(cfg)).route(
            "/stats",
            web::get().to(move || {
                let counts = stats.app().counts();
                async move { HttpResponse::Ok().json(counts) }
            }),
        )
    })
    .workers(1)
    .listen(listener)?
    .run())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_logging();
    if std::env::args().any(|a| a == "--once") {
        return once().await;
    }
    let options = HandlerOptions::new(HUB);
    let options = match std::env::var("WebPubSubConnectionString") {
        Ok(s) => {
            let cs = ConnectionString::parse(&s)?;
            options
                .allowed_endpoint(cs.endpoint_str())?
                .access_key(cs.access_key().clone())
        }
        Err(_) => {
            eprintln!(
                "WebPubSubConnectionString is not set: every origin is allowed and signatures are not checked"
            );
            options
        }
    };
    let handler = EventHandlerService::new(options, ChatApp::default())?;
    println!(
        "app server for hub `{HUB}` at http://127.0.0.1:3000{}{{event}}, counts at /stats",
        handler.path()
    );
    serve(handler, TcpListener::bind("127.0.0.1:3000")?)?.await?;
    Ok(())
}

/// The whole loop in one process: hub, app server, clients; fails if anything is off.
async fn once() -> Result<(), Box<dyn Error>> {
    // The hub needs the app's URL and the app needs the hub's endpoint: bind the app first.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let app_port = listener.local_addr()?.port();
    let handler = EventHandler::new(format!(
        "http://127.0.0.1:{app_port}/api/webpubsub/hubs/{{hub}}/{{event}}"
    ))
    .hub(HUB)
    .system_events([
        SystemEvent::Connect,
        SystemEvent::Connected,
        SystemEvent::Disconnected,
    ]);
    let hub = Hub::start(
        HubConfig::new()
            .bind("127.0.0.1:0".parse()?)
            .handler(handler),
    )
    .await?;
    let service = EventHandlerService::new(
        HandlerOptions::new(HUB)
            .allowed_endpoint(&hub.endpoint())?
            .access_key(hub.access_key().clone()),
        ChatApp::default(),
    )?;
    let app = service.clone();
    let server = serve(service, listener)?;
    let server_handle = server.handle();
    actix_web::rt::spawn(server);
    println!("hub at {}, app server on port {app_port}", hub.endpoint());

    let client = |user: &str| -> Result<Client, Box<dyn Error>> {
        let credential = Credential::from_connection_string(
            hub.connection_string(),
            HUB,
            TokenOptions::new().user_id(user),
        )?;
        Ok(Client::new(credential, ClientOptions::new())?)
    };
    let alice = client("alice")?;
    let bob = client("bob")?;
    let mut alice_events = alice.events().await?;
    let info = alice.start().await?;
    check(
        info.user_id.as_deref() == Some("app-alice"),
        format!("the app names alice app-alice, got {:?}", info.user_id),
    )?;
    bob.start().await?;
    let refused = client(REFUSED)?.start().await;
    check(
        refused.is_err(),
        format!("the app refuses {REFUSED}, got {refused:?}"),
    )?;
    println!("alice is {:?}; {REFUSED} refused", info.user_id);

    // Bob's connect answer gave him the right to send to the room, which alice was put in.
    bob.send_to_group(ROOM, "hi room", SendOptions::new())
        .await?;
    alice
        .send_event("greet", "hi app", SendOptions::new())
        .await?;
    let (mut room, mut reply) = (None, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while room.is_none() || reply.is_none() {
        let event = tokio::time::timeout_at(deadline, alice_events.recv())
            .await
            .map_err(|_| "alice did not get the room message and the reply within 10 s")?;
        match event {
            Some(Event::GroupMessage(m)) if m.group == ROOM => room = Some(m.data.clone()),
            Some(Event::ServerMessage(m)) => reply = Some(m.data.clone()),
            Some(_) => {}
            None => return Err("alice's event stream ended".into()),
        }
    }
    println!("alice got {room:?} in {ROOM} and the reply {reply:?}");
    check(
        reply == Some(Payload::Text("hello alice (you said hi app)".into())),
        format!("the reply uses the state set on connect, got {reply:?}"),
    )?;

    alice.stop().await?;
    bob.stop().await?;
    let counts = || app.app().counts();
    let expected =
        serde_json::json!({"connects": 3, "connected": 2, "disconnected": 2, "replies": 1});
    while counts() != expected {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("counts {} instead of {expected}", counts()).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("app counts: {}", counts());
    // The hub first: a graceful app server stop would wait for its idle keep-alive connections.
    hub.stop().await;
    server_handle.stop(false).await;
    Ok(())
}

fn check(ok: bool, what: String) -> Result<(), Box<dyn Error>> {
    if ok { Ok(()) } else { Err(what.into()) }
}
