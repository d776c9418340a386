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

/// A scalar value of an operand for one connection.
fn scalar(operand: &Operand, conn: &Connection) -> Option<Option<String>> {
    match operand {
        Operand::Str(s) => Some(Some(s.clone())),
        Operand::Null => Some(None),
        Operand::UserId => Some(conn.user_id.clone()),
        Operand::ConnectionId => Some(Some(conn.id.clone())),
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

fn eval(expr: &Expr, conn: &Connection) -> bool {
    match expr {
        Expr::Eq(a, b) => {
            matches!((scalar(a, conn), scalar(b, conn)), (Some(x), Some(y)) if x == y)
        }
        Expr::Ne(a, b) => {
            matches!((scalar(a, conn), scalar(b, conn)), (Some(x), Some(y)) if x != y)
        }
        Expr::In(item, Operand::Groups) => match scalar(item, conn) {
            Some(Some(group)) => conn.is_in_group(&group),
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
}
