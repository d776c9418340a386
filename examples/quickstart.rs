//! Quick start, as in the official samples: subscribe, join a group, send text, JSON and
//! binary messages, print what arrives, stop.
//!
//! Run: `cargo run --example quickstart`
//!
//! With the `WebPubSubConnectionString` environment variable set (the name the official
//! samples use) it talks to that service; otherwise it starts a local hub in the process.

use std::error::Error;
use std::time::Duration;

use webpubsub_fleet::client::{Client, ClientOptions, Event, SendOptions};
use webpubsub_fleet::credential::{Credential, TokenOptions};
use webpubsub_fleet::protocol::Payload;

mod support;

#[actix_rt::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_logging();
    // Keep the local hub alive for the whole run when there is no service to talk to.
    let (connection_string, _local_hub) = support::target().await?;
    let credential = Credential::from_connection_string(
        connection_string,
        "quickstart",
        TokenOptions::new()
            .user_id("quickstart-user")
            .roles(["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]),
    )?;
    let client = Client::new(credential, ClientOptions::new())?;
    let mut events = client.events().await?;

    let connected = client.start().await?;
    println!("connected: connection id {}", connected.connection_id);
    client.join_group("demo").await?;
    client
        .send_to_group("demo", "hello, world", SendOptions::new())
        .await?;
    client
        .send_to_group(
            "demo",
            serde_json::json!({"greeting": "hello", "n": 2}),
            SendOptions::new(),
        )
        .await?;
    client
        .send_to_group("demo", vec![1u8, 2, 3], SendOptions::new())
        .await?;

    let mut received = 0;
    while received < 3 {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(Event::GroupMessage(m))) => {
                received += 1;
                let shown = match &m.data {
                    Payload::Text(t) => format!("text {t:?}"),
                    Payload::Json(v) => format!("json {v}"),
                    Payload::Binary(b) | Payload::Protobuf(b) => format!("binary {:?}", b.as_ref()),
                };
                println!("group {} from {:?}: {shown}", m.group, m.from_user_id);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err("messages did not arrive within 10 s".into()),
        }
    }
    client.stop().await?;
    println!("stopped");
    Ok(())
}
