//! Atoms of the LaTeX grammar: numbers, symbols, commands (`\frac`, `\sqrt`, functions, `\text`,
//! matrices, sums) and bracketed groups.

use super::build::{elements_to_set_or_tuple, make_set, number_from_text};
use super::cursor::Parser;
use super::latex::{PResult, ParseError};
use super::lexer::{Tok, is_greek};
use super::node::{Const, Func, Node, Num, Rel};

/// Whether a command can begin a factor of an implicit product (`2\sqrt{3}`, `\frac94\pi`).
pub(crate) fn command_starts_atom(name: &str) -> bool {
    matches!(
        name,
        "frac"
            | "dfrac"
            | "tfrac"
            | "cfrac"
            | "sqrt"
            | "binom"
            | "dbinom"
            | "tbinom"
            | "pi"
            | "infty"
            | "emptyset"
            | "varnothing"
            | "mathbb"
            | "text"
            | "mbox"
            | "begin"
            | "sum"
            | "prod"
            | "lfloor"
            | "lceil"
            | "langle"
            | "operatorname"
            | "{"
            | "lbrace"
            | "|"
            | "lvert"
            | "overline"
            | "bar"
            | "vec"
            | "hat"
            | "widehat"
            | "tilde"
            | "widetilde"
            | "overrightarrow"
            | "dot"
            | "angle"
            | "triangle"
    ) || function_of(name).is_some()
        || is_greek(name)
}

fn function_of(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "sec" => Func::Sec,
        "csc" => Func::Csc,
        "cot" => Func::Cot,
        "arcsin" => Func::Asin,
        "arccos" => Func::Acos,
        "arctan" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "ln" => Func::Ln,
        "log" | "lg" => Func::Log,
        "exp" => Func::Exp,
        "gcd" => Func::Gcd,
        "lcm" => Func::Lcm,
        _ => return None,
    })
}

fn inverse(f: Func) -> Option<Func> {
    match f {
        Func::Sin => Some(Func::Asin),
        Func::Cos => Some(Func::Acos),
        Func::Tan => Some(Func::Atan),
        _ => None,
    }
}

/// The spelling of a `\text{}` or subscript as part of a symbol name: no spaces, lower case
/// (the reference lower-cases every symbol, so `X` and `x` are one variable).
fn symbol_text(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase()
}

