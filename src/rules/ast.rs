//! The rule language's syntax tree, and its printer: `parse(print(rule)) == rule`.

use std::fmt;

use crate::domain::{Kind, LabelType, Status};

/// A named rule: an action, applied to the samples a predicate selects.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `name: ...` in a rules file; decisions are recorded as made by `rule:<name>`.
    pub name: Option<String>,
    pub action: Action,
    /// `where ...`; none means every sample.
    pub filter: Option<Expr>,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `accept` / `reject`
    SetStatus(Status),
    /// `label hard|soft|pseudo`
    Label(LabelType),
    /// `tag "name"`
    Tag(String),
    /// `untag "name"`
    Untag(String),
    /// `keep best N per prompt by key, ...`: rejection sampling, the others are rejected.
    KeepBest { n: u32, keys: Vec<SortKey> },
    /// `reject duplicates`: exact content hash; the first (lowest id) of each group stays.
    RejectDuplicates,
    /// `reject near-duplicates threshold T`: MinHash estimate of Jaccard similarity ≥ T.
    RejectNearDuplicates { threshold: f64 },
    /// `reject contaminated by "FILE" [ngram N]`: prompts sharing an N-gram with an evaluation set.
    RejectContaminated { file: String, ngram: u32 },
}

/// One ordering key of `keep best`.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub field: Field,
    /// Best first: descending unless `asc` (scores are better high, lengths low when asked).
    pub descending: bool,
}

/// A field a predicate can test.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Score(String),
    Pass(String),
    Tokens,
    ReasoningTokens,
    AnswerTokens,
    Teacher,
    Source,
    Kind,
    Label,
    Status,
    Tag,
    FinishReason,
    HasLogprobs,
    HasReference,
    /// Tool use: the prompt offers tools or holds tool calls or results, or the answer calls one.
    HasTools,
    /// The trace was cut off inside its reasoning: opened and never closed, marked incomplete
    /// by the data, or stopped by the token limit before any answer.
    ReasoningCutOff,
    Prompt,
    Reasoning,
    Answer,
    Reference,
    /// The mean log-prob the teacher gave the trace's own tokens (scored or imported log-probs).
    MeanLogprob,
    /// The least of them: the token the teacher found least likely.
    MinLogprob,
    /// exp(−mean_logprob).
    Perplexity,
}

/// What values a field holds, which decides the operators it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Number,
    /// Short names compared whole: teacher, source, finish_reason.
    Name,
    /// Long texts: `~ "regex"` and `contains "text"`.
    Text,
    Kind,
    Label,
    Status,
    Tag,
    Bool,
}

impl Field {
    /// Names of the simple fields, as written in rules.
    pub const SIMPLE: &'static [(&'static str, Field)] = &[
        ("tokens", Field::Tokens),
        ("reasoning_tokens", Field::ReasoningTokens),
        ("answer_tokens", Field::AnswerTokens),
        ("teacher", Field::Teacher),
        ("source", Field::Source),
        ("kind", Field::Kind),
        ("label", Field::Label),
        ("status", Field::Status),
        ("tag", Field::Tag),
        ("finish_reason", Field::FinishReason),
        ("has_logprobs", Field::HasLogprobs),
        ("has_reference", Field::HasReference),
        ("has_tools", Field::HasTools),
        ("reasoning_cut_off", Field::ReasoningCutOff),
        ("prompt", Field::Prompt),
        ("reasoning", Field::Reasoning),
        ("answer", Field::Answer),
        ("reference", Field::Reference),
        ("mean_logprob", Field::MeanLogprob),
        ("min_logprob", Field::MinLogprob),
        ("perplexity", Field::Perplexity),
    ];

    #[must_use]
    pub fn field_type(&self) -> FieldType {
        match self {
            Field::Score(_)
            | Field::Tokens
            | Field::ReasoningTokens
            | Field::AnswerTokens
            | Field::MeanLogprob
            | Field::MinLogprob
            | Field::Perplexity => FieldType::Number,
            Field::Pass(_) | Field::HasLogprobs | Field::HasReference | Field::HasTools | Field::ReasoningCutOff => FieldType::Bool,
            Field::Teacher | Field::Source | Field::FinishReason => FieldType::Name,
            Field::Prompt | Field::Reasoning | Field::Answer | Field::Reference => FieldType::Text,
            Field::Kind => FieldType::Kind,
            Field::Label => FieldType::Label,
            Field::Status => FieldType::Status,
            Field::Tag => FieldType::Tag,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Score(v) => write!(f, "score.{v}"),
            Field::Pass(v) => write!(f, "pass.{v}"),
            other => {
                let name = Field::SIMPLE.iter().find(|(_, fl)| fl == other).map_or("?", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A literal in a predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
    Bool(bool),
    Kind(Kind),
    Label(LabelType),
    Status(Status),
}

/// A predicate over samples.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every term holds (two or more terms, none itself an `And`: see [`Expr::all`]). A flat list,
    /// not a chain of pairs: a rule with thousands of terms is a wide tree, never a deep one.
    And(Vec<Expr>),
    /// Some term holds (two or more, none itself an `Or`).
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `field op value`
    Compare {
        field: Field,
        op: CmpOp,
        value: Value,
    },
    /// `field ~ "regex"`
    Matches {
        field: Field,
        pattern: String,
    },
    /// `field contains "text"`
    Contains {
        field: Field,
        text: String,
    },
    /// A boolean field on its own: `has_logprobs`, `pass.math`.
    Flag(Field),
}

/// Writes a string literal with `"` and `\` escaped.
#[must_use]
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(s) => f.write_str(&quote(s)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Kind(k) => f.write_str(&quote(k.as_str())),
            Value::Label(l) => f.write_str(&quote(l.as_str())),
            Value::Status(s) => f.write_str(&quote(s.as_str())),
        }
    }
}

