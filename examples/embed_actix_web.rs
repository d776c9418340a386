//! Embedding clients in an actix-web application: the app holds a few Web PubSub clients in
//! its state and publishes through them from an HTTP endpoint; every client is in the group, so
//! each published message is received by all of them, and `/stats` shows the counts.
//!
//! Run: `cargo run --example embed_actix_web` then
//! `curl -X POST --data 'hello' http://127.0.0.1:8088/publish/news` and
//! `curl http://127.0.0.1:8088/stats`; Ctrl-C stops it.
//! `cargo run --example embed_actix_web -- --once` publishes once through its own endpoint,
//! checks that every client received it, and exits (used to check that the example works).
//!
//! Targets `WebPubSubConnectionString` when set, else a local hub in the process.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use webpubsub_fleet::client::{Client, ClientOptions, Event, EventKind, SendOptions};
use webpubsub_fleet::credential::{Credential, TokenOptions};

mod support;

const GROUP: &str = "news";
const CLIENTS: usize = 3;

struct AppState {
    clients: Vec<Client>,
    next: AtomicUsize,
    received: Arc<AtomicU64>,
}

async fn publish(
    state: web::Data<AppState>,
    group: web::Path<String>,
    body: String,
) -> HttpResponse {
    // Round robin over the clients: each is one simulated user of the app.
    let i = state.next.fetch_add(1, Ordering::Relaxed) % state.clients.len();
    match state.clients[i]
        .send_to_group(group.into_inner(), body, SendOptions::new())
        .await
    {
        Ok(ack) => HttpResponse::Accepted().json(
            serde_json::json!({"client": i, "ackId": ack.ack_id, "duplicated": ack.duplicated}),
        ),
        // The error says what went wrong and carries the ack id to retry with.
        Err(e) => HttpResponse::BadGateway()
            .json(serde_json::json!({"error": e.to_string(), "ackId": e.ack_id()})),
    }
}

async fn stats(state: web::Data<AppState>) -> HttpResponse {
    let mut clients = Vec::new();
    for c in &state.clients {
        if let Ok(s) = c.status().await {
            clients.push(serde_json::json!({
                "state": format!("{:?}", s.state),
                "connectionId": s.connection_id,
                "groups": s.groups,
                "delivered": s.counters.delivered,
            }));
        }
    }
    HttpResponse::Ok().json(serde_json::json!({
        "received": state.received.load(Ordering::Relaxed),
        "clients": clients,
    }))
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_logging();
    let once = std::env::args().any(|a| a == "--once");
    let (connection_string, _local_hub) = support::target().await?;
    let received = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let credential = Credential::from_connection_string(
            connection_string.clone(),
            "embedded",
            TokenOptions::new()
                .user_id(format!("web-user-{i}"))
                .roles(["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]),
        )?;
        let client = Client::new(credential, ClientOptions::new().with_index(i as u64))?;
        let counter = received.clone();
        client
            .subscribe(EventKind::GroupMessage, move |event| {
                if let Event::GroupMessage(m) = event {
                    counter.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(group = %m.group, "received");
                }
            })
            .await?;
        client.start().await?;
        client.join_group(GROUP).await?;
        clients.push(client);
    }
    let state = web::Data::new(AppState {
        clients: clients.clone(),
        next: AtomicUsize::new(0),
        received: received.clone(),
    });
    let address = if once {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:8088"
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/publish/{group}", web::post().to(publish))
            .route("/stats", web::get().to(stats))
    })
    .workers(1)
    .bind(address)?;
    let port = server.addrs()[0].port();
    let server = server.run();
    println!("listening on http://127.0.0.1:{port}: POST /publish/{GROUP}, GET /stats");
    if !once {
        server.await?;
    } else {
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let response = awc::Client::new()
            .post(format!("http://127.0.0.1:{port}/publish/{GROUP}"))
            .send_body("hello from the HTTP endpoint")
            .await?
            .body()
            .await?;
        println!(
            "POST /publish/{GROUP} -> {}",
            String::from_utf8_lossy(&response)
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while received.load(Ordering::Relaxed) < CLIENTS as u64 {
            if tokio::time::Instant::now() > deadline {
                return Err("not every client received the message within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("every one of the {CLIENTS} clients received it");
        handle.stop(true).await;
    }
    for c in &clients {
        c.stop().await?;
    }
    Ok(())
}
