//! Sets, intervals, tuples, matrices and solution sets of relations. Where math-verify asks sympy
//! to solve a relation (`-2 \le x \le 7` against `[-2, 7]`, `1 \le |z| \le 3/2` against a union
//! of intervals) we compare membership at the critical points of both sides instead.

use super::build::neg;
use super::compare::{Ctx, expr_eq, ratio_is_constant};
use super::eval::{self, C, Env};
use super::node::{Const, Node, Rel};

/// Elements of a finite set or tuple (a non-set answer is the singleton of itself).
fn elements(n: &Node) -> Option<&[Node]> {
    match n {
        Node::Set(v) | Node::Tuple(v) => Some(v),
        _ => None,
    }
}

pub(crate) fn sets_eq(gold: &Node, pred: &Node, cx: &Ctx) -> bool {
    let wrap = |n: &Node| if n.is_set() || matches!(n, Node::Tuple(_)) { n.clone() } else { Node::Set(vec![n.clone()]) };
    let (a, b) = (wrap(gold), wrap(pred));
    if let (Node::Interval { lo: al, hi: ah, lo_open: alo, hi_open: aho }, Node::Interval { lo: bl, hi: bh, lo_open: blo, hi_open: bho }) =
        (&a, &b)
    {
        return alo == blo && aho == bho && expr_eq(al, bl, cx) && expr_eq(ah, bh, cx);
    }
    if a == b {
        return true;
    }
    if a.is_set() && b.is_set() && same_members(&a, &b) {
        return true;
    }
    if let (Node::Union(xs), Node::Union(ys)) = (&a, &b) {
        return matched(xs, ys, &|x, y| sets_eq(x, y, cx));
    }
    if elements(&a).is_some() && elements(&b).is_some() {
        return deep_eq(&a, &b, cx);
    }
    // `(1, 2)` parses as an open interval; against a written pair it is that pair.
    if let Node::Interval { lo, hi, lo_open: true, hi_open: true } = &a
        && elements(&b).is_some_and(|e| e.len() == 2)
    {
        return deep_eq(&Node::Tuple(vec![(**lo).clone(), (**hi).clone()]), &b, cx);
    }
    if let Node::Interval { lo, hi, lo_open: true, hi_open: true } = &b
        && elements(&a).is_some_and(|e| e.len() == 2)
    {
        return deep_eq(&a, &Node::Tuple(vec![(**lo).clone(), (**hi).clone()]), cx);
    }
    false
}

/// Element-wise: a gold set matches in any order, a gold tuple in written order.
fn deep_eq(gold: &Node, pred: &Node, cx: &Ctx) -> bool {
    let (Some(g), Some(p)) = (elements(gold), elements(pred)) else { return false };
    if g.len() != p.len() {
        return false;
    }
    if matches!(gold, Node::Set(_)) {
        return matched(g, p, &|x, y| expr_eq(x, y, cx));
    }
    g.iter().zip(p).all(|(x, y)| expr_eq(x, y, cx))
}

/// A one-to-one pairing of `gold` and `pred` items under `eq` (greedy, in gold order).
fn matched(gold: &[Node], pred: &[Node], eq: &dyn Fn(&Node, &Node) -> bool) -> bool {
    if gold.len() != pred.len() {
        return false;
    }
    let mut used = vec![false; pred.len()];
    gold.iter().all(|g| match (0..pred.len()).find(|&k| !used[k] && eq(g, &pred[k])) {
        Some(k) => {
            used[k] = true;
            true
        }
        None => false,
    })
}

/// Membership of the real number `t`; `None` when the set is not made of closed-form numbers.
fn contains(set: &Node, t: f64) -> Option<bool> {
    Some(match set {
        Node::Interval { lo, hi, lo_open, hi_open } => {
            let (l, h) = (eval::real_constant(lo)?, eval::real_constant(hi)?);
            (if *lo_open { l < t } else { l <= t }) && (if *hi_open { t < h } else { t <= h })
        }
        Node::Set(items) => {
            let mut any = false;
            for item in items {
                any |= eval::close(C::real(eval::real_constant(item)?), C::real(t));
            }
            any
        }
        Node::Union(parts) => parts.iter().map(|p| contains(p, t)).collect::<Option<Vec<_>>>()?.into_iter().any(|x| x),
        Node::Intersection(parts) => parts.iter().map(|p| contains(p, t)).collect::<Option<Vec<_>>>()?.into_iter().all(|x| x),
        Node::Complement(a, b) => contains(a, t)? && !contains(b, t)?,
        Node::Reals => t.is_finite(),
        Node::Empty => false,
        _ => return None,
    })
}

