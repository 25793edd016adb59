//! JSON for a terminal: serde_json escapes the C0 control characters, and this escapes the rest
//! a terminal might act on — C1 controls (U+0080–U+009F, 8-bit CSI among them) and the bidi
//! overrides — as `\uXXXX`, so `retort list --json` of stored text is safe on a screen and the
//! same JSON to a program.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

fn unsafe_char(c: char) -> bool {
    ('\u{80}'..='\u{9f}').contains(&c) || ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn write_fragment<W: ?Sized + io::Write>(w: &mut W, fragment: &str) -> io::Result<()> {
    let mut start = 0;
    for (i, c) in fragment.char_indices() {
        if unsafe_char(c) {
            w.write_all(&fragment.as_bytes()[start..i])?;
            write!(w, "\\u{:04x}", c as u32)?;
            start = i + c.len_utf8();
        }
    }
    w.write_all(&fragment.as_bytes()[start..])
}

/// A formatter writing as `F` does, strings escaped for a terminal.
struct Safe<F>(F);

impl<F: Formatter> Formatter for Safe<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        write_fragment(w, fragment)
    }
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

fn to<T: Serialize + ?Sized, F: Formatter>(value: &T, formatter: F) -> serde_json::Result<String> {
    let mut out = Vec::new();
    value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, Safe(formatter)))?;
    // Only whole strings were written: it is UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// One line of JSON.
pub fn line<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    to(value, CompactFormatter)
}

/// Indented JSON, as `serde_json::to_string_pretty` writes it.
pub fn pretty<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    to(value, PrettyFormatter::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c1_and_bidi_are_escaped_and_the_json_reads_back_the_same() {
        let v = serde_json::json!({"t": "a\u{1b}[31m b\u{9b}2J c\u{202e}d é 中"});
        let text = line(&v).unwrap();
        assert_eq!(text, r#"{"t":"a\u001b[31m b\u009b2J c\u202ed é 中"}"#);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
        assert_eq!(pretty(&v).unwrap(), "{\n  \"t\": \"a\\u001b[31m b\\u009b2J c\\u202ed é 中\"\n}");
    }
}
