//! Splits normalized LaTeX into tokens. Spacing and sizing commands (`\,`, `\quad`, `\left`,
//! `\bigl`) carry no meaning for the answer and are dropped here so the parser never sees them.

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Digits with an optional fractional part: `12`, `1.5`, `.5`.
    Num(String),
    Letter(char),
    /// A control sequence without its backslash: `frac`, `{`, `%`, `\` (for `\\`).
    Cmd(String),
    Ch(char),
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    /// Byte span in the source, used to recover the raw text of subscripts and `\text{}`.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Commands the parser understands; an unknown name such as `\quadx` is split at the longest
/// known prefix (`\quad` `x`), which is how the reference LaTeX grammar tokenizes it.
const KNOWN: &str = "frac dfrac tfrac cfrac sqrt binom dbinom tbinom sin cos tan sec csc cot arcsin arccos arctan sinh cosh tanh \
    ln log lg exp pi infty emptyset varnothing mathbb text mbox cdot times div pm mp cup cap setminus in notin le \
    leq leqslant ge geq geqslant lt gt ne neq approx begin end sum prod lfloor rfloor lceil rceil langle rangle \
    operatorname circ degree overline bar vec hat widehat tilde widetilde overrightarrow dot ast cdots ldots dots \
    mid vert lvert rvert quad qquad left right to subset subseteq equiv sim cong parallel perp angle triangle \
    prime lbrace rbrace gcd lcm max min det mod pmod bmod choose dagger";

const GREEK: &str = "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi rho sigma tau \
    upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega";

const SPACING: &str = "quad qquad displaystyle textstyle scriptstyle left right middle big Big bigg Bigg bigl bigr Bigl Bigr biggl \
    biggr Biggl Biggr mleft mright limits nolimits hfill hline notag nonumber enspace thinspace medspace \
    thickspace negthinspace relax strut phantom cr";

pub(crate) fn is_greek(name: &str) -> bool {
    listed(GREEK, name)
}

fn listed(list: &str, name: &str) -> bool {
    list.split_whitespace().any(|k| k == name)
}

/// Spacing commands: the punctuation ones (`\,` `\;` `\:` `\!` `\ ` `\>`) and the named ones.
fn is_spacing(name: &str) -> bool {
    matches!(name, "," | ";" | ":" | "!" | " " | ">") || listed(SPACING, name)
}

pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(src.len(), |c| c.0);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_whitespace() || c == '~' {
            i += 1;
            continue;
        }
        if c == '\\' {
            let Some(&(_, next)) = chars.get(i + 1) else {
                break;
            };
            if next.is_ascii_alphabetic() {
                let mut j = i + 1;
                while j < chars.len() && chars[j].1.is_ascii_alphabetic() {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().map(|c| c.1).collect();
                let (name, used) = split_known(&name);
                let end = i + 1 + used;
                if is_spacing(&name) {
                    // `\left.` and `\right.` mark an invisible delimiter.
                    let dot = matches!(name.as_str(), "left" | "right" | "middle") && chars.get(end).is_some_and(|c| c.1 == '.');
                    i = end + usize::from(dot);
                    continue;
                }
                out.push(Token { tok: Tok::Cmd(name), start, end: byte_at(end) });
                i = end;
            } else {
                i += 2;
                if is_spacing(&next.to_string()) {
                    continue;
                }
                // `\left(` loses its `left` to normalization and leaves `\(`: still a bracket.
                let tok = match next {
                    '(' | ')' | '[' | ']' => Tok::Ch(next),
                    _ => Tok::Cmd(next.to_string()),
                };
                out.push(Token { tok, start, end: byte_at(i) });
            }
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|n| n.1.is_ascii_digit())) {
            let mut j = i;
            while j < chars.len() && chars[j].1.is_ascii_digit() {
                j += 1;
            }
            if j + 1 < chars.len() && chars[j].1 == '.' && chars[j + 1].1.is_ascii_digit() {
                j += 1;
                while j < chars.len() && chars[j].1.is_ascii_digit() {
                    j += 1;
                }
            }
            let text: String = chars[i..j].iter().map(|c| c.1).collect();
            out.push(Token { tok: Tok::Num(text), start, end: byte_at(j) });
            i = j;
            continue;
        }
        i += 1;
        let end = byte_at(i);
        let tok = match c {
            'π' => Tok::Cmd("pi".into()),
            '∞' => Tok::Cmd("infty".into()),
            '×' => Tok::Cmd("times".into()),
            '÷' => Tok::Cmd("div".into()),
            '·' | '⋅' => Tok::Cmd("cdot".into()),
            '√' => Tok::Cmd("sqrt".into()),
            '±' => Tok::Cmd("pm".into()),
            '≤' => Tok::Cmd("le".into()),
            '≥' => Tok::Cmd("ge".into()),
            '≠' => Tok::Cmd("ne".into()),
            '−' | '–' => Tok::Ch('-'),
            '°' => Tok::Cmd("circ".into()),
            c if c.is_alphabetic() => Tok::Letter(c),
            c => Tok::Ch(c),
        };
        out.push(Token { tok, start, end });
    }
    out
}

/// Returns the command name to use and how many letters of `name` it consumed.
fn split_known(name: &str) -> (String, usize) {
    if listed(KNOWN, name) || listed(GREEK, name) || is_spacing(name) || name.len() <= 1 {
        return (name.to_string(), name.len());
    }
    let best = KNOWN
        .split_whitespace()
        .chain(GREEK.split_whitespace())
        .chain(SPACING.split_whitespace())
        .filter(|k| k.len() >= 3 && name.starts_with(k))
        .max_by_key(|k| k.len());
    match best {
        Some(k) => (k.to_string(), k.len()),
        None => (name.to_string(), name.len()),
    }
}
