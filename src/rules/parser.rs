//! Lexer and recursive-descent parser of the rule language, with errors that point at the column.
//!
//! ```text
//! rule    := [name ":"] action ["where" expr]
//! action  := "accept" | "reject" | "reset" | "label" (hard|soft|pseudo) | "tag" STR | "untag" STR
//!          | "keep" "best" N "per" "prompt" "by" key ("," key)*      key := field ["asc"|"desc"]
//!          | "reject" "duplicates" | "reject" "near-duplicates" "threshold" NUM
//!          | "reject" "contaminated" "by" STR ["ngram" N]
//! expr    := and ("or" and)*          and := not ("and" not)*        not := "not" not | atom
//! atom    := "(" expr ")" | field (op value | "~" STR | "contains" STR)?
//! ```

use super::ast::{Action, CmpOp, Expr, Field, FieldType, Rule, SortKey, Value};
use crate::domain::{Kind, LabelType, Status};

/// A parse error: what was wrong, and the 1-based character column where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Number(f64),
    Str(String),
    Op(CmpOp),
    Tilde,
    LParen,
    RParen,
    Comma,
    Dot,
    Colon,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Number(n) => format!("the number {n}"),
            Tok::Str(s) => format!("the string {}", super::ast::quote(s)),
            Tok::Op(op) => format!("`{}`", op.as_str()),
            Tok::Tilde => "`~`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Dot => "`.`".into(),
            Tok::Colon => "`:`".into(),
            Tok::End => "the end of the rule".into(),
        }
    }
}

fn err<T>(column: usize, message: impl std::fmt::Display) -> Result<T, ParseError> {
    Err(ParseError { column, message: message.to_string() })
}

/// Splits a rule into tokens with their 1-based columns. `#` starts a comment.
fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '#' => break,
            '(' | ')' | ',' | '.' | ':' | '~' => {
                out.push((
                    match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        ',' => Tok::Comma,
                        '.' => Tok::Dot,
                        ':' => Tok::Colon,
                        _ => Tok::Tilde,
                    },
                    col,
                ));
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => (CmpOp::Eq, 2),
                    ('=', _) => (CmpOp::Eq, 1),
                    ('!', Some('=')) | ('<', Some('>')) => (CmpOp::Ne, 2),
                    ('<', Some('=')) => (CmpOp::Le, 2),
                    ('<', _) => (CmpOp::Lt, 1),
                    ('>', Some('=')) => (CmpOp::Ge, 2),
                    ('>', _) => (CmpOp::Gt, 1),
                    _ => return err(col, "`!` must be followed by `=`; write `not` to negate"),
                };
                out.push((Tok::Op(op), col));
                i += len;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return err(col, "this string is never closed"),
                        Some(&ch) if ch == quote => break,
                        Some('\\') => {
                            let escaped = match chars.get(i + 1) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                Some(&e @ ('"' | '\'' | '\\')) => e,
                                Some(other) => return err(i + 1, format!("unknown escape `\\{other}`; use \\\" \\\\ \\n \\t")),
                                None => return err(col, "this string is never closed"),
                            };
                            s.push(escaped);
                            i += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
                out.push((Tok::Str(s), col));
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit() || *d == '.')) => {
                let start = i;
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    let exponent_sign = (d == '-' || d == '+') && matches!(chars[i - 1], 'e' | 'E');
                    if d.is_ascii_digit() || d == '.' || d == 'e' || d == 'E' || d == '_' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => out.push((Tok::Number(n), col)),
                    _ => return err(col, format!("`{text}` is not a number")),
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-') {
                    i += 1;
                }
                out.push((Tok::Ident(chars[start..i].iter().collect()), col));
            }
            other => return err(col, format!("unexpected character `{other}`")),
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    /// How deep inside parentheses and `not`s the parser is: bounded, so that a hostile rule
    /// (100,000 `(`) is an error at its column, not a stack overflow.
    depth: usize,
}

