//! The app server's side of the event handler protocol (protocol.md 8.2), on actix-web: what
//! `@azure/web-pubsub-express` is for Node. The service (or the local hub) calls the app's
//! event handler with CloudEvents HTTP requests: `connect` (blocking: admit with a user id,
//! groups, roles and subprotocol, or refuse), `connected` and `disconnected`, the group
//! presence events `joined` and `left`, and user events (blocking: the answer goes back to the
//! client). This layer answers the abuse-protection `OPTIONS` handshake, checks every event
//! (a Web PubSub event of this hub, from an allowed origin, signed with one of the access
//! keys: else 4xx, before the body is read), reads the body within a bound, and hands typed
//! requests to the application's [`WebPubSubHandler`].
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use webpubsub_fleet::handler::{
//!     ConnectRequest, ConnectResponse, EventHandlerService, HandlerOptions, UserEventRequest,
//!     UserEventResponse, WebPubSubHandler,
//! };
//! use webpubsub_fleet::protocol::Secret;
//!
//! struct Chat;
//!
//! impl WebPubSubHandler for Chat {
//!     async fn connect(&self, request: ConnectRequest) -> ConnectResponse {
//!         let sub = request.claims.get("sub").and_then(|s| s.first()).cloned();
//!         match sub {
//!             Some(user) => ConnectResponse::accept().user_id(user).groups(["lobby"]),
//!             None => ConnectResponse::refuse(401, "sign in first"),
//!         }
//!     }
//!
//!     async fn user_event(&self, request: UserEventRequest) -> UserEventResponse {
//!         UserEventResponse::text(format!("got {:?}", request.data))
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let handler = EventHandlerService::new(
//!     HandlerOptions::new("chat")
//!         .allowed_endpoint("http://127.0.0.1:8080")?
//!         .access_key(Secret::new("the hub's access key")),
//!     Chat,
//! )?;
//! // The hub's handler URL: http://127.0.0.1:3000/api/webpubsub/hubs/chat/{event}
//! HttpServer::new(move || App::new().configure(|cfg| handler.configure(cfg)))
//!     .bind("127.0.0.1:3000")?
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Layering: this is the server side beside `service/`; it uses actix-web, `credential/` (the
//! signature) and `protocol/` (`Secret`), never `hub/` or `client/`.

mod error;
mod events;

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use url::Url;

pub use error::HandlerError;
pub use events::{
    ClientCertificate, ConnectRequest, ConnectResponse, ConnectedRequest, ConnectionContext,
    ConnectionStates, DisconnectedRequest, EventData, GroupRequest, UserEventRequest,
    UserEventResponse,
};

use error::Refusal;
use events::{Checks, Incoming, Rendered};

/// The largest event body read when none is set: 1 MiB, the service's message limit, which
/// also bounds a `connect` body (claims, query and headers of one upgrade request).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// What the application does with each event. Every method has a default that does what the
/// express SDK does when the handler is not given: admit the connection as its token says,
/// answer a user event with nothing, ignore notifications.
///
/// The futures run on the actix-web worker that took the request (they need not be `Send`);
/// the service waits for `connect` and user events, so keep them short, and the hub's
/// notifications are answered once the method returns.
pub trait WebPubSubHandler: Send + Sync + 'static {
    /// `connect`: admit (with a user id, groups, roles, subprotocol) or refuse.
    fn connect(&self, request: ConnectRequest) -> impl Future<Output = ConnectResponse> {
        let _ = request;
        async { ConnectResponse::accept() }
    }

    /// A user event: the answer's data goes back to the client; an error fails its request.
    fn user_event(&self, request: UserEventRequest) -> impl Future<Output = UserEventResponse> {
        let _ = request;
        async { UserEventResponse::empty() }
    }

    /// `connected`.
    fn connected(&self, request: ConnectedRequest) -> impl Future<Output = ()> {
        let _ = request;
        async {}
    }

    /// `disconnected`.
    fn disconnected(&self, request: DisconnectedRequest) -> impl Future<Output = ()> {
        let _ = request;
        async {}
    }

    /// `joined`: the connection joined a group.
    fn group_joined(&self, request: GroupRequest) -> impl Future<Output = ()> {
        let _ = request;
        async {}
    }

    /// `left`: the connection left a group.
    fn group_left(&self, request: GroupRequest) -> impl Future<Output = ()> {
        let _ = request;
        async {}
    }
}

/// The settings of an [`EventHandlerService`], built with consuming setters. Defaults: the
/// express SDK's path `/api/webpubsub/hubs/{hub}/`, every origin allowed, signatures not
/// checked (give the access key to check them: an app behind a public URL should), bodies of at
/// most [`DEFAULT_MAX_BODY`].
#[derive(Clone, Debug)]
pub struct HandlerOptions {
    hub: String,
    path: Option<String>,
    allowed_origins: Option<Vec<String>>,
    keys: Vec<crate::protocol::Secret>,
    max_body: usize,
}

impl HandlerOptions {
    /// A handler for the events of `hub`.
    pub fn new(hub: impl Into<String>) -> HandlerOptions {
        HandlerOptions {
            hub: hub.into(),
            path: None,
            allowed_origins: None,
            keys: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// The path under which it takes events (every path below it): the event handler URL
    /// configured in the hub is this path followed by anything (`{event}` is usual).
    pub fn path(mut self, path: impl Into<String>) -> HandlerOptions {
        self.path = Some(path.into());
        self
    }

    /// Allows events from this service endpoint (`https://<name>.webpubsub.azure.com`, or the
    /// local hub's `http://127.0.0.1:8080`), as the express SDK's `allowedEndpoints`: the
    /// abuse-protection answer names the allowed hosts, and an event from another origin is
    /// refused with 403. Without any, every origin is allowed.
    pub fn allowed_endpoint(mut self, endpoint: &str) -> Result<HandlerOptions, HandlerError> {
        let invalid = |reason: String| HandlerError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            reason,
        };
        let url = Url::parse(endpoint).map_err(|e| invalid(e.to_string()))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("it has no host".to_owned()))?;
        // As the WHATWG URL `host` the express SDK compares: the port only when not the default.
        let origin = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        self.allowed_origins
            .get_or_insert_with(Vec::new)
            .push(origin.to_ascii_lowercase());
        Ok(self)
    }

    /// Checks every event's `ce-signature` against this key (call again for the secondary key):
    /// an event signed by none of them is refused with 401.
    pub fn access_key(mut self, key: crate::protocol::Secret) -> HandlerOptions {
        self.keys.push(key);
        self
    }

    /// The largest event body read (larger: 413, refused before it is read when its
    /// `Content-Length` says so).
    pub fn max_body(mut self, bytes: usize) -> HandlerOptions {
        self.max_body = bytes;
        self
    }
}

/// An actix-web service that takes the events of one hub for a [`WebPubSubHandler`]. Cheap to
/// clone (one `Arc`): give a clone to each worker's `App` with [`EventHandlerService::configure`].
pub struct EventHandlerService<H> {
    inner: Arc<Inner<H>>,
}

impl<H> Clone for EventHandlerService<H> {
    fn clone(&self) -> Self {
        EventHandlerService {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<H> {
    hub: String,
    path: String,
    allowed_origins: Option<Vec<String>>,
    keys: Vec<crate::protocol::Secret>,
    max_body: usize,
    app: H,
}

impl<H: WebPubSubHandler> EventHandlerService<H> {
    /// The service for `app` with these settings.
    pub fn new(options: HandlerOptions, app: H) -> Result<EventHandlerService<H>, HandlerError> {
        if options.hub.trim().is_empty() {
            return Err(HandlerError::EmptyHub);
        }
        let path = options
            .path
            .unwrap_or_else(|| format!("/api/webpubsub/hubs/{}/", options.hub));
        if !path.starts_with('/') {
            return Err(HandlerError::InvalidPath(path));
        }
        let path = if path.ends_with('/') {
            path
        } else {
            format!("{path}/")
        };
        Ok(EventHandlerService {
            inner: Arc::new(Inner {
                hub: options.hub,
                path,
                allowed_origins: options.allowed_origins,
                keys: options.keys,
                max_body: options.max_body,
                app,
            }),
        })
    }

    /// The path it takes events under (ends with `/`).
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The application.
    pub fn app(&self) -> &H {
        &self.inner.app
    }

    /// Registers the service's route (its path and everything below it) on an `App`:
    /// `App::new().configure(|cfg| service.configure(cfg))`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let this = self.clone();
        cfg.service(
            web::resource([
                format!("{}{{tail:.*}}", self.inner.path),
                self.inner.path.trim_end_matches('/').to_owned(),
            ])
            .route(
                web::route().to(move |req: HttpRequest, body: web::Payload| {
                    let this = this.clone();
                    async move { this.handle(&req, body).await }
                }),
            ),
        );
    }

    /// Answers one request (for an app that routes by itself): `OPTIONS` is the
    /// abuse-protection handshake, `POST` an event, anything else 405.
    pub async fn handle(&self, req: &HttpRequest, body: web::Payload) -> HttpResponse {
        let answer = match *req.method() {
            Method::OPTIONS => self.preflight(req),
            Method::POST => self.event(req, body).await,
            _ => Err(Refusal::new(
                405,
                "the event handler takes OPTIONS (abuse protection) and POST (events) only",
            )),
        };
        match answer {
            Ok(response) => response,
            Err(refusal) => {
                tracing::debug!(status = refusal.status, reason = %refusal.reason, "event refused");
                respond(Rendered::text(refusal.status, refusal.reason))
            }
        }
    }

    fn checks(&self) -> Checks<'_> {
        Checks {
            hub: &self.inner.hub,
            allowed_origins: self.inner.allowed_origins.as_deref(),
            keys: &self.inner.keys,
        }
    }

    fn preflight(&self, req: &HttpRequest) -> Result<HttpResponse, Refusal> {
        let allowed = events::preflight(req.headers(), &self.checks())?;
        let mut response = HttpResponse::Ok();
        for origin in allowed {
            // One header line per origin, as the express SDK writes its list.
            response.append_header(("WebHook-Allowed-Origin", origin));
        }
        Ok(response.finish())
    }

    async fn event(&self, req: &HttpRequest, body: web::Payload) -> Result<HttpResponse, Refusal> {
        // Headers first: a refused event's body is never read.
        let head = events::parse_head(req.headers(), &self.checks())?;
        let body = read_bounded(req, body, self.inner.max_body).await?;
        let states = head.context.states.clone();
        let app = &self.inner.app;
        let rendered = match events::parse_body(head, body)? {
            Incoming::Connect(r) => app.connect(r).await.render(states),
            Incoming::User(r) => app.user_event(r).await.render(states),
            Incoming::Connected(r) => {
                app.connected(r).await;
                Rendered::empty(200)
            }
            Incoming::Disconnected(r) => {
                app.disconnected(r).await;
                Rendered::empty(200)
            }
            Incoming::GroupJoined(r) => {
                app.group_joined(r).await;
                Rendered::empty(200)
            }
            Incoming::GroupLeft(r) => {
                app.group_left(r).await;
                Rendered::empty(200)
            }
        };
        Ok(respond(rendered))
    }
}

/// The body, refused with 413 past `max` (before reading when `Content-Length` says so).
async fn read_bounded(
    req: &HttpRequest,
    mut body: web::Payload,
    max: usize,
) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            413,
            format!("the event body is larger than this handler's {max}-byte limit"),
        )
    };
    let announced = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut buf = BytesMut::with_capacity(announced.map_or(0, |n| n as usize));
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| Refusal::bad_request(format!("reading the event body: {e}")))?;
        if buf.len() + chunk.len() > max {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn respond(rendered: Rendered) -> HttpResponse {
    let status = StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Some(content_type) = rendered.content_type {
        response.insert_header(("Content-Type", content_type));
    }
    if let Some(state) = rendered.state {
        response.insert_header(("ce-connectionState", state));
    }
    response.body(rendered.body)
}
