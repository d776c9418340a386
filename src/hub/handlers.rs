//! Event handler settings, as the service's hub settings have them (protocol.md 8.2): several
//! handlers, each a URL template (`{hub}` and `{event}` are replaced) with a system-event
//! filter and a user-event pattern. An event goes to the first handler, in configuration
//! order, whose filters match it, as in the service.
//!
//! This file holds the settings and the pure decisions on them (matching, URL expansion, the
//! abuse-protection answer); `upstream.rs` makes the calls.

use std::fmt;
use std::str::FromStr;

use url::Url;

/// A system event the hub can send to an event handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemEvent {
    /// `connect`: blocking; the handler's answer admits, shapes or refuses the connection.
    Connect,
    /// `connected`: fire-and-forget, after the client got its `connected` frame.
    Connected,
    /// `disconnected`: fire-and-forget, with the reason.
    Disconnected,
    /// `joined` (`ce-type: azure.webpubsub.gp.joined`): fire-and-forget, the connection joined
    /// a group (the service's group presence events; the express SDK 1.1.0's `onGroupJoined`).
    GroupJoined,
    /// `left` (`ce-type: azure.webpubsub.gp.left`): fire-and-forget, the connection left a group.
    GroupLeft,
}

impl SystemEvent {
    /// Every system event, in the order of a connection's life.
    pub const ALL: [SystemEvent; 5] = [
        SystemEvent::Connect,
        SystemEvent::Connected,
        SystemEvent::Disconnected,
        SystemEvent::GroupJoined,
        SystemEvent::GroupLeft,
    ];

    /// The event name as the service writes it (`ce-eventName`, `{event}`).
    pub fn name(self) -> &'static str {
        match self {
            SystemEvent::Connect => "connect",
            SystemEvent::Connected => "connected",
            SystemEvent::Disconnected => "disconnected",
            SystemEvent::GroupJoined => "joined",
            SystemEvent::GroupLeft => "left",
        }
    }

    /// `ce-type`: `azure.webpubsub.sys.<name>`, but `azure.webpubsub.gp.<name>` for the group
    /// presence events, as the express SDK 1.1.0 reads them.
    pub fn ce_type(self) -> String {
        match self {
            SystemEvent::GroupJoined | SystemEvent::GroupLeft => {
                format!("azure.webpubsub.gp.{}", self.name())
            }
            _ => format!("azure.webpubsub.sys.{}", self.name()),
        }
    }
}

impl fmt::Display for SystemEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SystemEvent {
    type Err = String;

    fn from_str(s: &str) -> Result<SystemEvent, String> {
        let name = s.trim();
        // `gp.joined` as in the ce-type, besides the service's filter name `joined`.
        let name = name.strip_prefix("gp.").unwrap_or(name);
        SystemEvent::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "unknown system event `{s}`: use connect, connected, disconnected, joined or left"
                )
            })
    }
}

/// Which user events a handler takes: the service's pattern syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
enum UserEvents {
    /// `*`.
    All,
    /// Listed names (`a,b`); empty: none.
    Names(Vec<String>),
}

impl UserEvents {
    fn parse(pattern: &str) -> UserEvents {
        let names: Vec<String> = pattern
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        if names.iter().any(|n| n == "*") {
            UserEvents::All
        } else {
            UserEvents::Names(names)
        }
    }

    fn matches(&self, event: &str) -> bool {
        match self {
            UserEvents::All => true,
            UserEvents::Names(names) => names.iter().any(|n| n == event),
        }
    }
}

/// One upstream event handler, built with consuming setters:
///
/// ```
/// use webpubsub_fleet::hub::{EventHandler, SystemEvent};
///
/// let handler = EventHandler::new("http://localhost:3000/api/{hub}/{event}")
///     .user_events("chat,typing")
///     .system_events([SystemEvent::Connect, SystemEvent::Disconnected]);
/// # let _ = handler;
/// ```
///
/// Defaults: every user event (`*`) and the `connected` and `disconnected` system events,
/// for every hub, with abuse protection; `connect` is sent only when listed, as it makes every connection wait for
/// the handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventHandler {
    url_template: String,
    user_events: UserEvents,
    system_events: Vec<SystemEvent>,
    hub: Option<String>,
    abuse_protection: bool,
}

impl EventHandler {
    /// A handler at `url_template`: an `http://` or `https://` URL in which `{hub}` and
    /// `{event}` are replaced by the hub and event names. Checked when the hub starts.
    pub fn new(url_template: impl Into<String>) -> EventHandler {
        EventHandler {
            url_template: url_template.into(),
            user_events: UserEvents::All,
            system_events: vec![SystemEvent::Connected, SystemEvent::Disconnected],
            hub: None,
            abuse_protection: true,
        }
    }

