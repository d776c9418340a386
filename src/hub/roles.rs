//! Roles and what they allow (protocol.md 2.6): `webpubsub.joinLeaveGroup`,
//! `webpubsub.sendToGroup`, their `.{group}` forms (exact, ordinal match) and the wildcard
//! forms `webpubsub.joinLeaveGroups.{pattern}` / `webpubsub.sendToGroups.{pattern}`.
//!
//! Pattern syntax: `?` is one character other than `.`, `*` is any run of characters without
//! `.`, `**` is any run including `.`, `\` escapes `\`, `*` and `?`; at most five `*` in all.
//! Patterns are matched by a dynamic program over (pattern, name), so no input can make
//! matching slow, and no regex is ever built from a name.

use std::collections::HashSet;

/// The two permissions a role can grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Permission {
    /// Join and leave groups.
    JoinLeaveGroup,
    /// Publish to groups.
    SendToGroup,
}

impl Permission {
    /// The permission named in the REST path `/permissions/{permission}`.
    pub(crate) fn from_rest_name(name: &str) -> Option<Permission> {
        match name {
            "joinLeaveGroup" => Some(Permission::JoinLeaveGroup),
            "sendToGroup" => Some(Permission::SendToGroup),
            _ => None,
        }
    }
}

const MAX_STARS: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character, not `.`.
    One,
    /// `*`: any run without `.`.
    Star,
    /// `**`: any run.
    DoubleStar,
}

/// A compiled group pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    source: String,
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles a pattern; `None` when it is malformed (dangling or unknown escape, more
    /// than five `*`, empty), in which case the role grants nothing.
    pub(crate) fn parse(source: &str) -> Option<Pattern> {
        if source.is_empty() || source.matches('*').count() > MAX_STARS {
            return None;
        }
        let mut tokens = Vec::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '\\' => match chars.next() {
                    Some(e @ ('\\' | '*' | '?')) => Token::Literal(e),
                    _ => return None,
                },
                '?' => Token::One,
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    Token::DoubleStar
                }
                '*' => Token::Star,
                other => Token::Literal(other),
            });
        }
        Some(Pattern {
            source: source.to_owned(),
            tokens,
        })
    }

    /// Whether the whole group name matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = name.chars().collect();
        let (p, t) = (self.tokens.len(), text.len());
        // matched[j] = tokens[i..] matches text[j..], computed from the last token backwards.
        let mut next = vec![false; t + 1];
        next[t] = true;
        for i in (0..p).rev() {
            let mut cur = vec![false; t + 1];
            for j in (0..=t).rev() {
                cur[j] = match &self.tokens[i] {
                    Token::Literal(c) => j < t && text[j] == *c && next[j + 1],
                    Token::One => j < t && text[j] != '.' && next[j + 1],
                    // Either the star matches nothing here, or it eats one more character.
                    Token::Star => next[j] || (j < t && text[j] != '.' && cur[j + 1]),
                    Token::DoubleStar => next[j] || (j < t && cur[j + 1]),
                };
            }
            next = cur;
        }
        next[0]
    }
}

/// Everything a connection may do with groups: from its token's `role` claims and from
/// REST grants and revocations at runtime.
#[derive(Clone, Debug, Default)]
pub(crate) struct Roles {
    join_any: bool,
    send_any: bool,
    join: HashSet<String>,
    send: HashSet<String>,
    join_patterns: Vec<Pattern>,
    send_patterns: Vec<Pattern>,
}

const JOIN_ANY: &str = "webpubsub.joinLeaveGroup";
const SEND_ANY: &str = "webpubsub.sendToGroup";
const JOIN_ONE: &str = "webpubsub.joinLeaveGroup.";
const SEND_ONE: &str = "webpubsub.sendToGroup.";
const JOIN_PATTERN: &str = "webpubsub.joinLeaveGroups.";
const SEND_PATTERN: &str = "webpubsub.sendToGroups.";

impl Roles {
    /// The roles of a token's `role` claims. Unknown roles and malformed patterns grant nothing.
    pub(crate) fn from_claims<S: AsRef<str>>(roles: &[S]) -> Roles {
        let mut out = Roles::default();
        for role in roles {
            out.add_role(role.as_ref());
        }
        out
    }

    fn add_role(&mut self, role: &str) {
        if role == JOIN_ANY {
            self.join_any = true;
        } else if role == SEND_ANY {
            self.send_any = true;
        } else if let Some(group) = role.strip_prefix(JOIN_ONE) {
            self.join.insert(group.to_owned());
        } else if let Some(group) = role.strip_prefix(SEND_ONE) {
            self.send.insert(group.to_owned());
        } else if let Some(p) = role.strip_prefix(JOIN_PATTERN).and_then(Pattern::parse) {
            self.join_patterns.push(p);
        } else if let Some(p) = role.strip_prefix(SEND_PATTERN).and_then(Pattern::parse) {
            self.send_patterns.push(p);
        }
    }

    /// Whether the connection may perform `permission` on `group`.
    pub(crate) fn allows(&self, permission: Permission, group: &str) -> bool {
        let (any, exact, patterns) = self.parts(permission);
        any || exact.contains(group) || patterns.iter().any(|p| p.matches(group))
    }

