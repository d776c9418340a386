//! Who each client of a fleet is: a template expanded per client index into a user id, roles
//! and groups joined on connect (the token's `sub`, `role` and `webpubsub.group` claims).

use std::sync::Arc;

use crate::credential::TokenOptions;

use super::FleetError;

/// What one client is: the claims of its tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The user id (`sub`), if any.
    pub user_id: Option<String>,
    /// Roles, such as `webpubsub.sendToGroup.chat`.
    pub roles: Vec<String>,
    /// Groups the hub joins the connection to when it connects (and on every reconnect).
    pub groups: Vec<String>,
}

impl Identity {
    /// The token options that grant this identity.
    pub fn token_options(&self) -> TokenOptions {
        let mut options = TokenOptions::new()
            .roles(self.roles.iter().cloned())
            .groups(self.groups.iter().cloned());
        options.user_id = self.user_id.clone();
        options
    }
}

/// A template of identities. Every text may hold placeholders:
///
/// | placeholder | value for client `i` |
/// |---|---|
/// | `{i}` | the client index, from 0 |
/// | `{u}` | the user index: `i / connections_per_user` (several connections per user) |
/// | `{g}` | the group index: `i / group_size` (clients in groups of `group_size`) |
///
/// ```
/// use webpubsub_fleet::fleet::IdentityTemplate;
///
/// let template = IdentityTemplate::new()
///     .user_id("user-{u}")
///     .connections_per_user(2)
///     .group("room-{g}")
///     .group_size(10)
///     .role("webpubsub.sendToGroup.room-{g}");
/// let id = template.expand(13);
/// assert_eq!(id.user_id.as_deref(), Some("user-6"));
/// assert_eq!(id.groups, ["room-1"]);
/// assert_eq!(id.roles, ["webpubsub.sendToGroup.room-1"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityTemplate {
    /// User id template; `None` connects anonymously.
    pub user_id: Option<String>,
    /// Consecutive clients that share one user id (at least 1).
    pub connections_per_user: u64,
    /// Role templates.
    pub roles: Vec<String>,
    /// Templates of groups joined on connect.
    pub groups: Vec<String>,
    /// Clients per group index `{g}` (at least 1).
    pub group_size: u64,
}

/// The default user id template: `user-{u}`, one user per client unless
/// `connections_per_user` says otherwise.
pub const DEFAULT_USER_ID: &str = "user-{u}";

impl Default for IdentityTemplate {
    fn default() -> Self {
        IdentityTemplate {
            user_id: Some(DEFAULT_USER_ID.to_owned()),
            connections_per_user: 1,
            roles: Vec::new(),
            groups: Vec::new(),
            group_size: 1,
        }
    }
}

impl IdentityTemplate {
    /// One user per client named `user-{u}`, no roles, no groups.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the user id template.
    pub fn user_id(mut self, template: impl Into<String>) -> Self {
        self.user_id = Some(template.into());
        self
    }
    /// Connects anonymously.
    pub fn anonymous(mut self) -> Self {
        self.user_id = None;
        self
    }
    /// Sets how many consecutive clients share a user.
    pub fn connections_per_user(mut self, n: u64) -> Self {
        self.connections_per_user = n;
        self
    }
    /// Adds a role template.
    pub fn role(mut self, template: impl Into<String>) -> Self {
        self.roles.push(template.into());
        self
    }
    /// Adds a template of a group joined on connect.
    pub fn group(mut self, template: impl Into<String>) -> Self {
        self.groups.push(template.into());
        self
    }
    /// Sets the clients per `{g}`.
    pub fn group_size(mut self, n: u64) -> Self {
        self.group_size = n;
        self
    }

    /// Checks the counts and that every placeholder is known.
    pub fn validate(&self) -> Result<(), FleetError> {
        if self.connections_per_user == 0 || self.group_size == 0 {
            return Err(FleetError::InvalidOptions(
                "connections_per_user and group_size must be at least 1".into(),
            ));
        }
        let texts = self.user_id.iter().chain(&self.roles).chain(&self.groups);
        for template in texts {
            if let Some(placeholder) = unknown_placeholder(template) {
                return Err(FleetError::UnknownPlaceholder {
                    template: template.clone(),
                    placeholder,
                });
            }
        }
        Ok(())
    }

    /// The identity of client `index`. Counts of 0 read as 1, so this never divides by zero.
    pub fn expand(&self, index: u64) -> Identity {
        let values = Values {
            i: index,
            u: index / self.connections_per_user.max(1),
            g: index / self.group_size.max(1),
        };
        Identity {
            user_id: self.user_id.as_deref().map(|t| values.fill(t)),
            roles: self.roles.iter().map(|t| values.fill(t)).collect(),
            groups: self.groups.iter().map(|t| values.fill(t)).collect(),
        }
    }
}

