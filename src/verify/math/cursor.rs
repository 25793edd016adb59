//! The parser's cursor over the token stream: lookahead, consumption and raw source slices.

use super::latex::{PResult, ParseError};
use super::lexer::{Tok, Token, tokenize};

pub(crate) struct Parser<'a> {
    pub(crate) src: &'a str,
    pub(crate) toks: Vec<Token>,
    pub(crate) pos: usize,
    pub(crate) abs_depth: usize,
    pub(crate) matrix_depth: usize,
    /// Nesting of elements and unary signs, bounded so hostile input cannot exhaust the stack.
    pub(crate) depth: usize,
}

pub(crate) const MAX_DEPTH: usize = 40;

/// Longest chain of operators that nest (`a/b/c`, `x^2^3`, `A \cap B \cap C`, `\pm`), for the
/// same reason: every later pass over the tree recurses through it.
pub(crate) const MAX_CHAIN: usize = 48;

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        let mut toks = tokenize(src);
        // A sentence-ending full stop is not part of the answer.
        while toks.last().is_some_and(|t| t.tok == Tok::Ch('.')) {
            toks.pop();
        }
        Parser { src, toks, pos: 0, abs_depth: 0, matrix_depth: 0, depth: 0 }
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
