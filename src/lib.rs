//! Azure Web PubSub clients as actix actors, one or many thousands per process, and a
//! local hub that speaks the same protocol.
//!
//! | module | what it holds |
//! |---|---|
//! | [`protocol`] | wire types and the JSON codecs; no I/O |
//! | [`session`] | the sans-I/O protocol state of one client: ack ids, sequence ids, recovery decisions, retry policies, keepalive |
//! | [`client`] | one connection as an actix actor ([`client::ClientActor`]) behind a handle ([`client::Client`]) |
//! | [`credential`] | connection strings, client access URLs and tokens |
//! | [`fleet`] | many clients in one process: ramp-up, supervision and restarts, counters |
//! | [`load`] | load scenarios, stamped payloads, the delivery recorder and checker, reports |
//! | [`hub`] | the local hub: the service's client protocol and REST API, fault injection, counters |
//! | [`service`] | the server side: a client of the service's data-plane REST API ([`service::ServiceClient`]) |
//!
//! # Runtime
//!
//! Clients, fleets and the hub run on the [actix](https://docs.rs/actix) runtime: every
//! client connection is an actor on an actix arbiter (a thread with a tokio current-thread
//! runtime). Create them inside an actix `System`: under `#[actix::main]` (as below),
//! `#[actix_rt::main]`, `#[actix_web::main]`, `#[actix_rt::test]`, or inside
//! `actix_rt::System::new().block_on(..)`. Under a plain `#[tokio::main]` there is no
//! `System`, and [`client::Client::new`] refuses with [`client::ClientError::NoActixSystem`].
//! The handles' methods are ordinary futures that any executor can await once the client
//! exists.
//!
//! # Quick start
//!
//! A local hub, one client that mints its own token from the hub's connection string, a
//! group joined and a message sent to it and received back:
//!
//! ```
//! use webpubsub_fleet::client::{Client, ClientOptions, Event, SendOptions};
//! use webpubsub_fleet::credential::{Credential, TokenOptions};
//! use webpubsub_fleet::hub::{Hub, HubConfig};
//!
//! #[actix::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let hub = Hub::start(HubConfig::new().bind("127.0.0.1:0".parse()?)).await?;
//!     let credential = Credential::from_connection_string(
//!         hub.connection_string(),
//!         "chat",
//!         TokenOptions::new()
//!             .user_id("alice")
//!             .roles(["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]),
//!     )?;
//!     let client = Client::new(credential, ClientOptions::new())?;
//!     let mut events = client.events().await?;
//!     client.start().await?; // resolves once `system/connected` arrived
//!     assert!(client.is_connected()); // a synchronous read, no round trip
//!     client.join_group("room").await?; // waits for the ack
//!     client.send_to_group("room", "hello", SendOptions::new()).await?;
//!     loop {
//!         if let Some(Event::GroupMessage(m)) = events.recv().await {
//!             assert_eq!(m.data.as_text(), Some("hello"));
//!             break;
//!         }
//!     }
//!     client.stop().await?;
//!     hub.stop().await;
//!     Ok(())
//! }
//! ```
//!
//! # Callbacks: connected, disconnected, stopped, rejoin failed
//!
//! The official clients' `subscribe(CallbackType.X, listener)` is
//! [`client::Client::subscribe`] with an [`client::EventKind`]; the callback gets the
//! [`client::Event`] and runs on the client's callback actor (a panic in it is caught and
//! reported as [`client::Event::CallbackPanicked`]). Dropping the last `Client` handle stops
//! the client, so a program keeps one for as long as it wants the connection.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use webpubsub_fleet::client::{Client, ClientOptions, Event, EventKind};
//! use webpubsub_fleet::credential::{Credential, TokenOptions};
//! use webpubsub_fleet::hub::{Hub, HubConfig};
//!
//! #[actix::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let hub = Hub::start(HubConfig::new().bind("127.0.0.1:0".parse()?)).await?;
//!     let credential = Credential::from_connection_string(
//!         hub.connection_string(),
//!         "chat",
//!         TokenOptions::new().user_id("bob").roles(["webpubsub.joinLeaveGroup"]),
//!     )?;
//!     let client = Client::new(credential, ClientOptions::new())?;
//!     let log = Arc::new(Mutex::new(Vec::new()));
//!     let seen = log.clone();
//!     client
//!         .subscribe(EventKind::Connected, move |event| {
//!             if let Event::Connected { connection_id, user_id } = event {
//!                 seen.lock().unwrap().push(format!("connected {connection_id} as {user_id:?}"));
//!             }
//!         })
//!         .await?;
//!     let seen = log.clone();
//!     client
//!         .subscribe(EventKind::Disconnected, move |event| {
//!             if let Event::Disconnected { connection_id, message } = event {
//!                 seen.lock().unwrap().push(format!("disconnected {connection_id:?}: {message:?}"));
//!             }
//!         })
//!         .await?;
//!     client
//!         .subscribe(EventKind::RejoinGroupFailed, |event| {
//!             if let Event::RejoinGroupFailed { group, error } = event {
//!                 eprintln!("could not rejoin {group} on the new connection: {error}");
//!             }
//!         })
//!         .await?;
//!     // `stopped` is the last event of a client; wait for it through a stream here.
//!     let mut stopped = client.events_of(Some(EventKind::Stopped)).await?;
//!     client.start().await?;
//!     client.stop().await?;
//!     if let Some(Event::Stopped { reason }) = stopped.recv().await {
//!         assert!(!reason.is_failure()); // stop() was asked for
//!     }
//!     // Callbacks run on their own actor: they may still be running when stop() returns.
//!     # for _ in 0..500 {
//!     #     if log.lock().unwrap().len() == 2 { break; }
//!     #     actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
//!     # }
//!     assert_eq!(log.lock().unwrap().len(), 2); // connected, then disconnected
//!     hub.stop().await;
//!     Ok(())
//! }
//! ```
//!
//! # Retrying with the same ack id
//!
//! The client already resends an operation with its ack id after a recovery and after a
//! transient failed ack (`InternalServerError`, `Timeout`; 3 retries by default). When it
//! still fails, the error names the ack id it used: retrying with that id lets the service
//! deduplicate, so a message whose ack was lost is not published twice
//! ([`client::AckResult::duplicated`] says the first try had landed).
//!
//! ```
//! use std::time::Duration;
//! use webpubsub_fleet::client::{AckResult, Client, ClientError, SendOptions};
//!
//! /// Publishes `text` to `group` at most once, however often it has to try.
//! async fn publish_once(client: &Client, group: &str, text: &str) -> Result<AckResult, ClientError> {
//!     let mut options = SendOptions::new();
//!     let mut attempt = 1;
//!     loop {
//!         match client.send_to_group(group, text, options).await {
//!             Err(error) if error.is_transient() && attempt < 5 => {
//!                 if let Some(ack_id) = error.ack_id() {
//!                     options = options.ack_id(ack_id); // the same id: deduplicated
//!                 }
//!                 actix_rt::time::sleep(Duration::from_millis(200 * attempt)).await;
//!                 attempt += 1;
//!             }
//!             result => return result,
//!         }
//!     }
//! }
//! # use webpubsub_fleet::client::ClientOptions;
//! # use webpubsub_fleet::credential::{Credential, TokenOptions};
//! # use webpubsub_fleet::hub::{Hub, HubConfig};
//! # #[actix::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let hub = Hub::start(HubConfig::new().bind("127.0.0.1:0".parse()?)).await?;
//! # let credential = Credential::from_connection_string(hub.connection_string(), "chat",
//! #     TokenOptions::new().roles(["webpubsub.sendToGroup"]))?;
//! # let client = Client::new(credential, ClientOptions::new())?;
//! # client.start().await?;
//! let first = publish_once(&client, "room", "hello").await?;
//! // Sending again with the id of an operation that landed is answered as a duplicate.
//! let ack_id = first.ack_id.expect("an acknowledged send has an ack id");
//! let again = client.send_to_group("room", "hello", SendOptions::new().ack_id(ack_id)).await?;
//! assert!(again.duplicated);
//! # hub.stop().await;
//! # Ok(()) }
//! ```
//!
//! Coming from the official Python client (`azure-messaging-webpubsubclient`)? The
//! repository's `docs/from-python.md` maps every item of its API to this crate's.
#![warn(missing_docs)]

pub mod client;
pub mod credential;
pub mod fleet;
pub mod handler;
pub mod hub;
pub mod load;
pub mod metrics;
pub mod protocol;
pub mod service;
pub mod session;
#[cfg(test)]
mod simulator;

/// The actix-native way in: the client actor and its messages, for actix applications that
/// hold clients in their own actors.
pub mod actor {
    pub use crate::client::{
        ClientActor, ClientStatus, Event, GetStatus, Operation, Start, Stop, SubscribeCallback,
        SubscribeRecipient, SubscribeStream, Unsubscribe,
    };
}