    /// The user events it takes: `*` for all, a name, or a comma-separated list of names;
    /// an empty pattern for none.
    pub fn user_events(mut self, pattern: &str) -> EventHandler {
        self.user_events = UserEvents::parse(pattern);
        self
    }

    /// The system events it takes (replacing the default `connected`, `disconnected`).
    pub fn system_events(mut self, events: impl IntoIterator<Item = SystemEvent>) -> EventHandler {
        self.system_events = events.into_iter().collect();
        self
    }

    /// Takes events of this hub only (compared ignoring ASCII case, as hub names are).
    pub fn hub(mut self, hub: impl Into<String>) -> EventHandler {
        self.hub = Some(hub.into());
        self
    }

    /// Whether the hub asks the handler's host for permission (`OPTIONS` with
    /// `WebHook-Request-Origin`) before its first event, as the service always does. On by
    /// default; off only for a bare test handler that cannot answer `OPTIONS`.
    pub fn abuse_protection(mut self, check: bool) -> EventHandler {
        self.abuse_protection = check;
        self
    }

    /// Whether abuse protection is on.
    pub(crate) fn checks_origin(&self) -> bool {
        self.abuse_protection
    }

    /// The URL template as configured.
    pub fn url_template(&self) -> &str {
        &self.url_template
    }

    /// Why the template cannot be called, or `None`: it must be an absolute `http` or
    /// `https` URL with a host, with no placeholder other than `{hub}` and `{event}`.
    pub(crate) fn problem(&self) -> Option<String> {
        let template = &self.url_template;
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Some(format!("`{template}` has a `{{` without its `}}`"));
            };
            let name = &after[..close];
            if name != "hub" && name != "event" {
                return Some(format!(
                    "`{template}` has the placeholder `{{{name}}}`; only {{hub}} and {{event}} are replaced"
                ));
            }
            rest = &after[close + 1..];
        }
        let sample = self.expand("hub", "event");
        match Url::parse(&sample) {
            Err(e) => Some(format!("`{template}` is not a URL: {e}")),
            Ok(url) if url.scheme() != "http" && url.scheme() != "https" => Some(format!(
                "`{template}` uses the scheme `{}`; use http:// or https://",
                url.scheme()
            )),
            Ok(url) if url.host_str().is_none_or(str::is_empty) => {
                Some(format!("`{template}` has no host"))
            }
            Ok(url) if !url.username().is_empty() || url.password().is_some() => Some(format!(
                "`{}` carries credentials in its URL; the hub signs its calls with ce-signature instead",
                url.host_str().unwrap_or_default()
            )),
            Ok(_) => None,
        }
    }

    /// Whether it takes `event` of `hub`.
    pub(crate) fn takes(&self, hub: &str, event: &Event<'_>) -> bool {
        if let Some(only) = &self.hub {
            if !only.eq_ignore_ascii_case(hub) {
                return false;
            }
        }
        match event {
            Event::System(e) => self.system_events.contains(e),
            Event::User(name) => self.user_events.matches(name),
        }
    }

    /// The URL for one event: the names percent-encoded, so each stays inside the part of
    /// the URL it was put in whatever it holds.
    pub(crate) fn expand(&self, hub: &str, event: &str) -> String {
        self.url_template
            .replace("{hub}", &encode_component(hub))
            .replace("{event}", &encode_component(event))
    }

    /// A template from a parsed URL, whose serializer percent-encodes the braces.
    pub(crate) fn from_url(url: &Url) -> EventHandler {
        EventHandler::new(
            url.as_str()
                .replace("%7Bevent%7D", "{event}")
                .replace("%7Bhub%7D", "{hub}"),
        )
    }
}

/// An event on its way to a handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// A system event.
    System(SystemEvent),
    /// A user event with its name.
    User(&'a str),
}

impl Event<'_> {
    /// `ce-eventName`.
    pub(crate) fn name(&self) -> &str {
        match self {
            Event::System(e) => e.name(),
            Event::User(name) => name,
        }
    }

    /// `ce-type`.
    pub(crate) fn ce_type(&self) -> String {
        match self {
            Event::System(e) => e.ce_type(),
            Event::User(name) => format!("azure.webpubsub.user.{name}"),
        }
    }
}