/// The deepest nesting of parentheses and `not` a rule may have.
pub const MAX_NESTING: usize = 100;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn col(&self) -> usize {
        self.toks[self.pos].1
    }

    fn next(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w == word)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.is_word(word) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, word: &str, after: &str) -> Result<(), ParseError> {
        if self.eat_word(word) { Ok(()) } else { err(self.col(), format!("expected `{word}` {after}, found {}", self.peek().describe())) }
    }

    fn string(&mut self, what: &str) -> Result<String, ParseError> {
        match self.next() {
            (Tok::Str(s), _) => Ok(s),
            (other, col) => err(col, format!("expected {what} in quotes, found {}", other.describe())),
        }
    }

    fn count(&mut self, what: &str) -> Result<u32, ParseError> {
        match self.next() {
            (Tok::Number(n), _) if n >= 1.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) => Ok(n as u32),
            (other, col) => err(col, format!("expected {what} (a whole number of at least 1), found {}", other.describe())),
        }
    }

    fn rule(&mut self) -> Result<Rule, ParseError> {
        let name = match (&self.toks[self.pos].0, self.toks.get(self.pos + 1).map(|t| &t.0)) {
            (Tok::Ident(n) | Tok::Str(n), Some(Tok::Colon)) => {
                let n = n.clone();
                self.next();
                self.next();
                Some(n)
            }
            _ => None,
        };
        let action = self.action()?;
        let filter = if self.eat_word("where") { Some(self.expr()?) } else { None };
        match self.peek() {
            Tok::End => Ok(Rule { name, action, filter }),
            other if filter.is_none() => err(self.col(), format!("expected `where` or the end of the rule, found {}", other.describe())),
            other => err(self.col(), format!("expected `and`, `or` or the end of the rule, found {}", other.describe())),
        }
    }

    fn action(&mut self) -> Result<Action, ParseError> {
        let (tok, col) = self.next();
        let Tok::Ident(word) = tok else {
            return err(col, format!("a rule starts with an action (accept, reject, label, tag, untag, keep), found {}", tok.describe()));
        };
        match word.as_str() {
            "accept" => Ok(Action::SetStatus(Status::Accepted)),
            "reset" => Ok(Action::SetStatus(Status::Pending)),
            "reject" if self.eat_word("duplicates") => Ok(Action::RejectDuplicates),
            "reject" if self.eat_word("near-duplicates") => {
                self.expect_word("threshold", "after `near-duplicates`")?;
                match self.next() {
                    (Tok::Number(t), _) if t > 0.0 && t <= 1.0 => Ok(Action::RejectNearDuplicates { threshold: t }),
                    (other, col) => err(col, format!("expected a similarity threshold in (0, 1], found {}", other.describe())),
                }
            }
            "reject" if self.eat_word("contaminated") => {
                self.expect_word("by", "after `contaminated`")?;
                let file = self.string("the evaluation file's path")?;
                let ngram = if self.eat_word("ngram") { self.count("the n-gram size")? } else { super::DEFAULT_NGRAM };
                Ok(Action::RejectContaminated { file, ngram })
            }
            "reject" => Ok(Action::SetStatus(Status::Rejected)),
            "label" => {
                let (tok, col) = self.next();
                match tok {
                    Tok::Ident(l) | Tok::Str(l) => l.parse::<LabelType>().map(Action::Label).or_else(|e| err(col, e)),
                    other => err(col, format!("expected a label type (hard, soft, pseudo), found {}", other.describe())),
                }
            }
            "tag" => Ok(Action::Tag(self.string("the tag")?)),
            "untag" => Ok(Action::Untag(self.string("the tag")?)),
            "keep" => {
                self.expect_word("best", "after `keep`")?;
                let n = self.count("how many to keep")?;
                self.expect_word("per", "after the count")?;
                self.expect_word("prompt", "after `per`")?;
                self.expect_word("by", "after `per prompt`")?;
                let mut keys = Vec::new();
                loop {
                    let col = self.col();
                    let field = self.field()?;
                    if !matches!(field.field_type(), FieldType::Number | FieldType::Bool) {
                        return err(col, format!("`{field}` cannot rank samples: use a score, a pass, or a token count"));
                    }
                    let descending = if self.eat_word("asc") {
                        false
                    } else {
                        self.eat_word("desc");
                        true
                    };
                    keys.push(SortKey { field, descending });
                    if !matches!(self.peek(), Tok::Comma) {
                        break;
                    }
                    self.next();
                }
                Ok(Action::KeepBest { n, keys })
            }
            other => err(col, format!("unknown action `{other}`; expected accept, reject, reset, label, tag, untag or keep")),
        }
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        let (tok, col) = self.next();
        let Tok::Ident(name) = tok else {
            return err(col, format!("expected a field (score.NAME, tokens, teacher, ...), found {}", tok.describe()));
        };
        if name == "score" || name == "pass" {
            if !matches!(self.peek(), Tok::Dot) {
                return err(self.col(), format!("`{name}` needs a verifier name: `{name}.math`"));
            }
            self.next();
            return match self.next() {
                (Tok::Ident(v), _) => Ok(if name == "score" { Field::Score(v) } else { Field::Pass(v) }),
                (other, col) => err(col, format!("expected a verifier name after `{name}.`, found {}", other.describe())),
            };
        }
        Field::SIMPLE.iter().find(|(n, _)| *n == name).map(|(_, f)| f.clone()).map_or_else(
            || {
                let known: Vec<&str> = Field::SIMPLE.iter().map(|(n, _)| *n).collect();
                err(col, format!("unknown field `{name}`; fields are score.NAME, pass.NAME, {}", known.join(", ")))
            },
            Ok,
        )
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut terms = vec![self.and()?];
        while self.eat_word("or") {
            terms.push(self.and()?);
        }
        Ok(Expr::any(terms))
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut terms = vec![self.not()?];
        while self.eat_word("and") {
            terms.push(self.not()?);
        }
        Ok(Expr::all(terms))
    }

    /// One level deeper, or an error at the current column past [`MAX_NESTING`].
    fn deeper(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return err(self.col(), format!("nested more than {MAX_NESTING} levels deep (parentheses and `not`): write it flatter"));
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if !self.is_word("not") {
            return self.atom();
        }
        // `not not …` in a loop: a long run of them costs no stack.
        let mut negations = 0usize;
        while self.eat_word("not") {
            negations += 1;
            if negations > MAX_NESTING {
                return err(self.col(), format!("more than {MAX_NESTING} `not` in a row"));
            }
        }
        let mut e = self.atom()?;
        for _ in 0..negations {
            e = Expr::Not(Box::new(e));
        }
        Ok(e)
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        if matches!(self.peek(), Tok::LParen) {
            let open = self.col();
            self.deeper()?;
            self.next();
            let e = self.expr()?;
            self.depth -= 1;
            return match self.next() {
                (Tok::RParen, _) => Ok(e),
                (other, col) => err(col, format!("expected `)` to close the `(` at column {open}, found {}", other.describe())),
            };
        }
        let col = self.col();
        let field = self.field()?;
        let ty = field.field_type();
        match self.peek().clone() {
            Tok::Op(op) => {
                self.next();
                self.comparison(field, ty, op, col)
            }
            Tok::Tilde => {
                self.next();
                if !matches!(ty, FieldType::Text | FieldType::Name) {
                    return err(col, format!("`~` matches text; `{field}` is not a text field"));
                }
                let at = self.col();
                let pattern = self.string("a regular expression")?;
                if let Err(e) = regex::Regex::new(&pattern) {
                    return err(at, format!("invalid regular expression: {}", e.to_string().lines().last().unwrap_or("")));
                }
                Ok(Expr::Matches { field, pattern })
            }
            Tok::Ident(w) if w == "contains" => {
                self.next();
                if !matches!(ty, FieldType::Text | FieldType::Name) {
                    return err(col, format!("`contains` looks in text; `{field}` is not a text field"));
                }
                Ok(Expr::Contains { field, text: self.string("the text to look for")? })
            }
            _ if ty == FieldType::Bool => Ok(Expr::Flag(field)),
            other => err(
                self.col(),
                format!("expected a comparison after `{field}` (=, !=, <, <=, >, >=, ~, contains), found {}", other.describe()),
            ),
        }
    }

    fn comparison(&mut self, field: Field, ty: FieldType, op: CmpOp, field_col: usize) -> Result<Expr, ParseError> {
        let (tok, col) = self.next();
        let ordered = matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge);
        if ordered && ty != FieldType::Number {
            return err(field_col, format!("`{}` compares numbers; `{field}` is not a number", op.as_str()));
        }
        let value = match (ty, tok) {
            (FieldType::Number, Tok::Number(n)) => Value::Number(n),
            (FieldType::Bool, Tok::Ident(b)) if b == "true" || b == "false" => Value::Bool(b == "true"),
            (FieldType::Name | FieldType::Text | FieldType::Tag, Tok::Str(s)) => Value::Text(s),
            (FieldType::Kind, Tok::Str(s) | Tok::Ident(s)) => Value::Kind(s.parse::<Kind>().or_else(|e| err(col, e))?),
            (FieldType::Label, Tok::Str(s) | Tok::Ident(s)) => Value::Label(s.parse::<LabelType>().or_else(|e| err(col, e))?),
            (FieldType::Status, Tok::Str(s) | Tok::Ident(s)) => Value::Status(s.parse::<Status>().or_else(|e| err(col, e))?),
            (ty, other) => {
                let wanted = match ty {
                    FieldType::Number => "a number",
                    FieldType::Bool => "true or false",
                    _ => "a string in quotes",
                };
                return err(col, format!("`{field}` compares with {wanted}, found {}", other.describe()));
            }
        };
        Ok(Expr::Compare { field, op, value })
    }
}