/// Points where membership can change: bounds and elements.
fn set_points(set: &Node, out: &mut Vec<f64>) {
    match set {
        Node::Interval { lo, hi, .. } => out.extend([eval::real_constant(lo), eval::real_constant(hi)].into_iter().flatten()),
        Node::Set(items) => out.extend(items.iter().filter_map(eval::real_constant)),
        other => other.for_each_child(|c| set_points(c, out)),
    }
    out.retain(|x| x.is_finite());
}

/// Test points around the critical points: each point, just beside it, between neighbours,
/// beyond the extremes, plus a fixed spread.
fn probe_points(mut critical: Vec<f64>) -> Vec<f64> {
    critical.sort_by(f64::total_cmp);
    critical.dedup();
    let mut probes: Vec<f64> = (-12..=12).map(|k| f64::from(k) * 0.73 + 0.011).collect();
    for w in critical.windows(2) {
        probes.push(f64::midpoint(w[0], w[1]));
    }
    for &x in &critical {
        let d = 1e-6 * (1.0 + x.abs());
        probes.extend([x, x - d, x + d]);
    }
    if let (Some(first), Some(last)) = (critical.first(), critical.last()) {
        probes.extend([first - 1.0, last + 1.0, first - 100.0, last + 100.0]);
    }
    probes
}

fn same_members(a: &Node, b: &Node) -> bool {
    let mut crit = Vec::new();
    set_points(a, &mut crit);
    set_points(b, &mut crit);
    probe_points(crit).into_iter().all(|t| matches!((contains(a, t), contains(b, t)), (Some(x), Some(y)) if x == y))
}

/// `f(x)` inside a relation is treated as one unknown, so `0 < f(x) < 1` is a set of values.
fn unwrap_functions(n: &Node) -> Node {
    n.clone().map(&mut |n| match n {
        Node::Apply(name, args) => Node::Sym(format!("{name}_{}", args.iter().map(ToString::to_string).collect::<Vec<_>>().join("_"))),
        other => other,
    })
}

fn single_variable(nodes: &[&Node]) -> Option<String> {
    let mut symbols = Vec::new();
    for n in nodes {
        n.free_symbols(&mut symbols);
    }
    (symbols.len() == 1).then(|| symbols.remove(0))
}

fn holds(rel: &Node, var: &str, t: f64) -> Option<bool> {
    let env: Env = [(var.to_string(), C::real(t))].into_iter().collect();
    for part in rel.relations() {
        let Node::Rel(r, lhs, rhs) = part else { return None };
        let (a, b) = (eval::eval(lhs, &env)?, eval::eval(rhs, &env)?);
        if a.im.abs() > 1e-9 || b.im.abs() > 1e-9 || a.re.is_nan() || b.re.is_nan() {
            return Some(false);
        }
        let tol = 1e-9 * a.re.abs().max(b.re.abs()).max(1.0);
        let ok = match r {
            Rel::Eq => (a.re - b.re).abs() <= tol,
            Rel::Ne => (a.re - b.re).abs() > tol,
            Rel::Lt => a.re < b.re - tol,
            Rel::Le => a.re <= b.re + tol,
            Rel::Gt => a.re > b.re + tol,
            Rel::Ge => a.re >= b.re - tol,
        };
        if !ok {
            return Some(false);
        }
    }
    Some(true)
}

