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
//! # #[actix_rt::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Hub::start(HubConfig::new().bind("127.0.0.1:0".parse()?)).await?;
//! let credential = Credential::from_connection_string(
//!     hub.connection_string(),
//!     "chat",
//!     TokenOptions::new()
//!         .user_id("alice")
//!         .roles(["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]),
//! )?;
//! let client = Client::new(credential, ClientOptions::new());
//! let mut events = client.events().await?;
//! client.start().await?; // resolves once `system/connected` arrived
//! client.join_group("room").await?; // waits for the ack
//! client.send_to_group("room", "hello", SendOptions::new()).await?;
//! loop {
//!     if let Some(Event::GroupMessage(m)) = events.recv().await {
//!         assert_eq!(m.data.as_text(), Some("hello"));
//!         break;
//!     }
//! }
//! client.stop().await?;
//! hub.stop().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod client;
pub mod credential;
pub mod fleet;
pub mod hub;
pub mod load;
pub mod protocol;
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
