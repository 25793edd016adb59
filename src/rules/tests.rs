use proptest::prelude::*;

use super::ast::{Action, CmpOp, Expr, Field, Rule, SortKey, Value};
use super::compile::{Param, compile};
use super::{parse_expr, parse_rule, parse_rules};
use crate::domain::{Kind, LabelType, Status};

fn cmp(field: Field, op: CmpOp, value: Value) -> Expr {
    Expr::Compare { field, op, value }
}

#[test]
fn design_examples_parse() {
    let r = parse_rule(r#"accept where score.math >= 1 and tokens <= 16384 and finish_reason != "length""#).unwrap();
    assert_eq!(r.action, Action::SetStatus(Status::Accepted));
    assert_eq!(
        r.filter.unwrap(),
        Expr::And(vec![
            cmp(Field::Score("math".into()), CmpOp::Ge, Value::Number(1.0)),
            cmp(Field::Tokens, CmpOp::Le, Value::Number(16384.0)),
            cmp(Field::FinishReason, CmpOp::Ne, Value::Text("length".into())),
        ])
    );
    let r = parse_rule("keep best 1 per prompt by score.math, tokens asc      # rejection sampling").unwrap();
    assert_eq!(
        r.action,
        Action::KeepBest {
            n: 1,
            keys: vec![
                SortKey { field: Field::Score("math".into()), descending: true },
                SortKey { field: Field::Tokens, descending: false }
            ]
        }
    );
    assert_eq!(parse_rule("reject duplicates").unwrap().action, Action::RejectDuplicates);
    assert_eq!(parse_rule("reject near-duplicates threshold 0.85").unwrap().action, Action::RejectNearDuplicates { threshold: 0.85 });
    let r = parse_rule("label soft where has_logprobs").unwrap();
    assert_eq!((r.action, r.filter), (Action::Label(LabelType::Soft), Some(Expr::Flag(Field::HasLogprobs))));
    let r = parse_rule(r#"tag "long" where reasoning_tokens > 8000"#).unwrap();
    assert_eq!(r.action, Action::Tag("long".into()));
    let r = parse_rule("reject where score.repetition < 0.5 or score.language < 0.9").unwrap();
    assert!(matches!(r.filter, Some(Expr::Or(..))));
    let r = parse_rule(r#"clean: reject contaminated by "evals/aime.jsonl" ngram 13"#).unwrap();
    assert_eq!(r.name.as_deref(), Some("clean"));
    assert_eq!(r.action, Action::RejectContaminated { file: "evals/aime.jsonl".into(), ngram: 13 });
}

#[test]
fn precedence_and_text_matches() {
    let e = parse_expr(r#"not kind = "general" and (prompt ~ "^Find" or answer contains "\\boxed")"#).unwrap();
    let Expr::And(terms) = e else { panic!("and at the top") };
    assert_eq!(terms[0], Expr::Not(Box::new(cmp(Field::Kind, CmpOp::Eq, Value::Kind(Kind::General)))));
    assert!(matches!(terms[1], Expr::Or(..)));
    let e = parse_expr("label = pseudo and status != 'rejected' and pass.math = false").unwrap();
    assert!(e.to_string().contains("label = \"pseudo\""));
}

#[test]
fn hostile_nesting_is_an_error_at_its_column_not_a_stack_overflow() {
    // 10,000 parentheses: refused at the one past the limit.
    let deep = format!("{}tokens > 1{}", "(".repeat(10_000), ")".repeat(10_000));
    let e = parse_expr(&deep).unwrap_err();
    assert_eq!(e.column, super::parser::MAX_NESTING + 1, "{e}");
    assert!(e.to_string().contains("nested more than 100 levels"), "{e}");
    // 100,000 `not`: a loop, then refused.
    let nots = format!("{}has_logprobs", "not ".repeat(100_000));
    assert!(parse_expr(&nots).unwrap_err().to_string().contains("more than 100 `not` in a row"));
    // Within the limit both work, and a long chain is wide, not deep.
    let fine = format!("{}tokens > 1{}", "(".repeat(100), ")".repeat(100));
    assert!(parse_expr(&fine).is_ok());
    let chain = (0..20_000).map(|i| format!("tokens = {i}")).collect::<Vec<_>>().join(" or ");
    let Expr::Or(terms) = parse_expr(&chain).unwrap() else { panic!("an or at the top") };
    assert_eq!(terms.len(), 20_000);
    // SQLite refuses expressions deeper than 1,000: halves keep the chain at ~12.
    let sql = compile(parse_expr(&chain).ok().as_ref()).sql;
    let (mut depth, mut deepest) = (0i32, 0i32);
    for c in sql.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    assert!(deepest < 30, "{deepest}");
}

fn error_at(src: &str) -> (usize, String) {
    let e = parse_rule(src).unwrap_err();
    (e.column, e.message)
}

#[test]
fn errors_point_at_the_column() {
    let (col, msg) = error_at("accept where score.math >= \"high\"");
    assert_eq!(col, 28);
    assert!(msg.contains("compares with a number"), "{msg}");
    let (col, msg) = error_at("accept where tokenz < 5");
    assert_eq!(col, 14);
    assert!(msg.contains("unknown field `tokenz`"), "{msg}");
    let (col, msg) = error_at("label sof");
    assert_eq!(col, 7);
    assert!(msg.contains("hard, soft, pseudo"), "{msg}");
    let (col, msg) = error_at("accept where (tokens < 5");
    assert_eq!(col, 25);
    assert!(msg.contains("`(` at column 14"), "{msg}");
    let (col, msg) = error_at("accept where teacher > \"a\"");
    assert_eq!(col, 14);
    assert!(msg.contains("not a number"), "{msg}");
    let (col, msg) = error_at("approve where tokens < 5");
    assert_eq!(col, 1);
    assert!(msg.contains("unknown action"), "{msg}");
    let (col, msg) = error_at("accept where prompt ~ \"(unclosed\"");
    assert_eq!(col, 23);
    assert!(msg.contains("regular expression"), "{msg}");
    let (col, _) = error_at("accept where answer contains \"oops");
    assert_eq!(col, 30);
    let (col, msg) = error_at("keep best 0 per prompt by tokens");
    assert_eq!(col, 11);
    assert!(msg.contains("at least 1"), "{msg}");
    let (col, msg) = error_at("accept tokens < 5");
    assert_eq!(col, 8);
    assert!(msg.contains("`where`"), "{msg}");
}

#[test]
fn rules_file_names_unnamed_rules_by_line_and_locates_errors() {
    let rules = parse_rules("r.txt", "# cleaning\n\nreject where tokens > 100\nbest: keep best 2 per prompt by score.math\n").unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].rule.name.as_deref(), Some("r.txt:3"));
    assert_eq!(rules[1].rule.name.as_deref(), Some("best"));
    let err = parse_rules("r.txt", "accept\naccept where score.math >= x\n").unwrap_err();
    assert_eq!((err.line, err.column), (2, 28));
    let shown = err.to_string();
    assert!(shown.starts_with("r.txt:2:28: "), "{shown}");
    assert!(shown.ends_with("\n  accept where score.math >= x\n                             ^"), "{shown:?}");
}

#[test]
fn compiled_sql_binds_every_value() {
    let e = parse_expr(r#"teacher = "evil'); DROP TABLE samples; --" and score.x_y >= 0.5 and tag != "t""#).unwrap();
    let c = compile(Some(&e));
    assert!(!c.sql.contains("DROP") && !c.sql.contains("x_y") && !c.sql.contains("0.5"), "{}", c.sql);
    assert_eq!(c.params.len(), 4);
    assert_eq!(c.params[0], Param::Text("evil'); DROP TABLE samples; --".into()));
}

// ---- property tests: print → parse round trip, and no user text in SQL ----

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,8}".prop_filter("not a keyword", |s| !matches!(s.as_str(), "and" | "or" | "not" | "contains" | "true" | "false"))
}

fn text() -> impl Strategy<Value = String> {
    // Quotes, backslashes, newlines, SQL and non-ASCII: all must survive printing and parsing.
    prop::collection::vec(
        prop_oneof![Just('"'), Just('\\'), Just('\n'), Just('\''), Just(';'), Just('é'), Just('中'), prop::char::range('a', 'z')],
        0..12,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![(-1_000_000i64..1_000_000).prop_map(|n| n as f64), (0.0f64..1.0), (-1e9f64..1e9)]
}

fn atom() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (
            ident(),
            prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne), Just(CmpOp::Lt), Just(CmpOp::Le), Just(CmpOp::Gt), Just(CmpOp::Ge)],
            number()
        )
            .prop_map(|(v, op, n)| cmp(Field::Score(v), op, Value::Number(n))),
        (prop_oneof![Just(Field::Tokens), Just(Field::ReasoningTokens), Just(Field::AnswerTokens)], number()).prop_map(|(f, n)| cmp(
            f,
            CmpOp::Le,
            Value::Number(n)
        )),
        (
            prop_oneof![Just(Field::Teacher), Just(Field::Source), Just(Field::FinishReason), Just(Field::Tag), Just(Field::Prompt)],
            text(),
            any::<bool>()
        )
            .prop_map(|(f, t, eq)| cmp(f, if eq { CmpOp::Eq } else { CmpOp::Ne }, Value::Text(t))),
        (prop_oneof![Just(Field::Answer), Just(Field::Reasoning), Just(Field::Teacher)], text())
            .prop_map(|(field, text)| Expr::Contains { field, text }),
        prop_oneof![Just("^a+$".to_owned()), Just("b|c".to_owned()), Just("\\d{2}".to_owned())]
            .prop_map(|pattern| Expr::Matches { field: Field::Prompt, pattern }),
        ident().prop_map(|v| Expr::Flag(Field::Pass(v))),
        Just(Expr::Flag(Field::HasLogprobs)),
        (ident(), any::<bool>()).prop_map(|(v, b)| cmp(Field::Pass(v), CmpOp::Eq, Value::Bool(b))),
        prop_oneof![Just(Kind::Reasoning), Just(Kind::General)].prop_map(|k| cmp(Field::Kind, CmpOp::Eq, Value::Kind(k))),
        prop_oneof![Just(LabelType::Hard), Just(LabelType::Soft)].prop_map(|l| cmp(Field::Label, CmpOp::Ne, Value::Label(l))),
        prop_oneof![Just(Status::Pending), Just(Status::Rejected)].prop_map(|s| cmp(Field::Status, CmpOp::Eq, Value::Status(s))),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    atom().prop_recursive(5, 40, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::all(vec![a, b])),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::any(vec![a, b])),
            inner.prop_map(|a| Expr::Not(Box::new(a))),
        ]
    })
}

