//! Refreshing the client access URL through an async provider: the provider is called for
//! every new connection (never for a recovery), so a reconnect after the hub forgot the
//! session gets a fresh token.
//!
//! Run: `cargo run --example token_provider`
//!
//! With `WebPubSubConnectionString` set it mints tokens for that service and shows the first
//! connection only (a reconnect cannot be forced there); otherwise it starts a local hub, makes
//! it forget every session, and shows the provider called again for the new connection.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use webpubsub_fleet::client::{Client, ClientOptions, Event, EventKind, SendOptions};
use webpubsub_fleet::credential::{Credential, TokenOptions};

mod support;

#[actix_rt::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_logging();
    let (connection_string, local_hub) = support::target().await?;
    let calls = Arc::new(AtomicU32::new(0));
    let provider_calls = calls.clone();
    // Stands for an HTTP call to your app server's negotiate endpoint.
    let credential = Credential::from_provider(move || {
        let connection_string = connection_string.clone();
        let n = provider_calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            println!("provider called ({n}): minting a fresh token");
            connection_string.client_access_url(
                "tokens",
                &TokenOptions::new()
                    .user_id("token-user")
                    .roles(["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"])
                    .lifetime(Duration::from_secs(10 * 60)),
                SystemTime::now(),
            )
        }
    });
    let client = Client::new(credential, ClientOptions::new())?;
    let mut events = client.events().await?;
    let first = client.start().await?;
    println!("connected as {}", first.connection_id);
    client.join_group("refresh").await?;

    if let Some(hub) = &local_hub {
        // The hub forgets every session: recovery is refused with 1008 and the client opens a
        // new connection, for which it asks the provider again, then rejoins its group.
        hub.restart();
        let second = wait_for_new_connection(&mut events, &first.connection_id).await?;
        println!(
            "reconnected as {second} (provider called {} times)",
            calls.load(Ordering::SeqCst)
        );
        if second == first.connection_id || calls.load(Ordering::SeqCst) < 2 {
            return Err("expected a new connection with a fresh token".into());
        }
    }
    client
        .send_to_group("refresh", "still here", SendOptions::new())
        .await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(Event::GroupMessage(m))) => {
                println!("received {:?} in {} after the refresh", m.data, m.group);
                break;
            }
            Ok(Some(_)) => {}
            _ => return Err("no message after the refresh".into()),
        }
    }
    client.stop().await?;
    Ok(())
}

/// The id of the next `connected` event for a connection other than `old`.
async fn wait_for_new_connection(
    events: &mut webpubsub_fleet::client::EventStream,
    old: &str,
) -> Result<String, Box<dyn Error>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), events.recv()).await {
            Ok(Some(Event::Connected { connection_id, .. })) if connection_id != old => {
                return Ok(connection_id);
            }
            Ok(Some(e)) if e.kind() == EventKind::Stopped => return Err("client stopped".into()),
            Ok(Some(_)) => {}
            _ => return Err("no new connection within 15 s".into()),
        }
    }
}
