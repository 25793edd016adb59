//! The parsed form of an answer: one tree type covering numbers, expressions, relations, sets,
//! intervals, tuples and matrices, because answers freely mix them (`x \in [0, 1)`, `(p, q) = (3, 2)`).

use std::fmt::{self, Write as _};

/// A number literal. Exact integers and fractions stay exact so that `1/3` only matches `0.3333`
/// at the requested precision, while float literals mark a side as "approximate".
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Num {
    Int(i128),
    /// Reduced numerator / denominator, denominator > 1.
    Rat(i128, i128),
    Float(f64),
}

impl Num {
    pub(crate) fn to_f64(&self) -> f64 {
        match *self {
            Num::Int(i) => i as f64,
            Num::Rat(n, d) => n as f64 / d as f64,
            Num::Float(f) => f,
        }
    }

    /// `n / d` reduced; falls back to a float when the denominator is zero or overflows.
    pub(crate) fn ratio(n: i128, d: i128) -> Option<Num> {
        if d == 0 {
            return None;
        }
        let g = gcd(n.unsigned_abs(), d.unsigned_abs()) as i128;
        let (mut n, mut d) = (n / g.max(1), d / g.max(1));
        if d < 0 {
            n = n.checked_neg()?;
            d = d.checked_neg()?;
        }
        Some(if d == 1 { Num::Int(n) } else { Num::Rat(n, d) })
    }

