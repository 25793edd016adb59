//! Building answer trees: number literals, comma lists as sets or tuples, relation chains,
//! intervals that are really pairs, and the expansion of `\pm`.

use super::eval;
use super::node::{Node, Num, Rel};

/// `14,916` and `11,111,111,100` are numbers, not sets: a lone comma-grouped number reads as the
/// number (with a space after the comma, `32, 349`, it stays a set). `0,111` is a decimal comma.
pub(crate) fn thousands_number(src: &str) -> Option<Node> {
    let s = src.trim();
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int_part, frac) = match body.split_once('.') {
        Some((i, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (i, Some(f)),
        Some(_) => return None,
        None => (body, None),
    };
    let groups: Vec<&str> = int_part.split(',').collect();
    let well_formed = groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3);
    if !well_formed {
        return None;
    }
    let text = if groups[0].starts_with('0') && frac.is_none() && groups.len() == 2 {
        format!("{}.{}", groups[0], groups[1])
    } else {
        format!("{}{}", groups.concat(), frac.map(|f| format!(".{f}")).unwrap_or_default())
    };
    let n = number_from_text(&text)?;
    Some(Node::Num(if s.starts_with('-') { n.negated() } else { n }))
}

pub(crate) fn number_from_text(text: &str) -> Option<Num> {
    if text.contains('.') {
        let t = if text.starts_with('.') { format!("0{text}") } else { text.to_string() };
        return t.parse::<f64>().ok().map(Num::Float);
    }
    let digits = text.trim_start_matches('0');
    if digits.is_empty() {
        return Some(Num::Int(0));
    }
    Some(digits.parse::<i128>().map_or_else(|_| Num::Float(digits.parse::<f64>().unwrap_or(f64::INFINITY)), Num::Int))
}

/// Turns the comma/semicolon groups of a whole answer into one node: a single element, a set,
/// or a set of tuples (`p=5,q=2;p=7,q=2`), with `n = 1, 2, 3` read as `n = {1, 2, 3}`.
pub(crate) fn convert_top(mut groups: Vec<Vec<Node>>) -> Option<Node> {
    let total: usize = groups.iter().map(Vec::len).sum();
    if total > 1
        && let Some(Node::Rel(Rel::Eq, lhs, _)) = groups.first().and_then(|g| g.first())
        && lhs.only_symbols()
        && groups.iter().flatten().skip(1).all(|e| !e.is_relation())
    {
        let Node::Rel(_, lhs, rhs) = groups[0].remove(0) else { return None };
        groups[0].insert(0, *rhs);
        return Some(Node::Rel(Rel::Eq, lhs, Box::new(elements_to_set_or_tuple(groups)?)));
    }
    elements_to_set_or_tuple(groups)
}

pub(crate) fn elements_to_set_or_tuple(mut groups: Vec<Vec<Node>>) -> Option<Node> {
    match groups.len() {
        0 => None,
        1 if groups[0].len() == 1 => groups.pop().and_then(|mut g| g.pop()),
        1 => groups.pop().map(make_set),
        _ if groups.iter().all(|g| g.len() == 1) => Some(make_set(groups.into_iter().flatten().collect())),
        _ => Some(make_set(groups.into_iter().map(Node::Tuple).collect())),
    }
}

/// A finite set drops repeated elements, as a set should (`(3,17,3,7)` listed twice is one answer).
pub(crate) fn make_set(items: Vec<Node>) -> Node {
    let mut out: Vec<Node> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Node::Set(out)
}

/// Expands `a ± b` into the set `{a - b, a + b}`, distributing through the enclosing arithmetic.
pub(crate) fn distribute_pm(node: Node) -> Node {
    match node {
        Node::PlusMinus(a, b) => {
            let minus = if *a == Node::Empty { neg(*b.clone()) } else { Node::Add(vec![*a.clone(), neg(*b.clone())]) };
            let plus = if *a == Node::Empty { *b } else { Node::Add(vec![*a, *b]) };
            make_set(vec![minus, plus])
        }
        Node::Set(items) if items.iter().any(|i| matches!(i, Node::Set(_))) => {
            make_set(items.into_iter().flat_map(|i| if let Node::Set(inner) = i { inner } else { vec![i] }).collect())
        }
        Node::Add(_) | Node::Mul(_) | Node::Div(..) | Node::Pow(..) | Node::Neg(_) | Node::Func(..) | Node::Percent(_) => {
            let mut has_set = false;
            node.for_each_child(|c| has_set = has_set || matches!(c, Node::Set(_)));
            if !has_set {
                return node;
            }
            let variants = pm_variants(&node);
            if variants.len() > 1 { make_set(variants) } else { node }
        }
        other => other,
    }
}