/// Where `lhs - rhs` of some link changes sign, located by bisection on a grid.
fn relation_points(rel: &Node, var: &str, out: &mut Vec<f64>) {
    for part in rel.relations() {
        let Node::Rel(_, lhs, rhs) = part else { continue };
        let diff = Node::Add(vec![(**lhs).clone(), neg((**rhs).clone())]);
        let f = |t: f64| {
            let env: Env = [(var.to_string(), C::real(t))].into_iter().collect();
            eval::eval(&diff, &env).filter(|v| v.im.abs() < 1e-9 && v.re.is_finite()).map(|v| v.re)
        };
        let grid: Vec<f64> = (-400..=400).map(|k| f64::from(k) * 0.125 + 0.0007).collect();
        for w in grid.windows(2) {
            let (Some(fa), Some(fb)) = (f(w[0]), f(w[1])) else { continue };
            if fa == 0.0 {
                out.push(w[0]);
            } else if fa.signum() != fb.signum() {
                let (mut lo, mut hi, mut flo) = (w[0], w[1], fa);
                for _ in 0..60 {
                    let mid = f64::midpoint(lo, hi);
                    match f(mid) {
                        Some(fm) if fm.signum() == flo.signum() => {
                            lo = mid;
                            flo = fm;
                        }
                        _ => hi = mid,
                    }
                }
                out.push(f64::midpoint(lo, hi));
            }
        }
    }
}

/// A relation in one unknown against a set: `x \ge 5` vs `[5, \infty)`. Simple bounds become an
/// interval compared with the usual precision; anything else is compared by membership.
pub(crate) fn relation_matches_set(rel: &Node, set: &Node, cx: &Ctx) -> bool {
    let rel = unwrap_functions(rel);
    if let Some(as_set) = relation_to_interval(&rel)
        && sets_eq(&as_set, set, cx)
    {
        return true;
    }
    let Some(var) = single_variable(&[&rel]) else { return false };
    let mut crit = Vec::new();
    set_points(set, &mut crit);
    relation_points(&rel, &var, &mut crit);
    probe_points(crit).into_iter().all(|t| matches!((holds(&rel, &var, t), contains(set, t)), (Some(x), Some(y)) if x == y))
}

/// Two relations in the same single unknown with the same solution set.
pub(crate) fn univariate_relations_eq(a: &Node, b: &Node) -> bool {
    let (a, b) = (unwrap_functions(a), unwrap_functions(b));
    let Some(var) = single_variable(&[&a, &b]) else { return false };
    let mut crit = Vec::new();
    relation_points(&a, &var, &mut crit);
    relation_points(&b, &var, &mut crit);
    probe_points(crit).into_iter().all(|t| matches!((holds(&a, &var, t), holds(&b, &var, t)), (Some(x), Some(y)) if x == y))
}

/// Same solutions: equations whose sides differ by a constant factor (`2x + 4y - 3 = 0` and
/// `y = -x/2 + 3/4`), inequalities with the same one-variable solution set or scaled by a
/// positive (same direction) or negative (flipped) factor.
pub(crate) fn solutions_eq(gold: &Node, pred: &Node) -> bool {
    let (Node::Rel(gr, gl, grhs), Node::Rel(pr, pl, prhs)) = (gold, pred) else { return false };
    let diff = |a: &Node, b: &Node| Node::Add(vec![a.clone(), neg(b.clone())]);
    let (gd, pd) = (diff(gl, grhs), diff(pl, prhs));
    match (gr, pr) {
        (Rel::Eq, Rel::Eq) | (Rel::Ne, Rel::Ne) => ratio_is_constant(&gd, &pd, None),
        (Rel::Eq | Rel::Ne, _) | (_, Rel::Eq | Rel::Ne) => false,
        _ => {
            if univariate_relations_eq(gold, pred) {
                return true;
            }
            if gr == pr {
                ratio_is_constant(&gd, &pd, Some(true))
            } else if gr.flipped() == *pr {
                ratio_is_constant(&gd, &pd, Some(false))
            } else {
                false
            }
        }
    }
}

