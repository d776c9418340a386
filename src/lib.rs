//! Azure Web PubSub clients as actix actors, one or many thousands per process, and a
//! local hub that speaks the same protocol.
//!
//! | module | what it holds |
//! |---|---|
//! | [`protocol`] | wire types and the JSON codecs; no I/O |
//! | [`session`] | the sans-I/O protocol state of one client: ack ids, sequence ids, recovery decisions, retry policies, keepalive |
//! | [`client`] | one connection as an actix actor ([`client::ClientActor`]) behind a handle ([`client::Client`]) |
//! | [`credential`] | connection strings, client access URLs and tokens |
//! | [`hub`] | the local hub: the service's client protocol and REST API, fault injection, counters |
#![warn(missing_docs)]

pub mod client;
pub mod credential;
pub mod hub;
pub mod protocol;
pub mod session;

/// The actix-native way in: the client actor and its messages, for actix applications that
/// hold clients in their own actors.
pub mod actor {
    pub use crate::client::{
        ClientActor, ClientStatus, Event, GetStatus, Operation, Start, Stop, SubscribeCallback,
        SubscribeRecipient, SubscribeStream, Unsubscribe,
    };
}