    /// The REST "check permission" question: with a target, whether the permission covers that
    /// group; without, whether it is granted for every group.
    pub(crate) fn has(&self, permission: Permission, target: Option<&str>) -> bool {
        match target {
            Some(group) => self.allows(permission, group),
            None => self.parts(permission).0,
        }
    }

    /// REST grant: for one group, or for all groups without a target.
    pub(crate) fn grant(&mut self, permission: Permission, target: Option<&str>) {
        match (permission, target) {
            (Permission::JoinLeaveGroup, None) => self.join_any = true,
            (Permission::SendToGroup, None) => self.send_any = true,
            (Permission::JoinLeaveGroup, Some(g)) => {
                self.join.insert(g.to_owned());
            }
            (Permission::SendToGroup, Some(g)) => {
                self.send.insert(g.to_owned());
            }
        }
    }

    /// REST revoke: removes exactly what the matching grant would have added.
    pub(crate) fn revoke(&mut self, permission: Permission, target: Option<&str>) {
        match (permission, target) {
            (Permission::JoinLeaveGroup, None) => self.join_any = false,
            (Permission::SendToGroup, None) => self.send_any = false,
            (Permission::JoinLeaveGroup, Some(g)) => {
                self.join.remove(g);
            }
            (Permission::SendToGroup, Some(g)) => {
                self.send.remove(g);
            }
        }
    }

    fn parts(&self, permission: Permission) -> (bool, &HashSet<String>, &[Pattern]) {
        match permission {
            Permission::JoinLeaveGroup => (self.join_any, &self.join, &self.join_patterns),
            Permission::SendToGroup => (self.send_any, &self.send, &self.send_patterns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        Pattern::parse(pattern).is_some_and(|p| p.matches(name))
    }

    #[test]
    fn pattern_table() {
        let table: &[(&str, &str, bool)] = &[
            ("a", "a", true),
            ("a", "A", false),
            ("a", "ab", false),
            ("?", "x", true),
            ("?", ".", false),
            ("?", "", false),
            ("a?c", "abc", true),
            ("*", "", true),
            ("*", "anything", true),
            ("*", "a.b", false),
            ("a.*", "a.b", true),
            ("a.*", "a.", true),
            ("a.*", "a.b.c", false),
            ("a.**", "a.b.c", true),
            ("**", "x.y.z", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*.log", "app.log", true),
            ("*.log", "x.app.log", false),
            ("**.log", "x.app.log", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("\\?", "?", true),
            ("\\\\", "\\", true),
            ("grüße.*", "grüße.x", true),
            ("a**b", "a.x.b", true),
        ];
        for (pattern, name, expected) in table {
            assert_eq!(matches(pattern, name), *expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn malformed_patterns_grant_nothing() {
        for bad in ["", "\\", "a\\", "\\a", "******", "*.*.*.*.*.*"] {
            assert!(Pattern::parse(bad).is_none(), "{bad} should be malformed");
        }
        assert!(Pattern::parse("*.*.*.*.*").is_some());
    }

    #[test]
    fn matching_many_stars_against_a_long_name_is_fast() {
        // Exponential backtracking would take ages here; the dynamic program is O(p * n).
        let name = "a".repeat(1024);
        assert!(!matches("*a*a*a*a*b", &name));
    }

    #[test]
    fn literal_roles_are_exact() {
        let roles = Roles::from_claims(&["webpubsub.sendToGroup.a", "webpubsub.joinLeaveGroup.b"]);
        assert!(roles.allows(Permission::SendToGroup, "a"));
        for other in ["a.b", "A", "a*", "", "b"] {
            assert!(!roles.allows(Permission::SendToGroup, other), "{other}");
        }
        assert!(roles.allows(Permission::JoinLeaveGroup, "b"));
        assert!(!roles.allows(Permission::JoinLeaveGroup, "a"));
    }

    #[test]
    fn general_and_wildcard_roles() {
        let roles = Roles::from_claims(&[
            "webpubsub.joinLeaveGroup",
            "webpubsub.sendToGroups.chat.*",
            "webpubsub.unknown",
        ]);
        assert!(roles.allows(Permission::JoinLeaveGroup, "anything"));
        assert!(roles.allows(Permission::SendToGroup, "chat.room1"));
        assert!(!roles.allows(Permission::SendToGroup, "chat.room1.x"));
        assert!(!roles.allows(Permission::SendToGroup, "other"));
        assert!(!Roles::default().allows(Permission::SendToGroup, "g"));
    }

    #[test]
    fn grant_check_and_revoke() {
        let mut roles = Roles::default();
        roles.grant(Permission::SendToGroup, Some("g"));
        assert!(roles.has(Permission::SendToGroup, Some("g")));
        assert!(!roles.has(Permission::SendToGroup, None));
        roles.grant(Permission::SendToGroup, None);
        assert!(roles.has(Permission::SendToGroup, None));
        roles.revoke(Permission::SendToGroup, None);
        assert!(roles.has(Permission::SendToGroup, Some("g")));
        roles.revoke(Permission::SendToGroup, Some("g"));
        assert!(!roles.allows(Permission::SendToGroup, "g"));
    }
}
