//! Compiling predicates to SQL. Every value — numbers, strings, verifier, teacher and tag names —
//! becomes a `?` parameter: the SQL text is made only of this file's own fragments.
//!
//! Each atom yields 0 or 1, never NULL (a missing score compares false, `!=` is `IS NOT`), so
//! `not` means what a curator expects: `not score.math >= 1` includes the unscored samples.

use std::fmt::Write as _;

use super::ast::{CmpOp, Expr, Field, SortKey, Value};

/// The tables a compiled predicate reads: samples as `s`, their prompts as `p`.
pub const FROM: &str = "samples s JOIN prompts p ON p.id = s.prompt_id";

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Real(f64),
    Text(String),
}

/// A predicate as SQL: `sql` goes after `WHERE`, with `params` bound in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Compiled {
    pub sql: String,
    pub params: Vec<Param>,
}

/// `IS` / `IS NOT` for equality on values that may be NULL.
fn is_sql(op: CmpOp) -> &'static str {
    if op == CmpOp::Ne { "IS NOT" } else { "IS" }
}

const SCORE: &str =
    "(SELECT sc.score FROM scores sc WHERE sc.sample_id = s.id AND sc.verifier_id = (SELECT id FROM verifiers WHERE name = ?))";
const PASS: &str =
    "(SELECT sc.pass FROM scores sc WHERE sc.sample_id = s.id AND sc.verifier_id = (SELECT id FROM verifiers WHERE name = ?))";

/// Whether sample `s` involves tools: its answer calls one, or its prompt offers tools or holds
/// a tool call or a tool's result among its turns (an empty tool list offers none).
pub const HAS_TOOLS: &str = "(EXISTS (SELECT 1 FROM sample_texts WHERE sample_id = s.id AND tool_calls IS NOT NULL) \
     OR EXISTS (SELECT 1 FROM prompt_texts pt WHERE pt.prompt_id = s.prompt_id AND (coalesce(pt.tools, '[]') <> '[]' \
     OR EXISTS (SELECT 1 FROM json_each(pt.messages) m \
     WHERE json_extract(m.value, '$.role') = 'tool' OR json_extract(m.value, '$.tool_calls') IS NOT NULL))))";

/// Whether sample `s`'s trace was cut off inside its reasoning, read on its `sample_texts` row
/// `t`: the reasoning was opened and never closed (`reasoning_closed` false, set at import), the
/// data marks it incomplete (OpenR1's `is_reasoning_complete`), or the token limit stopped it
/// before any answer. The reasoning's text is looked at last: most samples are decided on their
/// small columns and the long text is never read.
#[must_use]
pub fn reasoning_cut_off_on(t: &str) -> String {
    format!(
        "(((json_valid({t}.metadata) AND (json_extract({t}.metadata, '$.reasoning_closed') = 0 \
         OR json_extract({t}.metadata, '$.reasoning_complete') = 0)) \
         OR (s.finish_reason = 'length' AND trim({t}.answer) = '' AND {t}.tool_calls IS NULL)) \
         AND coalesce({t}.reasoning, '') <> '')"
    )
}

/// [`reasoning_cut_off_on`] for a rule, which reads sample `s` alone.
static REASONING_CUT_OFF: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("(EXISTS (SELECT 1 FROM sample_texts rt WHERE rt.sample_id = s.id AND {}))", reasoning_cut_off_on("rt"))
});

const MEAN_LOGPROB: &str = "(SELECT lp.mean_logprob FROM sample_logprobs lp WHERE lp.sample_id = s.id)";
const NEG_MEAN_LOGPROB: &str = "(-(SELECT lp.mean_logprob FROM sample_logprobs lp WHERE lp.sample_id = s.id))";

/// `perplexity OP x` as a comparison of the mean log-prob, perplexity being exp(−mean): for
/// x > 0, `perplexity > x` is `mean_logprob < −ln x`; no perplexity is 0 or less.
fn perplexity(op: CmpOp, x: f64, params: &mut Vec<Param>) -> String {
    if x > 0.0 {
        params.push(Param::Real(-x.ln()));
        let flipped = match op {
            CmpOp::Gt => "<",
            CmpOp::Ge => "<=",
            CmpOp::Lt => ">",
            CmpOp::Le => ">=",
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
        };
        return format!("coalesce({MEAN_LOGPROB} {flipped} ?, 0)");
    }
    match op {
        CmpOp::Gt | CmpOp::Ge | CmpOp::Ne => format!("({MEAN_LOGPROB} IS NOT NULL)"),
        CmpOp::Lt | CmpOp::Le | CmpOp::Eq => "0".to_owned(),
    }
}

/// The SQL expression reading a field's value (with its verifier name as a parameter if any).
fn value_sql(field: &Field, params: &mut Vec<Param>) -> &'static str {
    match field {
        Field::Score(v) => {
            params.push(Param::Text(v.clone()));
            SCORE
        }
        Field::Pass(v) => {
            params.push(Param::Text(v.clone()));
            PASS
        }
        Field::Tokens => "s.tokens",
        Field::ReasoningTokens => "s.reasoning_tokens",
        Field::AnswerTokens => "s.answer_tokens",
        Field::Teacher => "(SELECT name FROM teachers WHERE id = s.teacher_id)",
        Field::Source => "(SELECT name FROM sources WHERE id = s.source_id)",
        Field::Kind => "p.kind",
        Field::Label => "s.label",
        Field::Status => "s.status",
        Field::FinishReason => "s.finish_reason",
        Field::HasLogprobs => "s.has_logprobs",
        Field::HasReference => "p.has_reference",
        Field::HasTools => HAS_TOOLS,
        Field::ReasoningCutOff => REASONING_CUT_OFF.as_str(),
        Field::Prompt => "(SELECT text FROM prompt_texts WHERE prompt_id = s.prompt_id)",
        Field::Reference => "(SELECT reference FROM prompt_texts WHERE prompt_id = s.prompt_id)",
        Field::Reasoning => "(SELECT reasoning FROM sample_texts WHERE sample_id = s.id)",
        Field::Answer => "(SELECT answer FROM sample_texts WHERE sample_id = s.id)",
        Field::MeanLogprob => MEAN_LOGPROB,
        Field::MinLogprob => "(SELECT lp.min_logprob FROM sample_logprobs lp WHERE lp.sample_id = s.id)",
        // Ranks as exp(-mean) does; compared in `compare` through the mean.
        Field::Perplexity => NEG_MEAN_LOGPROB,
        // Tags are a set, tested by membership in `compare`.
        Field::Tag => "NULL",
    }
}

