//! Recursive-descent parser from normalized LaTeX to [`Node`]. It follows the reading of
//! math-verify's grammar (latex2sympy2_extended) where the two differ from plain TeX, because the
//! verdicts must agree with that checker: `(1, 2)` is an open interval but `(2, 1)` a tuple,
//! `1, 2, 3` is a set, `n = 1, 2` assigns a set, implicit products bind tighter than `/`.

use super::build::{
    convert_top, distribute_pm, elements_to_set_or_tuple, interval_or_tuple, link, mul_of, neg, thousands_number, tuple_to_set,
};
use super::cursor::{MAX_CHAIN, MAX_DEPTH, Parser};
use super::lexer::{Tok, Token};
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

enum RelOp {
    Rel(Rel),
    Approx,
    In,
}

impl Parser<'_> {
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
        if self.depth >= MAX_DEPTH {
            return Err(ParseError);
        }
        self.depth += 1;
        let result = self.parse_relation_chain();
        self.depth -= 1;
        result
    }

    fn parse_relation_chain(&mut self) -> PResult<Node> {
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
        for _ in 0..MAX_CHAIN {
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
        Err(ParseError)
    }

    pub(crate) fn parse_additive(&mut self) -> PResult<Node> {
        let mut terms = vec![self.parse_term()?];
        let mut plus_minus = 0;
        loop {
            if self.eat_ch('+') {
                terms.push(self.parse_term()?);
            } else if self.eat_ch('-') {
                let t = self.parse_term()?;
                terms.push(neg(t));
            } else if self.is_cmd("pm") || self.is_cmd("mp") {
                plus_minus += 1;
                if plus_minus > 6 {
                    return Err(ParseError);
                }
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
        for _ in 0..MAX_CHAIN {
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
        Err(ParseError)
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
                && let Some(mixed) = whole.checked_mul(*d).and_then(|w| w.checked_add(*n)).and_then(|w| Num::ratio(w, *d))
            {
                factors[0] = Node::Num(mixed);
                continue;
            }
            factors.push(next);
        }
        Ok(mul_of(factors))
    }

    pub(crate) fn parse_unary(&mut self) -> PResult<Node> {
        if self.is_ch('-') || self.is_ch('+') {
            if self.depth >= MAX_DEPTH {
                return Err(ParseError);
            }
            let minus = self.eat_ch('-');
            if !minus {
                self.bump();
            }
            self.depth += 1;
            let operand = self.parse_unary();
            self.depth -= 1;
            return Ok(if minus { neg(operand?) } else { operand? });
        }
        if self.eat_cmd("pm") {
            let operand = self.parse_unary()?;
            return Ok(Node::PlusMinus(Box::new(Node::Empty), Box::new(operand)));
        }
        self.parse_power()
    }

    pub(crate) fn parse_power(&mut self) -> PResult<Node> {
        let mut base = self.parse_atom()?;
        for _ in 0..MAX_CHAIN {
            if !self.is_ch('^')
                && !self.is_ch('_')
                && !self.is_ch('!')
                && !self.is_ch('%')
                && !self.is_ch('\'')
                && !self.is_cmd("%")
                && !self.is_cmd("circ")
                && !self.is_cmd("degree")
            {
                return Ok(base);
            }
            if self.eat_ch('^') {
                if let Some(marks) = self.eat_decoration() {
                    // `y^{\prime}` is the derivative y', a name of its own; `90^\circ` is just 90.
                    if let Node::Sym(name) = &mut base {
                        name.push_str(&"'".repeat(marks));
                    }
                    continue;
                }
                let exp = self.parse_script_arg()?;
                // An ordinal suffix (`12^{\text{th}}`) is not an exponent.
                if !matches!(&exp, Node::Sym(s) if matches!(s.as_str(), "th" | "st" | "nd" | "rd")) {
                    base = Node::Pow(Box::new(base), Box::new(exp));
                }
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
        Err(ParseError)
    }

    pub(crate) fn parse_atom(&mut self) -> PResult<Node> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError);
        }
        self.depth += 1;
        let atom = self.parse_atom_inner();
        self.depth -= 1;
        atom
    }

    /// A superscript that decorates rather than raises to a power: `\circ`, `\prime`, `{\prime\prime}`,
    /// an empty `{}` (left by `12^{\mathrm{th}}` after normalization). Returns the number of primes.
    fn eat_decoration(&mut self) -> Option<usize> {
        let decoration = |t: &Option<Tok>| matches!(t, Some(Tok::Cmd(c)) if c == "circ" || c == "prime");
        let primes = |p: &mut Self, from: usize, to: usize| (from..to).filter(|&k| p.peek_at(k) == Some(Tok::Cmd("prime".into()))).count();
        if decoration(&self.peek()) {
            let marks = primes(self, 0, 1);
            self.bump();
            return Some(marks);
        }
        if !self.is_ch('{') {
            return None;
        }
        let mut k = 1;
        while decoration(&self.peek_at(k)) {
            k += 1;
        }
        if self.peek_at(k) != Some(Tok::Ch('}')) {
            return None;
        }
        let marks = primes(self, 1, k);
        for _ in 0..=k {
            self.bump();
        }
        Some(marks)
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
}
