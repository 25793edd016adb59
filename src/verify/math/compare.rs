//! Equivalence of a gold answer and a predicted one, following math-verify's `sympy_expr_eq`
//! case by case: assignments (`x = 2` vs `2`), relations, sets/intervals/tuples, symbols and
//! finally numbers and expressions. Symbolic simplification is replaced by evaluation at random
//! points, which decides the same identities for the expressions answers contain.

use super::eval::{self, C, Env};
use super::node::{Const, Node, Num, Rel};
use super::sets;

pub(crate) struct Ctx {
    /// Decimal places used when either side is a float literal.
    pub(crate) precision: u32,
    pub(crate) strict: bool,
    pub(crate) allow_set_relation_comp: bool,
}

/// `gold` is the reference and `pred` the prediction; the comparison is not symmetric.
pub(crate) fn expr_eq(gold: &Node, pred: &Node, cx: &Ctx) -> bool {
    let mut gold = gold.clone();
    let mut pred = pred.clone();
    if !cx.strict {
        pred = rename_like(pred, &gold);
    }
    let (gold_assign, pred_assign) = (gold.is_assignment(), pred.is_assignment());
    let (gold_eq, pred_eq) = (gold.is_equation(), pred.is_equation());
    if gold_assign {
        gold = truncate_chain(gold);
    }
    if pred_assign {
        pred = truncate_chain(pred);
    }
    // Follow the gold's form: `x = 1` against `1` compares 1 with 1, but `2x + z = 1` is not `1`.
    if pred_eq && !gold_eq {
        pred = last_rhs(pred);
    } else if gold_assign && !pred_eq {
        gold = last_rhs(gold);
    }
    if gold.is_relation() && pred.is_set() {
        return sets::relation_matches_set(&gold, &pred, cx);
    }
    if cx.allow_set_relation_comp && pred.is_relation() && gold.is_set() {
        return sets::relation_matches_set(&pred, &gold, cx);
    }
    if gold == pred && !is_undefined(&gold) {
        return true;
    }
    if gold.is_relation() && pred.is_relation() {
        return relations_eq(&gold, &pred, cx);
    }
    if gold.is_set() || pred.is_set() || matches!(gold, Node::Tuple(_)) || matches!(pred, Node::Tuple(_)) {
        return sets::sets_eq(&gold, &pred, cx);
    }
    // `\text{Evelyn}` is one symbol, `Evelyn` a product of letters; either is a name.
    match (&gold, &pred) {
        (Node::Sym(_), Node::Sym(_)) => return symbols_eq(&gold, &pred),
        (Node::Sym(_), _) | (_, Node::Sym(_)) if symbols_eq(&gold, &pred) => return true,
        _ => {}
    }
    values_eq(&gold, &pred, cx)
}

fn is_undefined(n: &Node) -> bool {
    eval::eval(n, &Env::new()).is_some_and(|v| !v.is_finite())
        && !matches!(n, Node::Const(Const::Infinity))
        && !matches!(n, Node::Num(Num::Float(f)) if f.is_infinite())
}

fn truncate_chain(n: Node) -> Node {
    let rels = n.relations();
    match (rels.first(), rels.last()) {
        (Some(Node::Rel(_, lhs, _)), Some(Node::Rel(_, _, rhs))) => Node::Rel(Rel::Eq, lhs.clone(), rhs.clone()),
        _ => n,
    }
}

fn last_rhs(n: Node) -> Node {
    match n.relations().last() {
        Some(Node::Rel(_, _, rhs)) => (**rhs).clone(),
        _ => n,
    }
}

/// In non-strict mode variables match by position: `f(x)` equals `f(y)`.
fn rename_like(pred: Node, gold: &Node) -> Node {
    let (mut gs, mut ps) = (Vec::new(), Vec::new());
    gold.free_symbols(&mut gs);
    pred.free_symbols(&mut ps);
    if gs.len() != ps.len() || gs.is_empty() {
        return pred;
    }
    gs.sort();
    ps.sort();
    pred.map(&mut |n| match n {
        Node::Sym(s) => match ps.iter().position(|p| *p == s) {
            Some(i) => Node::Sym(gs[i].clone()),
            None => Node::Sym(s),
        },
        other => other,
    })
}

fn relations_eq(gold: &Node, pred: &Node, cx: &Ctx) -> bool {
    if let (Node::And(gs), Node::And(ps)) = (gold, pred) {
        return gs.len() == ps.len() && gs.iter().zip(ps).all(|(g, p)| relations_eq(g, p, cx));
    }
    let (Node::Rel(gr, gl, grhs), Node::Rel(pr, pl, prhs)) = (gold, pred) else {
        return sets::univariate_relations_eq(gold, pred);
    };
    let diff = |a: &Node, b: &Node| Node::Add(vec![a.clone(), super::build::neg(b.clone())]);
    if gr == pr && expr_eq(&diff(gl, grhs), &diff(pl, prhs), cx) {
        return true;
    }
    if gr.flipped() == *pr && expr_eq(&diff(gl, grhs), &diff(prhs, pl), cx) {
        return true;
    }
    // Two assignments to the same unknowns compare their values (`n = {1,2,3}`, `D = (0, 1)`).
    if *gr == Rel::Eq && *pr == Rel::Eq && gl.only_symbols() && gl == pl {
        return expr_eq(grhs, prhs, cx);
    }
    sets::solutions_eq(gold, pred)
}