fn compare(field: &Field, op: CmpOp, value: &Value, out: &mut Compiled) {
    let params = &mut out.params;
    let sql = match (field, value) {
        (Field::Tag, Value::Text(tag)) => {
            params.push(Param::Text(tag.clone()));
            let exists =
                "EXISTS (SELECT 1 FROM sample_tags st WHERE st.sample_id = s.id AND st.tag_id = (SELECT id FROM tags WHERE name = ?))";
            if op == CmpOp::Ne { format!("(NOT {exists})") } else { exists.to_owned() }
        }
        // Faster than reading the name per row: compare ids, the name's id found once.
        (Field::Teacher, Value::Text(name)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
            params.push(Param::Text(name.clone()));
            format!("(s.teacher_id {} (SELECT id FROM teachers WHERE name = ?))", is_sql(op))
        }
        (Field::Source, Value::Text(name)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
            params.push(Param::Text(name.clone()));
            format!("(s.source_id {} (SELECT id FROM sources WHERE name = ?))", is_sql(op))
        }
        (Field::Perplexity, Value::Number(x)) => perplexity(op, *x, params),
        (Field::Pass(_) | Field::HasLogprobs | Field::HasReference | Field::HasTools | Field::ReasoningCutOff, Value::Bool(b)) => {
            let v = value_sql(field, params);
            let wanted = i64::from(*b == (op == CmpOp::Eq));
            format!("(coalesce({v}, 0) = {wanted})")
        }
        (_, value) => {
            let v = value_sql(field, params);
            params.push(match value {
                Value::Number(n) => Param::Real(*n),
                Value::Text(s) => Param::Text(s.clone()),
                Value::Bool(b) => Param::Real(if *b { 1.0 } else { 0.0 }),
                Value::Kind(k) => Param::Text(k.as_str().to_owned()),
                Value::Label(l) => Param::Text(l.as_str().to_owned()),
                Value::Status(s) => Param::Text(s.as_str().to_owned()),
            });
            match op {
                CmpOp::Eq | CmpOp::Ne => format!("({v} {} ?)", is_sql(op)),
                _ => format!("coalesce({v} {} ?, 0)", op.as_str()),
            }
        }
    };
    out.sql.push_str(&sql);
}

/// `terms` joined by `op`, grouped in halves: SQLite builds `a OR b OR c …` as a chain as deep as
/// it is long and refuses chains over 1,000 ("Expression tree is too large"); halves keep the
/// depth at the logarithm of the length.
fn emit_joined(terms: &[Expr], op: &str, out: &mut Compiled) {
    out.sql.push('(');
    if terms.len() <= 8 {
        for (i, t) in terms.iter().enumerate() {
            if i > 0 {
                out.sql.push_str(op);
            }
            emit(t, out);
        }
    } else {
        let (left, right) = terms.split_at(terms.len() / 2);
        emit_joined(left, op, out);
        out.sql.push_str(op);
        emit_joined(right, op, out);
    }
    out.sql.push(')');
}

fn emit(e: &Expr, out: &mut Compiled) {
    match e {
        Expr::And(terms) => emit_joined(terms, " AND ", out),
        Expr::Or(terms) => emit_joined(terms, " OR ", out),
        Expr::Not(inner) => {
            out.sql.push_str("(NOT ");
            emit(inner, out);
            out.sql.push(')');
        }
        Expr::Compare { field, op, value } => compare(field, *op, value, out),
        Expr::Matches { field, pattern } => {
            let v = value_sql(field, &mut out.params);
            out.params.push(Param::Text(pattern.clone()));
            let _ = write!(out.sql, "coalesce({v} REGEXP ?, 0)");
        }
        Expr::Contains { field, text } => {
            let v = value_sql(field, &mut out.params);
            out.params.push(Param::Text(text.clone()));
            let _ = write!(out.sql, "coalesce(instr({v}, ?) > 0, 0)");
        }
        Expr::Flag(field) => {
            let v = value_sql(field, &mut out.params);
            let _ = write!(out.sql, "(coalesce({v}, 0) = 1)");
        }
    }
}

/// Compiles a predicate; `None` selects every sample.
#[must_use]
pub fn compile(expr: Option<&Expr>) -> Compiled {
    let mut out = Compiled::default();
    match expr {
        Some(e) => emit(e, &mut out),
        None => out.sql.push('1'),
    }
    out
}

/// `ORDER BY` terms ranking samples best first, with their parameters.
#[must_use]
pub fn order_by(keys: &[SortKey]) -> Compiled {
    let mut out = Compiled::default();
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.sql.push_str(", ");
        }
        let v = value_sql(&k.field, &mut out.params);
        let dir = if k.descending { "DESC" } else { "ASC" };
        let _ = write!(out.sql, "{v} {dir} NULLS LAST");
    }
    out
}