    pub(crate) fn negated(&self) -> Num {
        match *self {
            Num::Int(i) => i.checked_neg().map_or(Num::Float(-(i as f64)), Num::Int),
            Num::Rat(n, d) => Num::Rat(-n, d),
            Num::Float(f) => Num::Float(-f),
        }
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Const {
    Pi,
    /// Euler's number (a bare `e`).
    E,
    Infinity,
}

/// Known functions; anything else applied to arguments (`f(x)`) is an [`Node::Apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Sin,
    Cos,
    Tan,
    Sec,
    Csc,
    Cot,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Ln,
    /// Logarithm with the base as second argument.
    Log,
    Exp,
    Sqrt,
    /// `x^(1/n)`, second argument is the index.
    Root,
    Abs,
    Floor,
    Ceil,
    Factorial,
    Binom,
    Gcd,
    Lcm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rel {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Rel {
    /// The relation read right to left: `a < b` is `b > a`.
    pub(crate) fn flipped(self) -> Rel {
        match self {
            Rel::Lt => Rel::Gt,
            Rel::Le => Rel::Ge,
            Rel::Gt => Rel::Lt,
            Rel::Ge => Rel::Le,
            other => other,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Rel::Eq => "=",
            Rel::Ne => "!=",
            Rel::Lt => "<",
            Rel::Le => "<=",
            Rel::Gt => ">",
            Rel::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Num(Num),
    /// A variable, lower-cased, subscript included (`a_{37}`); also the text of `\text{Evelyn}`.
    Sym(String),
    Const(Const),
    Add(Vec<Node>),
    Mul(Vec<Node>),
    Div(Box<Node>, Box<Node>),
    Pow(Box<Node>, Box<Node>),
    Neg(Box<Node>),
    /// `x%`, kept apart from `x/100` because `28%` and `28` are the same answer.
    Percent(Box<Node>),
    Func(Func, Vec<Node>),
    /// An undefined function applied to arguments: `f(x)`.
    Apply(String, Vec<Node>),
    /// `\sum` (or `\prod` when `product`) of `body` for `var` from `lo` to `hi`.
    Big {
        product: bool,
        var: String,
        lo: Box<Node>,
        hi: Box<Node>,
        body: Box<Node>,
    },
    /// `a ± b`, expanded into a set of both values before comparison.
    PlusMinus(Box<Node>, Box<Node>),
    Rel(Rel, Box<Node>, Box<Node>),
    /// A chain such as `a < b < c`, one relation per link.
    And(Vec<Node>),
    Tuple(Vec<Node>),
    /// A finite set; keeps the written order (a gold tuple is compared against it in that order).
    Set(Vec<Node>),
    Interval {
        lo: Box<Node>,
        hi: Box<Node>,
        lo_open: bool,
        hi_open: bool,
    },
    Union(Vec<Node>),
    Intersection(Vec<Node>),
    Complement(Box<Node>, Box<Node>),
    Matrix(Vec<Vec<Node>>),
    Reals,
    Empty,
}

impl Node {
    pub(crate) fn int(i: i128) -> Node {
        Node::Num(Num::Int(i))
    }

    pub(crate) fn is_relation(&self) -> bool {
        match self {
            Node::Rel(..) => true,
            Node::And(parts) => !parts.is_empty() && parts.iter().all(|p| matches!(p, Node::Rel(..))),
            _ => false,
        }
    }

    pub(crate) fn is_equation(&self) -> bool {
        match self {
            Node::Rel(Rel::Eq, ..) => true,
            Node::And(parts) => !parts.is_empty() && parts.iter().all(|p| matches!(p, Node::Rel(Rel::Eq, ..))),
            _ => false,
        }
    }

    /// `x = 1`, `(p, q) = (3, 2)`, `AB = 4`, `f(x) = 1`: an equation whose left side only names
    /// things, so the right side is the answer.
    pub(crate) fn is_assignment(&self) -> bool {
        match self {
            Node::Rel(Rel::Eq, lhs, _) => lhs.only_symbols(),
            Node::And(parts) => {
                self.is_equation() && parts.first().is_some_and(|p| matches!(p, Node::Rel(_, lhs, _) if lhs.only_symbols()))
            }
            _ => false,
        }
    }

    pub(crate) fn only_symbols(&self) -> bool {
        match self {
            Node::Sym(_) => true,
            Node::Pow(base, exp) => **exp == Node::int(-1) && base.only_symbols(),
            Node::Add(v) | Node::Mul(v) | Node::Tuple(v) | Node::Set(v) | Node::Apply(_, v) | Node::Func(_, v) => {
                !v.is_empty() && v.iter().all(Node::only_symbols)
            }
            Node::Div(a, b) => a.only_symbols() && b.only_symbols(),
            _ => false,
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        matches!(
            self,
            Node::Set(_)
                | Node::Interval { .. }
                | Node::Union(_)
                | Node::Intersection(_)
                | Node::Complement(..)
                | Node::Reals
                | Node::Empty
        )
    }

    /// The relations of a chain, in written order.
    pub(crate) fn relations(&self) -> Vec<&Node> {
        match self {
            Node::And(parts) => parts.iter().collect(),
            other => vec![other],
        }
    }

    pub(crate) fn free_symbols(&self, out: &mut Vec<String>) {
        self.walk_symbols(&mut Vec::new(), out);
    }

    fn walk_symbols(&self, bound: &mut Vec<String>, out: &mut Vec<String>) {
        match self {
            Node::Sym(s) => {
                if !bound.contains(s) && !out.contains(s) {
                    out.push(s.clone());
                }
            }
            Node::Big { var, lo, hi, body, .. } => {
                lo.walk_symbols(bound, out);
                hi.walk_symbols(bound, out);
                bound.push(var.clone());
                body.walk_symbols(bound, out);
                bound.pop();
            }
            _ => self.for_each_child(|c| c.walk_symbols(bound, out)),
        }
    }

    pub(crate) fn for_each_child(&self, mut f: impl FnMut(&Node)) {
        match self {
            Node::Num(_) | Node::Sym(_) | Node::Const(_) | Node::Reals | Node::Empty => {}
            Node::Neg(a) | Node::Percent(a) => f(a),
            Node::Div(a, b) | Node::Pow(a, b) | Node::PlusMinus(a, b) | Node::Rel(_, a, b) | Node::Complement(a, b) => {
                f(a);
                f(b);
            }
            Node::Interval { lo, hi, .. } => {
                f(lo);
                f(hi);
            }
            Node::Big { lo, hi, body, .. } => {
                f(lo);
                f(hi);
                f(body);
            }
            Node::Add(v)
            | Node::Mul(v)
            | Node::Func(_, v)
            | Node::Apply(_, v)
            | Node::And(v)
            | Node::Tuple(v)
            | Node::Set(v)
            | Node::Union(v)
            | Node::Intersection(v) => v.iter().for_each(f),
            Node::Matrix(rows) => rows.iter().flatten().for_each(f),
        }
    }

    /// Rebuilds the tree bottom-up through `f`.
    pub(crate) fn map<F: FnMut(Node) -> Node>(self, f: &mut F) -> Node {
        #[allow(clippy::boxed_local, clippy::unnecessary_box_returns)] // The tree stores its children boxed.
        fn b<F: FnMut(Node) -> Node>(n: Box<Node>, f: &mut F) -> Box<Node> {
            Box::new(n.map(f))
        }
        fn v<F: FnMut(Node) -> Node>(items: Vec<Node>, f: &mut F) -> Vec<Node> {
            items.into_iter().map(|n| n.map(f)).collect()
        }
        let rebuilt = match self {
            Node::Neg(a) => Node::Neg(b(a, f)),
            Node::Percent(a) => Node::Percent(b(a, f)),
            Node::Div(x, y) => Node::Div(b(x, f), b(y, f)),
            Node::Pow(x, y) => Node::Pow(b(x, f), b(y, f)),
            Node::PlusMinus(x, y) => Node::PlusMinus(b(x, f), b(y, f)),
            Node::Rel(r, x, y) => Node::Rel(r, b(x, f), b(y, f)),
            Node::Complement(x, y) => Node::Complement(b(x, f), b(y, f)),
            Node::Interval { lo, hi, lo_open, hi_open } => Node::Interval { lo: b(lo, f), hi: b(hi, f), lo_open, hi_open },
            Node::Big { product, var, lo, hi, body } => Node::Big { product, var, lo: b(lo, f), hi: b(hi, f), body: b(body, f) },
            Node::Add(items) => Node::Add(v(items, f)),
            Node::Mul(items) => Node::Mul(v(items, f)),
            Node::Func(g, items) => Node::Func(g, v(items, f)),
            Node::Apply(g, items) => Node::Apply(g, v(items, f)),
            Node::And(items) => Node::And(v(items, f)),
            Node::Tuple(items) => Node::Tuple(v(items, f)),
            Node::Set(items) => Node::Set(v(items, f)),
            Node::Union(items) => Node::Union(v(items, f)),
            Node::Intersection(items) => Node::Intersection(v(items, f)),
            Node::Matrix(rows) => Node::Matrix(rows.into_iter().map(|r| v(r, f)).collect()),
            leaf => leaf,
        };
        f(rebuilt)
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[Node], sep: &str) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// A compact, sympy-like rendering used in verdict reasons and for undefined-function names.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Num(Num::Int(i)) => write!(f, "{i}"),
            Node::Num(Num::Rat(n, d)) => write!(f, "{n}/{d}"),
            Node::Num(Num::Float(x)) => write!(f, "{x}"),
            Node::Sym(s) => f.write_str(s),
            Node::Const(c) => f.write_str(match c {
                Const::Pi => "pi",
                Const::E => "E",
                Const::Infinity => "oo",
            }),
            Node::Add(v) => {
                f.write_char('(')?;
                join(f, v, " + ")?;
                f.write_char(')')
            }
            Node::Mul(v) => join(f, v, "*"),
            Node::Div(a, b) => write!(f, "({a})/({b})"),
            Node::Pow(a, b) => write!(f, "({a})^({b})"),
            Node::Neg(a) => write!(f, "-({a})"),
            Node::Percent(a) => write!(f, "{a}%"),
            Node::Func(g, v) => {
                write!(f, "{}(", format!("{g:?}").to_lowercase())?;
                join(f, v, ", ")?;
                f.write_char(')')
            }
            Node::Apply(g, v) => {
                write!(f, "{g}(")?;
                join(f, v, ", ")?;
                f.write_char(')')
            }
            Node::Big { product, var, lo, hi, body } => {
                write!(f, "{}({body}, ({var}, {lo}, {hi}))", if *product { "Product" } else { "Sum" })
            }
            Node::PlusMinus(a, b) => write!(f, "{a} ± {b}"),
            Node::Rel(r, a, b) => write!(f, "{a} {} {b}", r.symbol()),
            Node::And(v) => join(f, v, " & "),
            Node::Tuple(v) => {
                f.write_char('(')?;
                join(f, v, ", ")?;
                f.write_char(')')
            }
            Node::Set(v) => {
                f.write_char('{')?;
                join(f, v, ", ")?;
                f.write_char('}')
            }
            Node::Interval { lo, hi, lo_open, hi_open } => {
                write!(f, "{}{lo}, {hi}{}", if *lo_open { '(' } else { '[' }, if *hi_open { ')' } else { ']' })
            }
            Node::Union(v) => join(f, v, " U "),
            Node::Intersection(v) => join(f, v, " n "),
            Node::Complement(a, b) => write!(f, "{a} \\ {b}"),
            Node::Matrix(rows) => {
                f.write_str("Matrix(")?;
                for (i, row) in rows.iter().enumerate() {
                    f.write_str(if i == 0 { "[" } else { ", [" })?;
                    join(f, row, ", ")?;
                    f.write_char(']')?;
                }
                f.write_char(')')
            }
            Node::Reals => f.write_str("Reals"),
            Node::Empty => f.write_str("EmptySet"),
        }
    }
}
