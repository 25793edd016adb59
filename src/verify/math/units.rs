//! Unit words and trailing `\text{...}` units removed from the end of an answer (`125 miles`,
//! `15\mbox{ cm}^2`), with math-verify's own unit list so the same answers lose the same words.

/// math-verify's unit list, `|`-separated (entries may contain spaces). The first entry is two
/// words run together in the original ("integer" "point"), kept as is.
const UNITS: &str = "integerpoint|feet|sue|digit|pound|meal|edge|student|children ticket|multiple|east|degree|mph|kmph|ft|m square| m east|\
    sq m|deg|mile|q .|monkey|prime|ratio|profit of rs|rd|o|gm|p . m|lb|tile|per|dm|lt|gain|ab|way|west|a .|b .|c .|d .|e .|\
    f .|g .|h .|t|h|no change|men|soldier|pie|bc|excess|st|inches|noon|cent|by|gal|kmh|c|acre|rise|a . m|th|π r 2|sq|mark|l|\
    toy|coin|sq . m|gallon|° f|profit|minw|yr|women|am|pm|hr|cu cm|square|v â € ™|are|rupee|rounds|cubic|cc|mtr|s|ohm|\
    number|kmph|day|hour|minute|min|second|man|woman|sec|cube|mt|sq inch|mp|∏ cm ³|hectare|more|sec|unit|cu . m|cm 2|rs .|\
    rs|kg|g|month|km|m|cm|mm|apple|liter|loss|yard|pure|year|increase|decrease|d|less|Surface|litre|pi sq m|s .|metre|meter|\
    inch";

/// Removes a trailing `\text{...}` unit (`15\mbox{ cm}^2`) and trailing unit words (`125 miles`).
pub(crate) fn strip_units(text: &str) -> String {
    let mut s = text.to_string();
    // The reference trims here whenever that changes anything, unit or not.
    let shortened = trailing_text_unit(&s).map_or(s.as_str(), |cut| &s[..cut]).trim().to_string();
    if !shortened.is_empty() && shortened != s {
        s = shortened;
    }
    for _ in 0..2 {
        if let Some(cut) = trailing_unit_word(&s)
            && cut > 0
        {
            s.truncate(cut);
        }
    }
    s
}

/// Start of the first top-level `\text{`/`\mbox{` when the text ends in a closing brace
/// (optionally followed by `^2`). Unlike the reference, a `\text{}` nested in a group is never a
/// trailing unit: math-verify cuts `1 - \frac{1}{\mathrm{e}}` down to `1 - \frac{1}{` and then
/// reads `1`, which makes `1 - 1/e` equal to `1 + 1/e`.
fn trailing_text_unit(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let n = b.len();
    let close = if s.ends_with('}') {
        n - 1
    } else if n >= 3 && b[n - 2] == b'^' && b[n - 1].is_ascii_digit() && b[n - 3] == b'}' {
        n - 3
    } else {
        return None;
    };
    let mut depth = 0i32;
    for (i, &byte) in b.iter().enumerate() {
        if depth == 0 && (b[i..].starts_with(b"\\text{") || b[i..].starts_with(b"\\mbox{")) {
            return (close > i + 5).then_some(i);
        }
        depth += i32::from(byte == b'{') - i32::from(byte == b'}');
    }
    None
}

/// Byte length to keep when the text ends with a unit word preceded by a digit, `}` or space.
fn trailing_unit_word(s: &str) -> Option<usize> {
    let trimmed = s.trim_end();
    let idx: Vec<(usize, char)> = trimmed.char_indices().collect();
    for (k, &(pos, ch)) in idx.iter().enumerate() {
        if !(ch.is_ascii_digit() || ch == '}' || ch.is_whitespace()) {
            continue;
        }
        let after = idx.get(k + 1).map_or(trimmed.len(), |p| p.0);
        let rest = trimmed[after..].trim_start();
        if rest.is_empty() || rest.len() > 24 {
            continue;
        }
        let is_unit = UNITS.split('|').any(|u| rest == u || rest.strip_prefix(u).is_some_and(|tail| tail == "s" || tail == "es"));
        if is_unit {
            return Some(pos + ch.len_utf8());
        }
    }
    None
}
