//! The subset of the service's OData `filter` syntax the REST API needs to select connections:
//! `userId`, `connectionId` and `groups`; string literals in single quotes (`''` escapes a
//! quote) and `null`; `eq`, `ne`, `in` (`'g' in groups`, `userId in ('a','b')`); `and`, `or`,
//! `not` and parentheses. Anything else is refused with a message saying what was not
//! understood, rather than guessed at.

use super::state::Connection;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Str(String),
    Word(String),
    Open,
    Close,
    Comma,
}

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Str(String),
    Null,
    UserId,
    ConnectionId,
    Groups,
    List(Vec<Operand>),
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Eq(Operand, Operand),
    Ne(Operand, Operand),
    In(Operand, Operand),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Filter(Expr);

/// Longest filter accepted: filters are short; this bounds parsing work and recursion.
const MAX_FILTER_LEN: usize = 4096;
const MAX_DEPTH: usize = 64;

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            s.push('\'');
                        }
                        Some('\'') => break,
                        Some(ch) => s.push(ch),
                        None => return Err("unterminated string literal in filter".to_owned()),
                    }
                }
                out.push(Token::Str(s));
            }
            c if c.is_ascii_alphabetic() => {
                let mut w = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_ascii_alphanumeric() || ch == '_' {
                        w.push(ch);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(w));
            }
            other => return Err(format!("unexpected character `{other}` in filter")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<&str> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => Some(w.as_str()),
            _ => None,
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word() == Some(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.tokens.get(self.pos) == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err("filter is nested too deeply".to_owned())
        } else {
            Ok(())
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.eat_word("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.deeper()?;
        let expr = if self.eat_word("not") {
            Expr::Not(Box::new(self.unary()?))
        } else if self.eat(&Token::Open) {
            let inner = self.or()?;
            if !self.eat(&Token::Close) {
                return Err("missing `)` in filter".to_owned());
            }
            inner
        } else {
            self.comparison()?
        };
        self.depth -= 1;
        Ok(expr)
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.operand()?;
        if self.eat_word("eq") {
            Ok(Expr::Eq(left, self.operand()?))
        } else if self.eat_word("ne") {
            Ok(Expr::Ne(left, self.operand()?))
        } else if self.eat_word("in") {
            let right = if self.eat(&Token::Open) {
                let mut items = vec![self.operand()?];
                while self.eat(&Token::Comma) {
                    items.push(self.operand()?);
                }
                if !self.eat(&Token::Close) {
                    return Err("missing `)` after the list in filter".to_owned());
                }
                Operand::List(items)
            } else {
                self.operand()?
            };
            Ok(Expr::In(left, right))
        } else {
            Err("expected `eq`, `ne` or `in` in filter".to_owned())
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        match token {
            Some(Token::Str(s)) => Ok(Operand::Str(s)),
            Some(Token::Word(w)) => match w.as_str() {
                "null" => Ok(Operand::Null),
                "userId" => Ok(Operand::UserId),
                "connectionId" => Ok(Operand::ConnectionId),
                "groups" => Ok(Operand::Groups),
                other => Err(format!(
                    "`{other}` is not supported in filters by the local hub: use userId, connectionId, groups"
                )),
            },
            _ => Err(
                "expected a value (string, null, userId, connectionId or groups) in filter"
                    .to_owned(),
            ),
        }
    }
}

/// What a filter can ask of a connection. The hub's [`Connection`] answers from its state;
/// the fuzz target (feature `fuzzing`) answers from a plain value.
trait Subject {
    fn connection_id(&self) -> &str;
    fn user_id(&self) -> Option<&str>;
    fn is_in_group(&self, group: &str) -> bool;
}

impl Subject for Connection {
    fn connection_id(&self) -> &str {
        &self.id
    }

    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn is_in_group(&self, group: &str) -> bool {
        Connection::is_in_group(self, group)
    }
}

/// A scalar value of an operand for one connection: `None` for operands that are not
/// scalars (`groups`, a list), `Some(None)` for null or a connection without a user.
fn scalar<'a>(operand: &'a Operand, subject: &'a impl Subject) -> Option<Option<&'a str>> {
    match operand {
        Operand::Str(s) => Some(Some(s)),
        Operand::Null => Some(None),
        Operand::UserId => Some(subject.user_id()),
        Operand::ConnectionId => Some(Some(subject.connection_id())),
        Operand::Groups | Operand::List(_) => None,
    }
}

impl Filter {
    /// Parses a filter, or says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Filter, String> {
        if text.len() > MAX_FILTER_LEN {
            return Err("filter is longer than 4096 characters".to_owned());
        }
        let mut parser = Parser {
            tokens: tokenize(text)?,
            pos: 0,
            depth: 0,
        };
        let expr = parser.or()?;
        if parser.pos < parser.tokens.len() {
            return Err("unexpected text at the end of the filter".to_owned());
        }
        Ok(Filter(expr))
    }

    /// Whether the connection is selected.
    pub(crate) fn matches(&self, conn: &Connection) -> bool {
        eval(&self.0, conn)
    }
}

fn eval(expr: &Expr, conn: &impl Subject) -> bool {
    match expr {
        Expr::Eq(a, b) => {
            matches!((scalar(a, conn), scalar(b, conn)), (Some(x), Some(y)) if x == y)
        }
        Expr::Ne(a, b) => {
            matches!((scalar(a, conn), scalar(b, conn)), (Some(x), Some(y)) if x != y)
        }
        Expr::In(item, Operand::Groups) => match scalar(item, conn) {
            Some(Some(group)) => conn.is_in_group(group),
            _ => false,
        },
        Expr::In(item, Operand::List(list)) => {
            let value = scalar(item, conn);
            value.is_some() && list.iter().any(|o| scalar(o, conn) == value)
        }
        Expr::In(..) => false,
        Expr::Not(inner) => !eval(inner, conn),
        Expr::And(a, b) => eval(a, conn) && eval(b, conn),
        Expr::Or(a, b) => eval(a, conn) || eval(b, conn),
    }
}

/// Writes a parsed filter back as OData, with parentheses only where precedence needs them,
/// so that parsing the text gives the same filter and never nests deeper than the original.
/// Used to check the parser (unit tests and the fuzz target), not by the hub.
#[cfg(any(test, feature = "fuzzing"))]
mod print {
    use super::{Expr, Operand};

    /// Binding strength: `or` binds loosest, then `and`, then `not` and comparisons.
    #[derive(Clone, Copy, PartialEq, PartialOrd)]
    enum Level {
        Or,
        And,
        Unary,
    }

    pub(super) fn expr(e: &Expr) -> String {
        let mut out = String::new();
        write_expr(e, Level::Or, &mut out);
        out
    }

    fn write_expr(e: &Expr, at: Level, out: &mut String) {
        let own = match e {
            Expr::Or(..) => Level::Or,
            Expr::And(..) => Level::And,
            _ => Level::Unary,
        };
        if own < at {
            out.push('(');
            write_expr(e, Level::Or, out);
            out.push(')');
            return;
        }
        match e {
            // Both are left-associative: the right side must bind tighter.
            Expr::Or(a, b) => {
                write_expr(a, Level::Or, out);
                out.push_str(" or ");
                write_expr(b, Level::And, out);
            }
            Expr::And(a, b) => {
                write_expr(a, Level::And, out);
                out.push_str(" and ");
                write_expr(b, Level::Unary, out);
            }
            Expr::Not(inner) => {
                out.push_str("not ");
                write_expr(inner, Level::Unary, out);
            }
            Expr::Eq(a, b) => comparison(a, "eq", b, out),
            Expr::Ne(a, b) => comparison(a, "ne", b, out),
            Expr::In(a, b) => comparison(a, "in", b, out),
        }
    }

    fn comparison(a: &Operand, op: &str, b: &Operand, out: &mut String) {
        operand(a, out);
        out.push(' ');
        out.push_str(op);
        out.push(' ');
        operand(b, out);
    }

    fn operand(o: &Operand, out: &mut String) {
        match o {
            Operand::Str(s) => {
                out.push('\'');
                out.push_str(&s.replace('\'', "''"));
                out.push('\'');
            }
            Operand::Null => out.push_str("null"),
            Operand::UserId => out.push_str("userId"),
            Operand::ConnectionId => out.push_str("connectionId"),
            Operand::Groups => out.push_str("groups"),
            Operand::List(items) => {
                out.push('(');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    operand(item, out);
                }
                out.push(')');
            }
        }
    }
}