impl Parser<'_> {
    pub(crate) fn parse_atom_inner(&mut self) -> PResult<Node> {
        match self.peek().ok_or(ParseError)? {
            Tok::Num(text) => {
                self.bump();
                number_from_text(&text).map(Node::Num).ok_or(ParseError)
            }
            Tok::Letter(c) => {
                self.bump();
                if c == 'e' && !self.is_ch('_') {
                    return Ok(Node::Const(Const::E));
                }
                let name = self.with_subscript(c.to_lowercase().collect())?;
                Ok(self.maybe_apply(name))
            }
            Tok::Ch('(' | '[') => self.parse_bracketed(),
            Tok::Ch('{') => {
                self.bump();
                let groups = self.parse_list(|t| *t == Tok::Ch('}'))?;
                self.expect_ch('}')?;
                elements_to_set_or_tuple(groups).ok_or(ParseError)
            }
            Tok::Ch('|') => {
                self.bump();
                self.abs_depth += 1;
                let inner = self.parse_additive();
                self.abs_depth -= 1;
                let inner = inner?;
                self.expect_ch('|')?;
                Ok(Node::Func(Func::Abs, vec![inner]))
            }
            Tok::Cmd(name) => {
                self.bump();
                self.parse_command(&name)
            }
            Tok::Ch(_) => Err(ParseError),
        }
    }

    /// Appends `_x` / `_{n-k-1}` to a symbol name; the reference names `x_{1}` and `x_1` alike.
    fn with_subscript(&mut self, mut name: String) -> PResult<String> {
        if self.eat_ch('_') {
            let sub = symbol_text(&self.raw_group()?);
            if sub.chars().count() > 1 {
                name = format!("{name}_{{{sub}}}");
            } else {
                name = format!("{name}_{sub}");
            }
        }
        Ok(name)
    }

    /// `f(x)`, `W(n)`, `f(2)` apply an unknown function; `k(k+1)` is a product.
    fn maybe_apply(&mut self, name: String) -> Node {
        if self.is_ch('(') {
            let save = self.pos;
            self.bump();
            if let Ok(groups) = self.parse_list(|t| *t == Tok::Ch(')'))
                && self.eat_ch(')')
            {
                let args: Vec<Node> = groups.into_iter().flatten().collect();
                let simple = |a: &Node| match a {
                    Node::Sym(_) | Node::Num(_) | Node::Const(_) | Node::Apply(..) => true,
                    Node::Neg(inner) => matches!(**inner, Node::Sym(_)),
                    _ => false,
                };
                if !args.is_empty() && args.iter().all(simple) {
                    return Node::Apply(name, args);
                }
            }
            self.pos = save;
        }
        Node::Sym(name)
    }

    fn parse_command(&mut self, name: &str) -> PResult<Node> {
        match name {
            "frac" | "dfrac" | "tfrac" | "cfrac" => {
                let num = self.parse_tex_arg()?;
                let den = self.parse_tex_arg()?;
                if let (Node::Num(Num::Int(n)), Node::Num(Num::Int(d))) = (&num, &den)
                    && let Some(r) = Num::ratio(*n, *d)
                {
                    return Ok(Node::Num(r));
                }
                Ok(Node::Div(Box::new(num), Box::new(den)))
            }
            "sqrt" => {
                let index = if self.eat_ch('[') {
                    let i = self.parse_additive()?;
                    self.expect_ch(']')?;
                    Some(i)
                } else {
                    None
                };
                let radicand = self.parse_tex_arg()?;
                Ok(match index {
                    Some(i) => Node::Func(Func::Root, vec![radicand, i]),
                    None => Node::Func(Func::Sqrt, vec![radicand]),
                })
            }
            "binom" | "dbinom" | "tbinom" => {
                let n = self.parse_tex_arg()?;
                let k = self.parse_tex_arg()?;
                Ok(Node::Func(Func::Binom, vec![n, k]))
            }
            "text" | "mbox" => {
                // `\text{(C)}` is the choice C; brackets and spaces are presentation. An upright
                // lower-case `\mathrm{e}` is Euler's number (an upper-case `\text{E}` is a choice).
                let raw = self.raw_group()?;
                if raw.trim() == "e" {
                    return Ok(Node::Const(Const::E));
                }
                let text: String = symbol_text(&raw).chars().filter(|c| *c != '(' && *c != ')').collect();
                if text.is_empty() {
                    return Err(ParseError);
                }
                if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') && text.bytes().any(|b| b.is_ascii_digit()) {
                    return number_from_text(&text).map(Node::Num).ok_or(ParseError);
                }
                let name = self.with_subscript(text)?;
                Ok(Node::Sym(name))
            }
            "overline" | "bar" | "vec" | "hat" | "widehat" | "tilde" | "widetilde" | "overrightarrow" | "dot" => {
                let accent = match name {
                    "overline" => "bar",
                    "overrightarrow" => "vec",
                    "widehat" => "hat",
                    "widetilde" => "tilde",
                    other => other,
                };
                let raw = self.raw_group()?;
                let name = self.with_subscript(format!("{accent}{{{}}}", symbol_text(&raw)))?;
                Ok(Node::Sym(name))
            }
            "mathbb" => {
                let raw = self.raw_group()?;
                Ok(if raw.trim() == "R" { Node::Reals } else { Node::Sym(symbol_text(&raw)) })
            }
            "pi" => Ok(Node::Const(Const::Pi)),
            "infty" => Ok(Node::Const(Const::Infinity)),
            "emptyset" | "varnothing" => Ok(Node::Empty),
            "angle" | "triangle" => {
                let target = self.parse_power()?;
                Ok(Node::Sym(format!("{name}{target}")))
            }
            "{" | "lbrace" => {
                let groups = self.parse_list(|t| matches!(t, Tok::Cmd(c) if c == "}" || c == "rbrace"))?;
                if !(self.eat_cmd("}") || self.eat_cmd("rbrace")) {
                    return Err(ParseError);
                }
                Ok(make_set(groups.into_iter().flatten().collect()))
            }
            "langle" => {
                let groups = self.parse_list(|t| matches!(t, Tok::Cmd(c) if c == "rangle"))?;
                if !self.eat_cmd("rangle") {
                    return Err(ParseError);
                }
                Ok(Node::Tuple(groups.into_iter().flatten().collect()))
            }
            "lfloor" | "lceil" => {
                let inner = self.parse_additive()?;
                let (close, f) = if name == "lfloor" { ("rfloor", Func::Floor) } else { ("rceil", Func::Ceil) };
                if !self.eat_cmd(close) {
                    return Err(ParseError);
                }
                Ok(Node::Func(f, vec![inner]))
            }
            "|" | "lvert" | "vert" => {
                let inner = self.parse_additive()?;
                if !(self.eat_cmd("|") || self.eat_cmd("rvert") || self.eat_cmd("vert")) {
                    return Err(ParseError);
                }
                Ok(Node::Func(Func::Abs, vec![inner]))
            }
            "operatorname" => {
                let raw = self.raw_group()?;
                let fname = raw.trim().to_string();
                match function_of(&fname) {
                    Some(f) => self.parse_function(f, &fname),
                    None => Ok(self.maybe_apply(symbol_text(&fname))),
                }
            }
            "begin" => self.parse_matrix(),
            "sum" | "prod" => self.parse_big(name == "prod"),
            _ if is_greek(name) => {
                let sym = self.with_subscript(name.to_lowercase())?;
                Ok(self.maybe_apply(sym))
            }
            _ => match function_of(name) {
                Some(f) => self.parse_function(f, name),
                None => Err(ParseError),
            },
        }
    }

    /// A macro argument as TeX reads it: a braced group or one token, where a digit run gives
    /// only its first digit (`\frac13` is 1/3, `\sqrt 25` is 5 times the root of 2).
    fn parse_tex_arg(&mut self) -> PResult<Node> {
        if let Some(Tok::Num(text)) = self.peek()
            && text.len() > 1
            && !text.starts_with('.')
        {
            let token = &mut self.toks[self.pos];
            token.tok = Tok::Num(text[1..].to_string());
            token.start += 1;
            return number_from_text(&text[..1]).map(Node::Num).ok_or(ParseError);
        }
        self.parse_script_arg()
    }

    /// `\sin x`, `\sin^2(y)`, `\log_2 8`, `\tan^{-1} 1`. Without brackets the argument runs over
    /// the following implicit product but stops at the next function (`\sin b \cos a`).
    fn parse_function(&mut self, f: Func, name: &str) -> PResult<Node> {
        let mut power = None;
        let mut base = None;
        loop {
            if self.eat_ch('^') {
                power = Some(self.parse_script_arg()?);
            } else if self.eat_ch('_') {
                base = Some(self.parse_script_arg()?);
            } else {
                break;
            }
        }
        let arg = if self.is_ch('(') {
            self.parse_bracketed()?
        } else {
            let mut factors = vec![self.parse_power()?];
            while self.starts_atom() && !matches!(self.peek(), Some(Tok::Cmd(c)) if function_of(&c).is_some()) {
                factors.push(self.parse_power()?);
            }
            if factors.len() == 1 { factors.remove(0) } else { Node::Mul(factors) }
        };
        let args = match (f, arg) {
            (Func::Gcd | Func::Lcm, Node::Tuple(items)) => items,
            (Func::Gcd | Func::Lcm, Node::Interval { lo, hi, .. }) => vec![*lo, *hi],
            (Func::Log, a) => vec![a, base.unwrap_or_else(|| if name == "ln" { Node::Const(Const::E) } else { Node::int(10) })],
            (_, a) => vec![a],
        };
        let f = if name == "ln" { Func::Ln } else { f };
        let args = if f == Func::Ln { args.into_iter().take(1).collect() } else { args };
        match power {
            Some(p) if p == Node::int(-1) && inverse(f).is_some() => Ok(Node::Func(inverse(f).unwrap_or(f), args)),
            Some(p) => Ok(Node::Pow(Box::new(Node::Func(f, args)), Box::new(p))),
            None => Ok(Node::Func(f, args)),
        }
    }

    /// `\begin{pmatrix} a & b \\ c & d \end{pmatrix}` (also bmatrix, array, ...).
    fn parse_matrix(&mut self) -> PResult<Node> {
        let env = self.raw_group()?.trim().to_string();
        if env == "array" {
            self.raw_group()?;
        } else if !env.ends_with("matrix") {
            return Err(ParseError);
        }
        self.matrix_depth += 1;
        let rows = self.matrix_rows();
        self.matrix_depth -= 1;
        let rows: Vec<Vec<Node>> = rows?.into_iter().filter(|r| !r.is_empty()).collect();
        let width = rows.first().map_or(0, Vec::len);
        if width == 0 || rows.iter().any(|r| r.len() != width) {
            return Err(ParseError);
        }
        Ok(Node::Matrix(rows))
    }

    fn matrix_rows(&mut self) -> PResult<Vec<Vec<Node>>> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        loop {
            let at_boundary = matches!(self.peek(), Some(Tok::Ch('&'))) || self.is_cmd("\\") || self.is_cmd("end");
            if !at_boundary {
                row.push(self.parse_element()?);
            }
            if self.eat_ch('&') {
                continue;
            }
            if self.eat_cmd("\\") {
                rows.push(std::mem::take(&mut row));
                continue;
            }
            if self.eat_cmd("end") {
                self.raw_group()?;
                rows.push(row);
                return Ok(rows);
            }
            return Err(ParseError);
        }
    }

    /// `\sum_{k=0}^{n-1} body` and `\prod`; the body is the implicit product that follows.
    fn parse_big(&mut self, product: bool) -> PResult<Node> {
        if !self.eat_ch('_') {
            return Err(ParseError);
        }
        let Node::Rel(Rel::Eq, var, lo) = self.parse_script_arg()? else { return Err(ParseError) };
        let Node::Sym(var) = *var else { return Err(ParseError) };
        if !self.eat_ch('^') {
            return Err(ParseError);
        }
        let hi = self.parse_script_arg()?;
        let body = self.parse_implicit()?;
        Ok(Node::Big { product, var, lo, hi: Box::new(hi), body: Box::new(body) })
    }
}