/// Every user-given string and number in an expression.
fn user_values(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::And(terms) | Expr::Or(terms) => {
            for t in terms {
                user_values(t, out);
            }
        }
        Expr::Not(a) => user_values(a, out),
        Expr::Compare { field, value, .. } => {
            if let Field::Score(v) | Field::Pass(v) = field {
                out.push(v.clone());
            }
            match value {
                Value::Text(t) => out.push(t.clone()),
                Value::Number(n) => out.push(n.to_string()),
                _ => {}
            }
        }
        Expr::Matches { pattern, .. } => out.push(pattern.clone()),
        Expr::Contains { text, .. } => out.push(text.clone()),
        Expr::Flag(Field::Pass(v)) => out.push(v.clone()),
        Expr::Flag(_) => {}
    }
}

/// Rule text as a person (or a fuzzer) might type it: the language's own words in any order,
/// strings and numbers, stray characters, deep nesting.
fn rule_text() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("accept".to_owned()),
        Just("reject".to_owned()),
        Just("where".to_owned()),
        Just("and".to_owned()),
        Just("or".to_owned()),
        Just("not".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("tokens".to_owned()),
        Just("score.math".to_owned()),
        Just("pass.x".to_owned()),
        Just(">=".to_owned()),
        Just("=".to_owned()),
        Just("~".to_owned()),
        Just("contains".to_owned()),
        Just("\"a\\\"b\"".to_owned()),
        Just("\"(\"".to_owned()),
        Just("12.5".to_owned()),
        Just("-3".to_owned()),
        Just("keep best 2 per prompt by".to_owned()),
        Just("tag".to_owned()),
        Just("label soft".to_owned()),
        Just("reject duplicates".to_owned()),
        Just("near-duplicates threshold".to_owned()),
        Just("#".to_owned()),
        Just("name:".to_owned()),
        Just(",".to_owned()),
        Just("asc".to_owned()),
        "[\\x00-\\x7f\\u{80}-\\u{2fff}]{1,3}",
        (1usize..2000).prop_map(|n| "(".repeat(n)),
        (1usize..2000).prop_map(|n| "not ".repeat(n)),
    ];
    proptest::collection::vec(word, 0..30).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn any_rule_text_parses_or_is_refused_at_a_column(text in rule_text()) {
        let len = text.chars().count();
        for result in [parse_rule(&text).map(|r| r.filter), parse_expr(&text).map(Some)] {
            match result {
                Ok(filter) => {
                    let c = compile(filter.as_ref());
                    prop_assert_eq!(c.sql.matches('?').count(), c.params.len());
                }
                Err(e) => prop_assert!(e.column >= 1 && e.column <= len + 1, "column {} of {}: {}", e.column, len, e),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printed_expressions_parse_back_to_the_same_tree(e in expr()) {
        let printed = e.to_string();
        let parsed = parse_expr(&printed).map_err(|err| TestCaseError::fail(format!("{printed:?}: {err}")))?;
        prop_assert_eq!(parsed, e);
    }

    #[test]
    fn printed_rules_parse_back(e in expr(), name in ident(), tag in text(), n in 1u32..50) {
        for action in [Action::SetStatus(Status::Rejected), Action::Tag(tag.clone()), Action::Label(LabelType::Pseudo),
                       Action::KeepBest { n, keys: vec![SortKey { field: Field::Tokens, descending: false }] }] {
            let rule = Rule { name: Some(name.clone()), action, filter: Some(e.clone()) };
            let printed = rule.to_string();
            let parsed = parse_rule(&printed).map_err(|err| TestCaseError::fail(format!("{printed:?}: {err}")))?;
            prop_assert_eq!(parsed, rule);
        }
    }

    #[test]
    fn compiled_sql_never_contains_user_text(e in expr()) {
        let c = compile(Some(&e));
        let mut values = Vec::new();
        user_values(&e, &mut values);
        for v in values.iter().filter(|v| v.len() >= 3 && v.chars().any(char::is_alphanumeric)) {
            // Fragments of our own SQL (e.g. a verifier named "sc") may appear by chance; a value
            // is pasted only if it shows up as a whole quoted literal or beside our own text.
            prop_assert!(!c.sql.contains(&format!("'{v}'")), "{} in {}", v, c.sql);
        }
        prop_assert!(!c.sql.contains('\'') && !c.sql.contains('"'), "a quote in the SQL: {}", c.sql);
        let placeholders = c.sql.matches('?').count();
        prop_assert_eq!(placeholders, c.params.len());
    }
}
