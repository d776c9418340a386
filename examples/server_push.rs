//! An app server in Rust: everything the Python service SDK's README shows, with
//! `service::ServiceClient`. It mints client tokens (locally and through the service), pushes
//! to everyone (with a filter), a user, a group and a connection, manages group membership,
//! checks existence, grants and revokes a permission, lists a group and closes a connection
//! with a reason. Two clients, alice and bob, connect with those tokens and show what arrives.
//!
//! Run: `cargo run --example server_push`
//!
//! With the `WebPubSubConnectionString` environment variable set (the name the official
//! samples use) it talks to that service; otherwise it starts a local hub in this process, so
//! it needs nothing else. It exits 0 when every push arrived where it should, 1 otherwise.

use std::error::Error;
use std::time::Duration;

use webpubsub_fleet::client::{Client, ClientOptions, Event, EventStream};
use webpubsub_fleet::credential::{ClientAccessUrl, Credential, TokenOptions};
use webpubsub_fleet::protocol::Payload;
use webpubsub_fleet::service::{
    CloseOptions, Content, ListOptions, Permission, SendOptions, ServiceClient, ServiceOptions,
};

mod support;

const HUB: &str = "server_push";
/// Longest wait for one push to arrive.
const WAIT: Duration = Duration::from_secs(10);

#[actix_rt::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_logging();
    let (connection_string, _local_hub) = support::target().await?;
    let service = ServiceClient::new(connection_string, HUB, ServiceOptions::new())?;

    // ---- client tokens: minted here with the key, or by the service --------------------
    let alice_access = service.client_access_token(
        &TokenOptions::new()
            .user_id("alice")
            .roles(["webpubsub.joinLeaveGroup"]),
    )?;
    println!("alice connects to {}", alice_access.url); // the token prints as [REDACTED]
    let bob_token = service
        .generate_client_token(&TokenOptions::new().user_id("bob"))
        .await?;
    let bob_url = ClientAccessUrl::parse(&format!(
        "{}?access_token={}",
        alice_access.base_url,
        bob_token.expose()
    ))?;
    let (alice, mut alice_events, alice_id) = connect(alice_access.url).await?;
    let (bob, mut bob_events, bob_id) = connect(bob_url).await?;
    println!("alice is {alice_id}, bob is {bob_id}");

    // ---- send to all, with a filter -----------------------------------------------------
    service
        .send_to_all(
            Content::json(&serde_json::json!({"hello": "everyone"}))?,
            &SendOptions::new(),
        )
        .await?;
    expect(&mut alice_events, "alice", r#"json {"hello":"everyone"}"#).await?;
    expect(&mut bob_events, "bob", r#"json {"hello":"everyone"}"#).await?;
    service
        .send_to_all("not for bob", &SendOptions::new().filter("userId ne 'bob'"))
        .await?;
    expect(&mut alice_events, "alice", "text not for bob").await?;

    // ---- send to a user -------------------------------------------------------------------
    service
        .send_to_user("bob", "hi bob", &SendOptions::new().message_ttl_seconds(60))
        .await?;
    // bob's next message is this one: the filtered broadcast above skipped him.
    expect(&mut bob_events, "bob", "text hi bob").await?;

    // ---- groups: add a connection and a user, send, list, remove ------------------------
    service.add_connection_to_group("news", &alice_id).await?;
    service.add_user_to_group("news", "bob").await?;
    println!("group news exists: {}", service.group_exists("news").await?);
    let members = service
        .list_connections_in_group("news", &ListOptions::new())
        .await?;
    println!(
        "group news: {}",
        members
            .iter()
            .map(|m| format!("{} ({:?})", m.connection_id, m.user_id))
            .collect::<Vec<_>>()
            .join(", ")
    );
    service
        .send_to_group(
            "news",
            "news, except for alice",
            &SendOptions::new().exclude(alice_id.clone()),
        )
        .await?;
    expect(&mut bob_events, "bob", "text news, except for alice").await?;
    service.remove_user_from_group("news", "bob").await?;
    service
        .remove_connection_from_group("news", &alice_id)
        .await?;
    println!(
        "group news exists after both left: {}",
        service.group_exists("news").await?
    );

    // ---- send to a connection -------------------------------------------------------------
    service
        .send_to_connection(
            &alice_id,
            Content::binary(vec![1u8, 2, 3]),
            &SendOptions::new(),
        )
        .await?;
    expect(&mut alice_events, "alice", "binary [1, 2, 3]").await?;

    // ---- existence checks -------------------------------------------------------------------
    println!(
        "connection {alice_id} exists: {}; user bob exists: {}; user carol exists: {}",
        service.connection_exists(&alice_id).await?,
        service.user_exists("bob").await?,
        service.user_exists("carol").await?,
    );

    // ---- permissions -----------------------------------------------------------------------
    service
        .grant_permission(Permission::SendToGroup, &alice_id, Some("news"))
        .await?;
    let granted = service
        .has_permission(Permission::SendToGroup, &alice_id, Some("news"))
        .await?;
    service
        .revoke_permission(Permission::SendToGroup, &alice_id, Some("news"))
        .await?;
    let revoked = !service
        .has_permission(Permission::SendToGroup, &alice_id, Some("news"))
        .await?;
    println!("alice may send to news: granted {granted}, then revoked {revoked}");
    if !granted || !revoked {
        return Err("the permission was not granted and revoked".into());
    }

    // ---- close: one connection with a reason, then everyone -------------------------------
    service
        .close_connection(&bob_id, Some("bob, your shift is over"))
        .await?;
    expect(
        &mut bob_events,
        "bob",
        "disconnected bob, your shift is over",
    )
    .await?;
    bob.stop().await?;
    service
        .close_all_connections(&CloseOptions::new().reason("the example is done"))
        .await?;
    expect(
        &mut alice_events,
        "alice",
        "disconnected the example is done",
    )
    .await?;
    alice.stop().await?;
    println!("done");
    Ok(())
}

/// A client connected with `url`, its events and its connection id.
async fn connect(url: ClientAccessUrl) -> Result<(Client, EventStream, String), Box<dyn Error>> {
    let client = Client::new(Credential::from_url(url), ClientOptions::new())?;
    let events = client.events().await?;
    let connected = client.start().await?;
    Ok((client, events, connected.connection_id))
}

/// Waits for the next push (or disconnection) of `who` and checks it is `wanted`.
async fn expect(events: &mut EventStream, who: &str, wanted: &str) -> Result<(), Box<dyn Error>> {
    loop {
        let event = match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) | Err(_) => {
                return Err(format!("{who} did not get {wanted:?} within {WAIT:?}").into());
            }
        };
        let seen = match event {
            Event::ServerMessage(m) => match &m.data {
                Payload::Text(t) => format!("text {t}"),
                Payload::Json(v) => format!("json {v}"),
                Payload::Binary(b) | Payload::Protobuf(b) => format!("binary {:?}", b.as_ref()),
            },
            Event::Disconnected { message, .. } => {
                format!("disconnected {}", message.unwrap_or_default())
            }
            _ => continue,
        };
        println!("{who} got {seen}");
        return if seen == wanted {
            Ok(())
        } else {
            Err(format!("{who} got {seen:?}, expected {wanted:?}").into())
        };
    }
}