/// A verifier a rule or filter names: `score.X` or `pass.X`, at the 1-based column of `score`/`pass`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierRef {
    pub column: usize,
    /// `score` or `pass`.
    pub field: &'static str,
    pub verifier: String,
}

/// The verifiers `src` (a rule or a filter that parses) names, in order. In a rule that parses,
/// `score` or `pass` followed by `.` is always a field: strings are single tokens, and a rule
/// name before `:` is followed by the colon.
#[must_use]
pub fn verifier_refs(src: &str) -> Vec<VerifierRef> {
    let Ok(toks) = lex(src) else { return Vec::new() };
    toks.windows(3)
        .filter_map(|w| match (&w[0], &w[1].0, &w[2].0) {
            ((Tok::Ident(f), column), Tok::Dot, Tok::Ident(v)) if f == "score" || f == "pass" => {
                Some(VerifierRef { column: *column, field: if f == "score" { "score" } else { "pass" }, verifier: v.clone() })
            }
            _ => None,
        })
        .collect()
}

/// Parses one rule.
pub fn parse_rule(src: &str) -> Result<Rule, ParseError> {
    let toks = lex(src)?;
    if matches!(toks[0].0, Tok::End) {
        return err(1, "the rule is empty");
    }
    Parser { toks, pos: 0, depth: 0 }.rule()
}

/// Parses a predicate on its own (`list --where`, the TUI's filter).
pub fn parse_expr(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    if matches!(toks[0].0, Tok::End) {
        return err(1, "the filter is empty");
    }
    let mut p = Parser { toks, pos: 0, depth: 0 };
    let e = p.expr()?;
    match p.peek() {
        Tok::End => Ok(e),
        other => err(p.col(), format!("expected `and`, `or` or the end, found {}", other.describe())),
    }
}