/// The letters of a name written as a product (`odd` parses as o*d*d; a bare `e` is Euler's
/// number and reads as the letter e).
fn word_of(n: &Node) -> Option<String> {
    let letter = |p: &Node| match p {
        Node::Sym(s) => Some(s.clone()),
        Node::Const(Const::E) => Some("e".to_string()),
        _ => None,
    };
    match n {
        Node::Mul(parts) => parts.iter().map(letter).collect(),
        other => letter(other),
    }
}

fn symbols_eq(gold: &Node, pred: &Node) -> bool {
    match (gold, pred) {
        (Node::Sym(s), Node::Const(Const::E)) | (Node::Const(Const::E), Node::Sym(s)) => s == "e",
        (Node::Sym(a), Node::Sym(b)) => a == b,
        (Node::Sym(s), other @ Node::Mul(_)) | (other @ Node::Mul(_), Node::Sym(s)) => word_of(other).is_some_and(|w| w == *s),
        _ => false,
    }
}

/// Whether `n` is a number literal (possibly as a percentage): the only case in which the
/// `precision` rounding applies, so `1/3` vs `0.333333` passes at 6 places but `0.33` does not.
fn atomic(n: &Node) -> Option<&Num> {
    match n {
        Node::Num(x) => Some(x),
        Node::Percent(inner) => match &**inner {
            Node::Num(x) => Some(x),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn values_eq(gold: &Node, pred: &Node, cx: &Ctx) -> bool {
    if let (Some(gm), Some(pm)) = (sets::as_matrix(gold), sets::as_matrix(pred)) {
        let same_shape = gm.len() == pm.len() && gm.iter().zip(&pm).all(|(a, b)| a.len() == b.len());
        return same_shape && gm.iter().flatten().zip(pm.iter().flatten()).all(|(a, b)| values_eq(a, b, cx));
    }
    if matches!(gold, Node::Matrix(_)) || matches!(pred, Node::Matrix(_)) {
        return false;
    }
    match (atomic(gold), atomic(pred)) {
        (Some(Num::Int(a)), Some(Num::Int(b))) => return a == b,
        (Some(Num::Float(_)), _) | (_, Some(Num::Float(_))) => {
            if let (Some(a), Some(b)) = (real_value(gold), real_value(pred))
                && rounded(a, cx.precision) == rounded(b, cx.precision)
            {
                return true;
            }
        }
        _ => {}
    }
    same_function(gold, pred)
}

fn real_value(n: &Node) -> Option<f64> {
    let v = eval::eval(n, &Env::new())?;
    (v.im.abs() < 1e-12 && v.re.is_finite()).then_some(v.re)
}

/// Rounds to `places` decimals, as sympy's `Float.round` does before comparing.
fn rounded(x: f64, places: u32) -> i128 {
    let scaled = x * 10f64.powi(places as i32);
    // Nudge away from representation error so 0.125 rounds like the decimal it was written as.
    (scaled + scaled.signum() * scaled.abs() * 1e-13).round() as i128
}

/// Equal as functions of their free symbols: same value at every sample point where either is
/// defined (and defined at enough points to mean something).
pub(crate) fn same_function(a: &Node, b: &Node) -> bool {
    let mut symbols = Vec::new();
    a.free_symbols(&mut symbols);
    b.free_symbols(&mut symbols);
    let points = if symbols.is_empty() { vec![Env::new()] } else { eval::sample_points(&symbols, 12) };
    let mut agreeing = 0;
    for env in &points {
        match (eval::eval(a, env), eval::eval(b, env)) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                if !eval::close(x, y) {
                    return false;
                }
                agreeing += 1;
            }
            (Some(x), Some(y)) if !x.is_finite() && !y.is_finite() => {}
            (None, None) => {}
            _ => return false,
        }
    }
    agreeing >= points.len().div_ceil(2)
}

/// Whether `gold_side / pred_side` is one constant at every sample point (of the given sign,
/// if any): the test for equations that differ only by a factor.
pub(crate) fn ratio_is_constant(gold_side: &Node, pred_side: &Node, sign: Option<bool>) -> bool {
    let mut symbols = Vec::new();
    gold_side.free_symbols(&mut symbols);
    pred_side.free_symbols(&mut symbols);
    if symbols.is_empty() {
        return false;
    }
    let mut ratio: Option<C> = None;
    let mut used = 0;
    for env in eval::sample_points(&symbols, 12) {
        let (Some(x), Some(y)) = (eval::eval(gold_side, &env), eval::eval(pred_side, &env)) else { continue };
        if !(x.is_finite() && y.is_finite()) || y.abs() < 1e-12 {
            if x.abs() < 1e-12 && y.abs() < 1e-12 {
                continue;
            }
            return false;
        }
        let here = x.div(y);
        match ratio {
            None => ratio = Some(here),
            Some(prev) if !eval::close(prev, here) => return false,
            Some(_) => {}
        }
        used += 1;
    }
    let Some(ratio) = ratio else { return false };
    used >= 3 && ratio.abs() > 1e-12 && ratio.im.abs() < 1e-9 && sign.is_none_or(|positive| (ratio.re > 0.0) == positive)
}