/// `x < 3`, `5 \le x`, `-2 \le x \le 7`, `x \ne 3` as intervals (or a union for `\ne`).
fn relation_to_interval(rel: &Node) -> Option<Node> {
    let inf = || Node::Const(Const::Infinity);
    let mut lo: Option<(Node, f64, bool)> = None;
    let mut hi: Option<(Node, f64, bool)> = None;
    let mut var: Option<&Node> = None;
    for part in rel.relations() {
        let Node::Rel(r, lhs, rhs) = part else { return None };
        let (r, v, bound) = if matches!(**lhs, Node::Sym(_)) && eval::real_constant(rhs).is_some() {
            (*r, &**lhs, &**rhs)
        } else if matches!(**rhs, Node::Sym(_)) && eval::real_constant(lhs).is_some() {
            (r.flipped(), &**rhs, &**lhs)
        } else {
            return None;
        };
        if var.is_some_and(|x| x != v) {
            return None;
        }
        var = Some(v);
        let value = eval::real_constant(bound)?;
        let new = (bound.clone(), value, matches!(r, Rel::Lt | Rel::Gt));
        match r {
            Rel::Lt | Rel::Le => {
                if hi.as_ref().is_none_or(|h| value < h.1 || (value <= h.1 && new.2)) {
                    hi = Some(new);
                }
            }
            Rel::Gt | Rel::Ge => {
                if lo.as_ref().is_none_or(|l| value > l.1 || (value >= l.1 && new.2)) {
                    lo = Some(new);
                }
            }
            Rel::Eq if rel.relations().len() == 1 => return Some(Node::Set(vec![bound.clone()])),
            Rel::Ne if rel.relations().len() == 1 => {
                let left = Node::Interval { lo: Box::new(neg(inf())), hi: Box::new(bound.clone()), lo_open: true, hi_open: true };
                let right = Node::Interval { lo: Box::new(bound.clone()), hi: Box::new(inf()), lo_open: true, hi_open: true };
                return Some(Node::Union(vec![left, right]));
            }
            _ => return None,
        }
    }
    let (lo, lo_open) = lo.map_or((neg(inf()), true), |l| (l.0, l.2));
    let (hi, hi_open) = hi.map_or((inf(), true), |h| (h.0, h.2));
    Some(Node::Interval { lo: Box::new(lo), hi: Box::new(hi), lo_open, hi_open })
}

/// Folds sums, products and scalings of matrix literals into one matrix of entry expressions.
pub(crate) fn as_matrix(n: &Node) -> Option<Vec<Vec<Node>>> {
    match n {
        Node::Matrix(rows) => Some(rows.clone()),
        Node::Neg(inner) => Some(as_matrix(inner)?.into_iter().map(|r| r.into_iter().map(neg).collect()).collect()),
        Node::Add(terms) => {
            let mats: Vec<Vec<Vec<Node>>> = terms.iter().map(as_matrix).collect::<Option<_>>()?;
            let first = mats.first()?;
            let shape_ok = mats.iter().all(|m| m.len() == first.len() && m.iter().zip(first).all(|(a, b)| a.len() == b.len()));
            shape_ok.then(|| {
                (0..first.len())
                    .map(|i| (0..first[i].len()).map(|j| Node::Add(mats.iter().map(|m| m[i][j].clone()).collect())).collect())
                    .collect()
            })
        }
        Node::Mul(factors) if factors.iter().any(|f| matches!(f, Node::Matrix(_))) => {
            let mut acc: Option<Vec<Vec<Node>>> = None;
            let mut scalars = Vec::new();
            for f in factors {
                match (as_matrix(f), acc.take()) {
                    (Some(m), None) => acc = Some(m),
                    (Some(m), Some(a)) => acc = Some(mat_mul(&a, &m)?),
                    (None, a) => {
                        scalars.push(f.clone());
                        acc = a;
                    }
                }
            }
            let acc = acc?;
            Some(acc.into_iter().map(|r| r.into_iter().map(|e| Node::Mul([scalars.clone(), vec![e]].concat())).collect()).collect())
        }
        _ => None,
    }
}

fn mat_mul(a: &[Vec<Node>], b: &[Vec<Node>]) -> Option<Vec<Vec<Node>>> {
    let inner = b.len();
    if a.iter().any(|r| r.len() != inner) || inner == 0 {
        return None;
    }
    let cols = b[0].len();
    Some(
        a.iter()
            .map(|row| {
                (0..cols).map(|j| Node::Add((0..inner).map(|k| Node::Mul(vec![row[k].clone(), b[k][j].clone()])).collect())).collect()
            })
            .collect(),
    )
}