/// Entry points for the fuzz target `odata_filter` (cargo feature `fuzzing`); not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use super::{Filter, Subject};

    /// A parsed filter.
    #[derive(Debug, PartialEq)]
    pub struct ParsedFilter(Filter);

    /// A connection as a filter sees it.
    #[derive(Debug, Default)]
    pub struct Probe {
        /// Its connection id.
        pub connection_id: String,
        /// Its user, if any.
        pub user_id: Option<String>,
        /// The groups it is in.
        pub groups: Vec<String>,
    }

    impl Subject for Probe {
        fn connection_id(&self) -> &str {
            &self.connection_id
        }

        fn user_id(&self) -> Option<&str> {
            self.user_id.as_deref()
        }

        fn is_in_group(&self, group: &str) -> bool {
            self.groups.iter().any(|g| g == group)
        }
    }

    /// Parses a filter as the hub's REST API does.
    pub fn parse(text: &str) -> Result<ParsedFilter, String> {
        Filter::parse(text).map(ParsedFilter)
    }

    impl ParsedFilter {
        /// The filter written back as OData (see `print`).
        pub fn to_odata(&self) -> String {
            super::print::expr(&(self.0).0)
        }

        /// Whether the filter selects `probe`.
        pub fn matches(&self, probe: &Probe) -> bool {
            super::eval(&(self.0).0, probe)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        for ok in [
            "userId eq 'user1'",
            "userId ne 'a''b'",
            "'group1' in groups",
            "not('group1' in groups)",
            "userId eq 'u' and 'g' in groups or connectionId eq 'c'",
            "userId in ('a', 'b')",
            "userId eq null",
        ] {
            assert!(Filter::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in [
            "startswith(userId, 'x')",
            "userId gt 'a'",
            "userId eq 'unterminated",
            "(userId eq 'a'",
            "userId eq 'a' extra",
            "userId $ 'a'",
            &"(".repeat(100),
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prints_back_to_the_same_filter() {
        for text in [
            "userId eq 'a''b'",
            "not('group1' in groups)",
            "userId eq 'u' and ('g' in groups or connectionId eq 'c')",
            "(userId eq 'u' and 'g' in groups) or not not connectionId ne null",
            "userId in ('a', 'b') or userId eq 'x' or userId eq 'y'",
            "userId eq 'a' or (userId eq 'b' or userId eq 'c')",
            "userId eq 'a' and (userId eq 'b' and userId eq 'c')",
        ] {
            let filter = Filter::parse(text).unwrap();
            let printed = print::expr(&filter.0);
            assert_eq!(Filter::parse(&printed), Ok(filter), "{text} -> {printed}");
        }
    }
}