/// Every combination of the set-valued children of an arithmetic node (capped to stay small).
fn pm_variants(node: &Node) -> Vec<Node> {
    let options = |c: &Node| if let Node::Set(v) = c { v.clone() } else { vec![c.clone()] };
    let combine = |lists: Vec<Vec<Node>>| -> Vec<Vec<Node>> {
        let mut acc: Vec<Vec<Node>> = vec![Vec::new()];
        for list in lists {
            acc = acc.iter().flat_map(|prefix| list.iter().map(move |x| [prefix.clone(), vec![x.clone()]].concat())).take(64).collect();
        }
        acc
    };
    let two = |a: &Node, b: &Node, f: &dyn Fn(Node, Node) -> Node| -> Vec<Node> {
        combine(vec![options(a), options(b)]).into_iter().filter_map(|mut v| Some(f(v.remove(0), v.pop()?))).collect()
    };
    match node {
        Node::Add(v) => combine(v.iter().map(options).collect()).into_iter().map(Node::Add).collect(),
        Node::Mul(v) => combine(v.iter().map(options).collect()).into_iter().map(Node::Mul).collect(),
        Node::Func(f, v) => combine(v.iter().map(options).collect()).into_iter().map(|a| Node::Func(*f, a)).collect(),
        Node::Div(a, b) => two(a, b, &|x, y| Node::Div(Box::new(x), Box::new(y))),
        Node::Pow(a, b) => two(a, b, &|x, y| Node::Pow(Box::new(x), Box::new(y))),
        Node::Neg(a) => options(a).into_iter().map(neg).collect(),
        Node::Percent(a) => options(a).into_iter().map(|x| Node::Percent(Box::new(x))).collect(),
        other => vec![other.clone()],
    }
}

pub(crate) fn neg(n: Node) -> Node {
    match n {
        Node::Num(x) => Node::Num(x.negated()),
        Node::Neg(inner) => *inner,
        other => Node::Neg(Box::new(other)),
    }
}

pub(crate) fn mul_of(mut factors: Vec<Node>) -> Node {
    if factors.len() == 1 {
        return factors.remove(0);
    }
    Node::Mul(factors.into_iter().flat_map(|f| if let Node::Mul(inner) = f { inner } else { vec![f] }).collect())
}

/// Adds one link to a relation chain: `a < b` then `< c` gives `a < b & b < c`.
pub(crate) fn link(acc: Node, r: Rel, rhs: Node) -> Node {
    let prev_rhs = |n: &Node| if let Node::Rel(_, _, b) = n { Some((**b).clone()) } else { None };
    match acc {
        Node::And(mut v) => {
            let last = v.last().and_then(prev_rhs).unwrap_or(Node::Empty);
            v.push(Node::Rel(r, Box::new(last), Box::new(rhs)));
            Node::And(v)
        }
        rel @ Node::Rel(..) => {
            let last = prev_rhs(&rel).unwrap_or(Node::Empty);
            Node::And(vec![rel, Node::Rel(r, Box::new(last), Box::new(rhs))])
        }
        // `(x, y) = ...` names a pair of unknowns, not an interval.
        Node::Interval { lo, hi, .. } if r == Rel::Eq && lo.only_symbols() && hi.only_symbols() => {
            Node::Rel(r, Box::new(Node::Tuple(vec![*lo, *hi])), Box::new(rhs))
        }
        lhs => Node::Rel(r, Box::new(lhs), Box::new(rhs)),
    }
}

pub(crate) fn tuple_to_set(n: Node) -> Node {
    if let Node::Tuple(items) = n { make_set(items) } else { n }
}

/// An interval that would be empty (`(3, 1)`) is read as the pair it must mean.
pub(crate) fn interval_or_tuple(lo: Node, hi: Node, lo_open: bool, hi_open: bool) -> Node {
    if let (Some(a), Some(b)) = (eval::real_constant(&lo), eval::real_constant(&hi))
        && ((lo_open && hi_open && b <= a) || (!lo_open && !hi_open && b < a))
    {
        return Node::Tuple(vec![lo, hi]);
    }
    Node::Interval { lo: Box::new(lo), hi: Box::new(hi), lo_open, hi_open }
}
