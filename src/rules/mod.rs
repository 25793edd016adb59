//! The rule language (DESIGN.md §Rules): a small, safe predicate language and the actions rules
//! take. Parsed here with errors that point at the column, compiled to parameterised SQL.

pub mod ast;
pub mod compile;
pub mod minhash;
pub mod names;
pub mod ngrams;
pub mod parser;

pub use ast::{Action, Expr, Field, Rule};
pub use names::check_names;
pub use parser::{ParseError, VerifierRef, parse_expr, parse_rule, verifier_refs};

/// The n-gram size of `reject contaminated by` when none is given (as open-r1's decontamination).
pub const DEFAULT_NGRAM: u32 = 8;

/// A rule read from a rules file, with where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleLine {
    pub line: usize,
    pub text: String,
    pub rule: Rule,
}

/// A parse error located in a rules file or expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {message}\n  {text}\n  {caret}")]
pub struct RuleError {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub text: String,
    pub caret: String,
}

impl RuleError {
    /// `e`, found in `text`, line `line` of `origin`.
    #[must_use]
    pub fn new(origin: &str, line: usize, text: &str, e: ParseError) -> Self {
        let caret = format!("{}^", " ".repeat(e.column.saturating_sub(1)));
        Self { origin: origin.to_owned(), line, column: e.column, message: e.message, text: text.to_owned(), caret }
    }
}

/// Parses a rules file: one rule a line; blank lines and `#` comments are skipped. Unnamed rules
/// are named after where they stand (`rules.txt:3`), so their decisions can be undone by name.
pub fn parse_rules(origin: &str, src: &str) -> Result<Vec<RuleLine>, RuleError> {
    let mut rules = Vec::new();
    for (i, text) in src.lines().enumerate() {
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut rule = parse_rule(text).map_err(|e| RuleError::new(origin, i + 1, text, e))?;
        if rule.name.is_none() {
            rule.name = Some(format!("{origin}:{}", i + 1));
        }
        rules.push(RuleLine { line: i + 1, text: text.to_owned(), rule });
    }
    Ok(rules)
}

/// Parses a `--where` filter, locating errors in it.
pub fn parse_filter(src: &str) -> Result<Expr, RuleError> {
    parse_expr(src).map_err(|e| RuleError::new("--where", 1, src, e))
}

/// Checks the verifiers each rule of a parsed file names against `known` ([`check_names`]),
/// locating the first unknown one in its line.
pub fn check_rule_names(origin: &str, rules: &[RuleLine], known: &[String]) -> Result<(), RuleError> {
    for r in rules {
        check_names(&r.text, known).map_err(|e| RuleError::new(origin, r.line, &r.text, e))?;
    }
    Ok(())
}

/// Checks the verifiers a `--where` filter names against `known`, as [`check_rule_names`].
pub fn check_filter_names(src: &str, known: &[String]) -> Result<(), RuleError> {
    check_names(src, known).map_err(|e| RuleError::new("--where", 1, src, e))
}

#[cfg(test)]
mod tests;
