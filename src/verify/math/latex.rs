//! Recursive-descent parser from normalized LaTeX to [`Node`]. It follows the reading of
//! math-verify's grammar (latex2sympy2_extended) where the two differ from plain TeX, because the
//! verdicts must agree with that checker: `(1, 2)` is an open interval but `(2, 1)` a tuple,
//! `1, 2, 3` is a set, `n = 1, 2` assigns a set, implicit products bind tighter than `/`.

use super::eval;
use super::lexer::{Tok, Token, tokenize};
use super::node::{Node, Num, Rel};

#[derive(Debug)]
pub(crate) struct ParseError;

pub(crate) type PResult<T> = Result<T, ParseError>;

/// Parses one normalized answer. `None` when the text is not math we understand.
pub(crate) fn parse_latex(src: &str) -> Option<Node> {
    if let Some(n) = thousands_number(src) {
        return Some(n);
    }
    let mut p = Parser::new(src);
    let groups = p.parse_list(|_| false).ok()?;
    if p.peek().is_some() {
        return None;
    }
    let node = convert_top(groups)?;
    Some(node.map(&mut distribute_pm))
}

/// `14,916` and `11,111,111,100` are numbers, not sets: a lone comma-grouped number reads as the
/// number (with a space after the comma, `32, 349`, it stays a set). `0,111` is a decimal comma.
fn thousands_number(src: &str) -> Option<Node> {
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
fn convert_top(mut groups: Vec<Vec<Node>>) -> Option<Node> {
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
fn distribute_pm(node: Node) -> Node {
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

fn mul_of(mut factors: Vec<Node>) -> Node {
    if factors.len() == 1 {
        return factors.remove(0);
    }
    Node::Mul(factors.into_iter().flat_map(|f| if let Node::Mul(inner) = f { inner } else { vec![f] }).collect())
}

enum RelOp {
    Rel(Rel),
    Approx,
    In,
}

pub(crate) struct Parser<'a> {
    pub(crate) src: &'a str,
    pub(crate) toks: Vec<Token>,
    pub(crate) pos: usize,
    pub(crate) abs_depth: usize,
    pub(crate) matrix_depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        let mut toks = tokenize(src);
        // A sentence-ending full stop is not part of the answer.
        while toks.last().is_some_and(|t| t.tok == Tok::Ch('.')) {
            toks.pop();
        }
        Parser { src, toks, pos: 0, abs_depth: 0, matrix_depth: 0 }
    }

    /// Row and column separators only mean something inside a matrix; elsewhere (align
    /// environments, stray `&`) they are layout.
    fn skip_layout(&mut self) {
        if self.matrix_depth == 0 {
            while self.toks.get(self.pos).is_some_and(|t| matches!(&t.tok, Tok::Ch('&')) || matches!(&t.tok, Tok::Cmd(c) if c == "\\")) {
                self.pos += 1;
            }
        }
    }

    pub(crate) fn peek(&mut self) -> Option<Tok> {
        self.skip_layout();
        self.toks.get(self.pos).map(|t| t.tok.clone())
    }

    pub(crate) fn peek_at(&mut self, offset: usize) -> Option<Tok> {
        self.skip_layout();
        self.toks.get(self.pos + offset).map(|t| t.tok.clone())
    }

    pub(crate) fn bump(&mut self) {
        self.skip_layout();
        self.pos += 1;
    }

    pub(crate) fn is_ch(&mut self, c: char) -> bool {
        self.peek() == Some(Tok::Ch(c))
    }

    pub(crate) fn is_cmd(&mut self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Cmd(c)) if c == name)
    }

    pub(crate) fn eat_ch(&mut self, c: char) -> bool {
        let hit = self.is_ch(c);
        if hit {
            self.bump();
        }
        hit
    }

    pub(crate) fn eat_cmd(&mut self, name: &str) -> bool {
        let hit = self.is_cmd(name);
        if hit {
            self.bump();
        }
        hit
    }

    pub(crate) fn expect_ch(&mut self, c: char) -> PResult<()> {
        if self.eat_ch(c) { Ok(()) } else { Err(ParseError) }
    }

    /// Elements separated by `,` (within a group) and `;` (between groups), up to a closing token.
    pub(crate) fn parse_list(&mut self, stop: fn(&Tok) -> bool) -> PResult<Vec<Vec<Node>>> {
        let mut groups: Vec<Vec<Node>> = vec![Vec::new()];
        loop {
            match self.peek() {
                None => break,
                Some(t) if stop(&t) => break,
                Some(Tok::Ch(',')) => self.bump(),
                Some(Tok::Ch(';')) => {
                    self.bump();
                    groups.push(Vec::new());
                }
                Some(_) => {
                    let element = self.parse_element()?;
                    groups.last_mut().ok_or(ParseError)?.push(element);
                    match self.peek() {
                        None | Some(Tok::Ch(',' | ';')) => {}
                        Some(t) if stop(&t) => {}
                        Some(_) => return Err(ParseError),
                    }
                }
            }
        }
        groups.retain(|g| !g.is_empty());
        Ok(groups)
    }

    /// A relation chain (`a < b <= c`, `x = 5+5+1 = 11`) or a single set/expression.
    pub(crate) fn parse_element(&mut self) -> PResult<Node> {
        let mut acc = self.parse_set_expr()?;
        while let Some(op) = self.eat_relop() {
            let rhs = self.parse_set_expr()?;
            acc = match op {
                // `x \approx 11` gives 11; `1/3 \approx 0.33` keeps the exact side.
                RelOp::Approx => {
                    if acc.only_symbols() {
                        rhs
                    } else {
                        acc
                    }
                }
                RelOp::In => link(acc, Rel::Eq, rhs),
                RelOp::Rel(r) => link(acc, r, rhs),
            };
        }
        Ok(acc)
    }

    fn eat_relop(&mut self) -> Option<RelOp> {
        let next_is_eq = |p: &mut Self| p.peek_at(1) == Some(Tok::Ch('='));
        let (op, width) = match self.peek()? {
            Tok::Ch('=') => (RelOp::Rel(Rel::Eq), if next_is_eq(self) { 2 } else { 1 }),
            Tok::Ch('<') if next_is_eq(self) => (RelOp::Rel(Rel::Le), 2),
            Tok::Ch('<') => (RelOp::Rel(Rel::Lt), 1),
            Tok::Ch('>') if next_is_eq(self) => (RelOp::Rel(Rel::Ge), 2),
            Tok::Ch('>') => (RelOp::Rel(Rel::Gt), 1),
            Tok::Ch('!') if next_is_eq(self) => (RelOp::Rel(Rel::Ne), 2),
            Tok::Cmd(c) => match c.as_str() {
                "le" | "leq" | "leqslant" => (RelOp::Rel(Rel::Le), 1),
                "ge" | "geq" | "geqslant" => (RelOp::Rel(Rel::Ge), 1),
                "lt" => (RelOp::Rel(Rel::Lt), 1),
                "gt" => (RelOp::Rel(Rel::Gt), 1),
                "ne" | "neq" => (RelOp::Rel(Rel::Ne), 1),
                "approx" => (RelOp::Approx, 1),
                "in" => (RelOp::In, 1),
                _ => return None,
            },
            _ => return None,
        };
        for _ in 0..width {
            self.bump();
        }
        Some(op)
    }

    fn parse_set_expr(&mut self) -> PResult<Node> {
        let mut acc = self.parse_additive()?;
        loop {
            if self.eat_cmd("cup") {
                let rhs = self.parse_additive()?;
                let mut parts = if let Node::Union(v) = acc { v } else { vec![tuple_to_set(acc)] };
                parts.push(tuple_to_set(rhs));
                acc = Node::Union(parts);
            } else if self.eat_cmd("cap") {
                let rhs = self.parse_additive()?;
                acc = Node::Intersection(vec![tuple_to_set(acc), tuple_to_set(rhs)]);
            } else if self.eat_cmd("setminus") {
                let rhs = self.parse_additive()?;
                acc = Node::Complement(Box::new(acc), Box::new(rhs));
            } else {
                return Ok(acc);
            }
        }
    }

    pub(crate) fn parse_additive(&mut self) -> PResult<Node> {
        let mut terms = vec![self.parse_term()?];
        loop {
            if self.eat_ch('+') {
                terms.push(self.parse_term()?);
            } else if self.eat_ch('-') {
                let t = self.parse_term()?;
                terms.push(neg(t));
            } else if self.is_cmd("pm") || self.is_cmd("mp") {
                let minus_first = self.is_cmd("mp");
                self.bump();
                let rhs = self.parse_term()?;
                let lhs = if terms.len() == 1 { terms.remove(0) } else { Node::Add(std::mem::take(&mut terms)) };
                let rhs = if minus_first { neg(rhs) } else { rhs };
                terms = vec![Node::PlusMinus(Box::new(lhs), Box::new(rhs))];
            } else {
                break;
            }
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Node::Add(terms) })
    }

    /// Explicit products and quotients of implicit products: `a/bc` is `a/(b*c)`.
    fn parse_term(&mut self) -> PResult<Node> {
        let mut acc = self.parse_implicit()?;
        loop {
            if self.eat_ch('*') || self.eat_cmd("cdot") || self.eat_cmd("times") || self.eat_cmd("ast") {
                self.eat_ch('*');
                let rhs = self.parse_implicit()?;
                acc = mul_of(vec![acc, rhs]);
            } else if self.eat_ch('/') || self.eat_cmd("div") || self.eat_ch(':') {
                let rhs = self.parse_implicit()?;
                acc = Node::Div(Box::new(acc), Box::new(rhs));
            } else {
                return Ok(acc);
            }
        }
    }

    pub(crate) fn parse_implicit(&mut self) -> PResult<Node> {
        let mut factors = vec![self.parse_unary()?];
        while self.starts_atom() {
            let from_number = matches!(self.toks.get(self.pos.wrapping_sub(1)), Some(Token { tok: Tok::Num(_), .. }));
            let next = self.parse_power()?;
            // `2 \frac{1}{2}` is the mixed number 5/2.
            if factors.len() == 1
                && from_number
                && let (Node::Num(Num::Int(whole)), Node::Num(Num::Rat(n, d))) = (&factors[0], &next)
                && *whole >= 0
                && *n > 0
                && let Some(mixed) = Num::ratio(whole * d + n, *d)
            {
                factors[0] = Node::Num(mixed);
                continue;
            }
            factors.push(next);
        }
        Ok(mul_of(factors))
    }

    pub(crate) fn parse_unary(&mut self) -> PResult<Node> {
        if self.eat_ch('-') {
            return Ok(neg(self.parse_unary()?));
        }
        if self.eat_ch('+') {
            return self.parse_unary();
        }
        if self.eat_cmd("pm") {
            let operand = self.parse_unary()?;
            return Ok(Node::PlusMinus(Box::new(Node::Empty), Box::new(operand)));
        }
        self.parse_power()
    }

    pub(crate) fn parse_power(&mut self) -> PResult<Node> {
        let mut base = self.parse_atom()?;
        loop {
            if self.eat_ch('^') {
                if self.eat_cmd("circ") || self.eat_cmd("prime") {
                    continue;
                }
                if self.is_ch('{') && matches!(self.peek_at(1), Some(Tok::Cmd(c)) if c == "circ") && self.peek_at(2) == Some(Tok::Ch('}')) {
                    self.pos += 3;
                    continue;
                }
                let exp = self.parse_script_arg()?;
                base = Node::Pow(Box::new(base), Box::new(exp));
            } else if self.eat_ch('_') {
                // A base subscript on a number (`204_5`) is dropped, as the reference does.
                self.parse_script_arg()?;
            } else if self.is_ch('!') && self.peek_at(1) != Some(Tok::Ch('=')) {
                self.bump();
                base = Node::Func(super::node::Func::Factorial, vec![base]);
            } else if self.eat_cmd("%") || self.eat_ch('%') {
                base = Node::Percent(Box::new(base));
            } else if self.eat_ch('\'') || self.eat_cmd("circ") || self.eat_cmd("degree") {
            } else {
                return Ok(base);
            }
        }
    }

    /// The argument of `^` or `_`: a braced group or a single token.
    pub(crate) fn parse_script_arg(&mut self) -> PResult<Node> {
        match self.peek() {
            Some(Tok::Ch('{')) => {
                self.bump();
                let groups = self.parse_list(|t| *t == Tok::Ch('}'))?;
                self.expect_ch('}')?;
                elements_to_set_or_tuple(groups).ok_or(ParseError)
            }
            Some(Tok::Ch('-')) => {
                self.bump();
                Ok(neg(self.parse_script_arg()?))
            }
            Some(Tok::Num(_) | Tok::Letter(_) | Tok::Cmd(_)) => self.parse_atom(),
            _ => Err(ParseError),
        }
    }

    /// `(a, b)`, `[a, b)`, `(x)`, `(1, 2, 3)`: grouping, interval or tuple by content and closer.
    pub(crate) fn parse_bracketed(&mut self) -> PResult<Node> {
        let open = if self.eat_ch('(') { '(' } else { self.expect_ch('[').map(|()| '[')? };
        let groups = self.parse_list(|t| matches!(t, Tok::Ch(')' | ']')))?;
        let close = if self.eat_ch(')') { ')' } else { self.expect_ch(']').map(|()| ']')? };
        let single_group = groups.len() == 1;
        let mut items: Vec<Node> = groups.into_iter().flatten().collect();
        match items.len() {
            0 => Err(ParseError),
            1 => Ok(items.remove(0)),
            2 if single_group => {
                let (lo, hi) = (items.remove(0), items.remove(0));
                Ok(interval_or_tuple(lo, hi, open == '(', close == ')'))
            }
            _ => Ok(Node::Tuple(items)),
        }
    }

    pub(crate) fn starts_atom(&mut self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Letter(_) | Tok::Ch('(' | '{')) => true,
            Some(Tok::Ch('|')) => self.abs_depth == 0,
            Some(Tok::Cmd(c)) => super::atoms::command_starts_atom(&c),
            _ => false,
        }
    }

    /// Raw source text of a braced group at the cursor, consumed; used for `\text{}` and
    /// subscripts whose spelling (not value) names a symbol.
    pub(crate) fn raw_group(&mut self) -> PResult<String> {
        self.skip_layout();
        let first = self.toks.get(self.pos).ok_or(ParseError)?;
        if first.tok != Tok::Ch('{') {
            let text = self.src[first.start..first.end].to_string();
            self.pos += 1;
            return Ok(text);
        }
        let start = first.end;
        let mut depth = 0usize;
        while let Some(t) = self.toks.get(self.pos) {
            match t.tok {
                Tok::Ch('{') => depth += 1,
                Tok::Ch('}') => {
                    depth -= 1;
                    if depth == 0 {
                        let text = self.src[start..t.start].to_string();
                        self.pos += 1;
                        return Ok(text);
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(ParseError)
    }
}

/// Adds one link to a relation chain: `a < b` then `< c` gives `a < b & b < c`.
fn link(acc: Node, r: Rel, rhs: Node) -> Node {
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

fn tuple_to_set(n: Node) -> Node {
    if let Node::Tuple(items) = n { make_set(items) } else { n }
}

/// An interval that would be empty (`(3, 1)`) is read as the pair it must mean.
fn interval_or_tuple(lo: Node, hi: Node, lo_open: bool, hi_open: bool) -> Node {
    if let (Some(a), Some(b)) = (eval::real_constant(&lo), eval::real_constant(&hi))
        && ((lo_open && hi_open && b <= a) || (!lo_open && !hi_open && b < a))
    {
        return Node::Tuple(vec![lo, hi]);
    }
    Node::Interval { lo: Box::new(lo), hi: Box::new(hi), lo_open, hi_open }
}