impl Expr {
    /// `terms` joined by `and`: nested `And`s merged into one list, one term on its own.
    #[must_use]
    pub fn all(terms: Vec<Expr>) -> Expr {
        Self::joined(terms, true)
    }

    /// `terms` joined by `or`, as [`Expr::all`] joins them by `and`.
    #[must_use]
    pub fn any(terms: Vec<Expr>) -> Expr {
        Self::joined(terms, false)
    }

    fn joined(terms: Vec<Expr>, and: bool) -> Expr {
        let mut flat = Vec::with_capacity(terms.len());
        for t in terms {
            match (t, and) {
                (Expr::And(inner), true) | (Expr::Or(inner), false) => flat.extend(inner),
                (t, _) => flat.push(t),
            }
        }
        if flat.len() == 1 {
            return flat.pop().unwrap_or(Expr::And(Vec::new()));
        }
        if and { Expr::And(flat) } else { Expr::Or(flat) }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Parentheses only where the parser's precedence (not > and > or) would otherwise build
        // another tree.
        let wrap = |e: &Expr, needed: bool| if needed { format!("({e})") } else { e.to_string() };
        let join = |f: &mut fmt::Formatter<'_>, terms: &[Expr], word: &str, needs: &dyn Fn(&Expr) -> bool| {
            for (i, t) in terms.iter().enumerate() {
                if i > 0 {
                    write!(f, " {word} ")?;
                }
                f.write_str(&wrap(t, needs(t)))?;
            }
            Ok(())
        };
        match self {
            Expr::Or(terms) => join(f, terms, "or", &|t| matches!(t, Expr::Or(..))),
            Expr::And(terms) => join(f, terms, "and", &|t| matches!(t, Expr::Or(..) | Expr::And(..))),
            Expr::Not(e) => write!(f, "not {}", wrap(e, matches!(**e, Expr::Or(..) | Expr::And(..)))),
            Expr::Compare { field, op, value } => write!(f, "{field} {} {value}", op.as_str()),
            Expr::Matches { field, pattern } => write!(f, "{field} ~ {}", quote(pattern)),
            Expr::Contains { field, text } => write!(f, "{field} contains {}", quote(text)),
            Expr::Flag(field) => write!(f, "{field}"),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::SetStatus(Status::Accepted) => f.write_str("accept"),
            Action::SetStatus(Status::Rejected) => f.write_str("reject"),
            Action::SetStatus(Status::Pending) => f.write_str("reset"),
            Action::Label(l) => write!(f, "label {l}"),
            Action::Tag(t) => write!(f, "tag {}", quote(t)),
            Action::Untag(t) => write!(f, "untag {}", quote(t)),
            Action::KeepBest { n, keys } => {
                let keys: Vec<String> = keys.iter().map(|k| format!("{}{}", k.field, if k.descending { "" } else { " asc" })).collect();
                write!(f, "keep best {n} per prompt by {}", keys.join(", "))
            }
            Action::RejectDuplicates => f.write_str("reject duplicates"),
            Action::RejectNearDuplicates { threshold } => write!(f, "reject near-duplicates threshold {threshold}"),
            Action::RejectContaminated { file, ngram } => write!(f, "reject contaminated by {} ngram {ngram}", quote(file)),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            let bare =
                name.chars().next().is_some_and(char::is_alphabetic) && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
            if bare {
                write!(f, "{name}: ")?;
            } else {
                write!(f, "{}: ", quote(name))?;
            }
        }
        write!(f, "{}", self.action)?;
        if let Some(filter) = &self.filter {
            write!(f, " where {filter}")?;
        }
        Ok(())
    }
}
