//! `load --scenario app-server`: a fleet whose every connection goes through an app server, as
//! on the service with an event handler. The app server ([`LoadApp`], on the event handler
//! layer [`crate::handler`]) admits each connection on the blocking `connect` event (naming
//! the user `app-<token user>` and putting it in [`APP_GROUP`]), hears `connected` and
//! `disconnected`, and answers every user event with its own data, which the hub sends back
//! to the client: the [`Echo`](super::Echo) workload's round trips, checked by the same
//! checker, with the app server in the loop instead of the hub's built-in echo.
//!
//! The hub is the caller's (the CLI starts the in-process one): [`AppListener::bind`] takes a
//! port first, so the hub can be given [`AppListener::handler_url`], then
//! [`AppListener::serve`] starts the app for that hub's endpoint and key.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::handler::{
    ConnectRequest, ConnectResponse, ConnectedRequest, DisconnectedRequest, EventData,
    EventHandlerService, HandlerError, HandlerOptions, UserEventRequest, UserEventResponse,
    WebPubSubHandler,
};
use crate::protocol::Secret;

/// The group every connection is put in by the app's `connect` answer (no traffic goes
/// there: the workload's own groups are what the checker judges).
pub const APP_GROUP: &str = "app-lobby";

/// What the app server handled, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AppServerCounts {
    /// `connect` events answered (admitted or refused).
    pub connect_calls: u64,
    /// Connections admitted.
    pub admitted: u64,
    /// `connected` notifications.
    pub connected: u64,
    /// `disconnected` notifications heard by the time the counts were read (the fleet's
    /// clients may still be closing then: not checked).
    pub disconnected: u64,
    /// User events answered with a reply.
    pub user_event_replies: u64,
}

impl std::fmt::Display for AppServerCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "app server: {} connect calls ({} admitted), {} connected, {} disconnected, {} user-event replies",
            self.connect_calls,
            self.admitted,
            self.connected,
            self.disconnected,
            self.user_event_replies
        )
    }
}

/// The app server's application: admits and names every connection, echoes user events.
#[derive(Debug, Default)]
pub struct LoadApp {
    connect_calls: AtomicU64,
    admitted: AtomicU64,
    connected: AtomicU64,
    disconnected: AtomicU64,
    replies: AtomicU64,
}

impl LoadApp {
    /// What it handled so far.
    pub fn counts(&self) -> AppServerCounts {
        AppServerCounts {
            connect_calls: self.connect_calls.load(Relaxed),
            admitted: self.admitted.load(Relaxed),
            connected: self.connected.load(Relaxed),
            disconnected: self.disconnected.load(Relaxed),
            user_event_replies: self.replies.load(Relaxed),
        }
    }
}

impl WebPubSubHandler for LoadApp {
    async fn connect(&self, request: ConnectRequest) -> ConnectResponse {
        self.connect_calls.fetch_add(1, Relaxed);
        let Some(user) = request.claims.get("sub").and_then(|s| s.first()) else {
            return ConnectResponse::refuse(401, "the token names no user");
        };
        self.admitted.fetch_add(1, Relaxed);
        ConnectResponse::accept()
            .user_id(format!("app-{user}"))
            .groups([APP_GROUP])
    }

    async fn user_event(&self, request: UserEventRequest) -> UserEventResponse {
        self.replies.fetch_add(1, Relaxed);
        // The same data with the same type: the client's recorder reads its own stamp back.
        match request.data {
            EventData::Text(s) => UserEventResponse::text(s),
            EventData::Json(v) => UserEventResponse::json(v),
            EventData::Binary(b) => UserEventResponse::binary(b),
        }
    }

    async fn connected(&self, _: ConnectedRequest) {
        self.connected.fetch_add(1, Relaxed);
    }

    async fn disconnected(&self, _: DisconnectedRequest) {
        self.disconnected.fetch_add(1, Relaxed);
    }
}

/// The app server's port, taken before the hub starts.
pub struct AppListener {
    listener: TcpListener,
}

impl AppListener {
    /// Binds a free port on 127.0.0.1.
    pub fn bind() -> std::io::Result<AppListener> {
        Ok(AppListener {
            listener: TcpListener::bind("127.0.0.1:0")?,
        })
    }

    /// The event handler URL template to give the hub (`{hub}` and `{event}` placeholders).
    pub fn handler_url(&self) -> std::io::Result<String> {
        let port = self.listener.local_addr()?.port();
        Ok(format!(
            "http://127.0.0.1:{port}/api/webpubsub/hubs/{{hub}}/{{event}}"
        ))
    }

    /// Serves the app for `hub` on the current actix system (one worker), allowing events from
    /// `endpoint` signed with `key` only.
    pub fn serve(self, hub: &str, endpoint: &str, key: Secret) -> Result<AppServer, String> {
        let options = HandlerOptions::new(hub)
            .allowed_endpoint(endpoint)
            .map_err(|e: HandlerError| e.to_string())?
            .access_key(key);
        let service =
            EventHandlerService::new(options, LoadApp::default()).map_err(|e| e.to_string())?;
        let served = service.clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new().configure(|cfg| served.configure(cfg))
        })
        .workers(1)
        .listen(self.listener)
        .map_err(|e| format!("the app server cannot listen: {e}"))?
        .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Ok(AppServer {
            app: service,
            handle,
        })
    }
}

/// A running app server.
pub struct AppServer {
    app: EventHandlerService<LoadApp>,
    handle: actix_web::dev::ServerHandle,
}

impl AppServer {
    /// What it handled so far.
    pub fn counts(&self) -> AppServerCounts {
        self.app.app().counts()
    }

    /// Stops it at once: stop the hub first (a graceful stop would wait for the hub's idle
    /// keep-alive connections).
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// The checks of a run's counts against what the fleet saw: every connection of the fleet
/// was admitted by the app, and every echo the clients received was a reply of the app.
/// Returns the failures (empty: consistent).
pub fn check_counts(
    counts: &AppServerCounts,
    connections: u64,
    echoes_received: u64,
) -> Vec<String> {
    let mut failures = Vec::new();
    if counts.admitted < connections {
        failures.push(format!(
            "the app server admitted {} connections but the fleet opened {connections}",
            counts.admitted
        ));
    }
    if counts.user_event_replies < echoes_received {
        failures.push(format!(
            "the clients received {echoes_received} replies but the app server answered {} user events",
            counts.user_event_replies
        ));
    }
    failures
}