/// Where identities come from: a template, or any function of the client index.
#[derive(Clone)]
pub enum Identities {
    /// Expanded from a template.
    Template(IdentityTemplate),
    /// Computed by a function (must be cheap: it runs once per client start).
    Custom(Arc<dyn Fn(u64) -> Identity + Send + Sync>),
}

impl Identities {
    /// The identity of client `index`.
    pub fn identity(&self, index: u64) -> Identity {
        match self {
            Identities::Template(t) => t.expand(index),
            Identities::Custom(f) => f(index),
        }
    }
}

impl Default for Identities {
    fn default() -> Self {
        Identities::Template(IdentityTemplate::default())
    }
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identities::Template(t) => f.debug_tuple("Template").field(t).finish(),
            Identities::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

struct Values {
    i: u64,
    u: u64,
    g: u64,
}

impl Values {
    fn fill(&self, template: &str) -> String {
        // Not three `replace` calls: one pass, and a value can never be re-expanded.
        let mut out = String::with_capacity(template.len() + 8);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open..];
            let value = match after.get(..3) {
                Some("{i}") => Some(self.i),
                Some("{u}") => Some(self.u),
                Some("{g}") => Some(self.g),
                _ => None,
            };
            match value {
                Some(v) => {
                    out.push_str(&v.to_string());
                    rest = &after[3..];
                }
                None => {
                    out.push('{');
                    rest = &after[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The first `{name}` in `template` that is not `{i}`, `{u}` or `{g}`.
fn unknown_placeholder(template: &str) -> Option<String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        if !matches!(name, "i" | "u" | "g") {
            return Some(name.to_owned());
        }
        rest = &after[close + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_is_one_user_per_client() {
        let id = IdentityTemplate::new().expand(42);
        assert_eq!(id.user_id.as_deref(), Some("user-42"));
        assert!(id.roles.is_empty() && id.groups.is_empty());
    }

    #[test]
    fn several_connections_share_a_user() {
        let t = IdentityTemplate::new().connections_per_user(3);
        let users: Vec<_> = (0..7).map(|i| t.expand(i).user_id.unwrap()).collect();
        assert_eq!(
            users,
            [
                "user-0", "user-0", "user-0", "user-1", "user-1", "user-1", "user-2"
            ]
        );
    }

    #[test]
    fn group_index_follows_group_size() {
        let t = IdentityTemplate::new()
            .group("g{g}")
            .group("all")
            .group_size(4)
            .role("webpubsub.sendToGroup.g{g}");
        assert_eq!(t.expand(3).groups, ["g0", "all"]);
        assert_eq!(t.expand(4).groups, ["g1", "all"]);
        assert_eq!(t.expand(9).roles, ["webpubsub.sendToGroup.g2"]);
    }

    #[test]
    fn placeholders_expand_once_and_braces_stay() {
        let t = IdentityTemplate::new().user_id("{i}-{u}-{g}-{x-{i}");
        assert_eq!(t.expand(5).user_id.as_deref(), Some("5-5-5-{x-5"));
        assert_eq!(
            IdentityTemplate::new()
                .user_id("{")
                .expand(1)
                .user_id
                .as_deref(),
            Some("{")
        );
    }

    #[test]
    fn unknown_placeholders_and_zero_counts_are_refused() {
        let err = IdentityTemplate::new().group("room-{room}").validate();
        assert_eq!(
            err,
            Err(FleetError::UnknownPlaceholder {
                template: "room-{room}".into(),
                placeholder: "room".into()
            })
        );
        assert!(IdentityTemplate::new().group_size(0).validate().is_err());
        assert!(
            IdentityTemplate::new()
                .connections_per_user(0)
                .validate()
                .is_err()
        );
        // Expanding with zero counts still works (reads as 1).
        assert_eq!(
            IdentityTemplate::new()
                .group_size(0)
                .group("{g}")
                .expand(3)
                .groups,
            ["3"]
        );
        assert!(
            IdentityTemplate::new()
                .user_id("a-{i}-{u}")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn token_options_carry_the_claims() {
        let id = IdentityTemplate::new()
            .anonymous()
            .group("lobby")
            .role("webpubsub.joinLeaveGroup")
            .expand(0);
        let options = id.token_options();
        assert_eq!(options.user_id, None);
        assert_eq!(options.groups, ["lobby"]);
        assert_eq!(options.roles, ["webpubsub.joinLeaveGroup"]);
    }
}