/// `name` with every byte outside RFC 3986's unreserved set percent-encoded, so that it stays
/// one path segment (or one query value) of the handler's URL whatever it holds.
fn encode_component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The part of a handler URL that abuse protection is about (CloudEvents webhook spec 4):
/// `scheme://host:port`, lower case.
pub(crate) fn handler_host(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default().to_ascii_lowercase(),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Whether the `WebHook-Allowed-Origin` values of an `OPTIONS` answer allow `origin`: `*`, or
/// the origin itself (ignoring ASCII case), in any of the values, each possibly a comma list
/// (the official handler SDK sends one header line per allowed origin).
pub(crate) fn origin_allowed<'a>(values: impl IntoIterator<Item = &'a str>, origin: &str) -> bool {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|v| v == "*" || v.eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_event_patterns_as_the_service_writes_them() {
        let h = |p: &str| EventHandler::new("http://h/{event}").user_events(p);
        let user = |name| Event::User(name);
        assert!(h("*").takes("chat", &user("anything")));
        assert!(h("a, b").takes("chat", &user("b")));
        assert!(!h("a,b").takes("chat", &user("c")));
        assert!(!h("").takes("chat", &user("a")));
        assert!(h("a,*").takes("chat", &user("z")));
        // The user pattern never matches a system event, nor the reverse.
        assert!(!h("connect").takes("chat", &Event::System(SystemEvent::Connect)));
    }

    #[test]
    fn system_events_and_hubs_filter() {
        let h = EventHandler::new("http://h/{event}")
            .system_events([SystemEvent::Connect])
            .hub("Chat");
        assert!(h.takes("chat", &Event::System(SystemEvent::Connect)));
        assert!(!h.takes("chat", &Event::System(SystemEvent::Connected)));
        assert!(!h.takes("other", &Event::System(SystemEvent::Connect)));
        let default = EventHandler::new("http://h/");
        assert!(!default.takes("x", &Event::System(SystemEvent::Connect)));
        assert!(default.takes("x", &Event::System(SystemEvent::Disconnected)));
        assert_eq!("Connected".parse(), Ok(SystemEvent::Connected));
        assert_eq!("gp.joined".parse(), Ok(SystemEvent::GroupJoined));
        assert_eq!(" left".parse(), Ok(SystemEvent::GroupLeft));
        assert_eq!(
            SystemEvent::GroupLeft.ce_type(),
            "azure.webpubsub.gp.left",
            "the express SDK 1.1.0 reads group events under gp., not sys."
        );
        assert_eq!(
            SystemEvent::Connect.ce_type(),
            "azure.webpubsub.sys.connect"
        );
        let unknown = "joinedd".parse::<SystemEvent>().unwrap_err();
        assert!(unknown.contains("joined or left"), "{unknown}");
    }

    #[test]
    fn templates_expand_names_as_single_segments() {
        let h = EventHandler::new("http://127.0.0.1:9/api/{hub}/{event}?h={hub}");
        assert_eq!(
            h.expand("chat", "message"),
            "http://127.0.0.1:9/api/chat/message?h=chat"
        );
        assert_eq!(
            h.expand("chat", "../../x?inj=1"),
            "http://127.0.0.1:9/api/chat/..%2F..%2Fx%3Finj%3D1?h=chat"
        );
        let from_url = EventHandler::from_url(&Url::parse("http://h/{hub}/{event}").unwrap());
        assert_eq!(from_url.url_template(), "http://h/{hub}/{event}");
    }

    #[test]
    fn unusable_templates_say_why() {
        let problem = |t: &str| EventHandler::new(t).problem();
        assert_eq!(problem("https://example.com/api/{event}"), None);
        assert!(problem("ftp://example.com/").unwrap().contains("http://"));
        assert!(
            problem("example.com/{event}")
                .unwrap()
                .contains("not a URL")
        );
        assert!(problem("http://h/{user}").unwrap().contains("{user}"));
        assert!(problem("http://h/{event").unwrap().contains("without"));
        assert!(
            problem("http://u:p@h/")
                .unwrap()
                .contains("credentials in its URL")
        );
    }

    #[test]
    fn allowed_origins() {
        assert!(origin_allowed(["*"], "127.0.0.1:8080"));
        assert!(origin_allowed(
            ["a.example", "127.0.0.1:8080"],
            "127.0.0.1:8080"
        ));
        assert!(origin_allowed(["a.example, LOCALHOST:1"], "localhost:1"));
        assert!(!origin_allowed(["a.example"], "127.0.0.1:8080"));
        assert!(!origin_allowed([], "127.0.0.1:8080"));
        let url = Url::parse("HTTPS://Example.COM/x").unwrap();
        assert_eq!(handler_host(&url), "https://example.com:443");
    }
}
