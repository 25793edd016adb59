//! Names a rule or filter uses that only the store can vouch for: the verifiers behind `score.X`
//! and `pass.X`. A misspelt verifier is not a syntax error, but it would silently select
//! nothing (`score.mth > 1` matches no sample), so every face checks it against the store.

use super::parser::{ParseError, verifier_refs};

/// Checks that every `score.X` / `pass.X` in `src` (a rule or a filter that parses) names one of
/// the `known` verifiers, the ones the store holds scores of. The error is at the column of the
/// first unknown field, names the verifiers the store has, and suggests the nearest one.
///
/// With no verifier known (nothing verified or imported with scores yet) any `score.X` is an
/// error too: a rule written ahead of `retort verify` would select nothing, and say nothing.
pub fn check_names(src: &str, known: &[String]) -> Result<(), ParseError> {
    let Some(r) = verifier_refs(src).into_iter().find(|r| !known.contains(&r.verifier)) else { return Ok(()) };
    let field = format!("{}.{}", r.field, r.verifier);
    let message = if known.is_empty() {
        format!(
            "`{field}`: no verifier has scored this store yet, so it would select nothing; \
             run `retort verify --verifier NAME` (or import scores) first"
        )
    } else {
        let mut sorted: Vec<&str> = known.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let hint = suggest(&r.verifier, known).map_or_else(String::new, |s| format!("; did you mean `{}.{s}`?", r.field));
        format!("unknown verifier `{}` in `{field}`: this store has scores of {}{hint}", r.verifier, sorted.join(", "))
    };
    Err(ParseError { column: r.column, message })
}

/// The name of `known` nearest to `name`, if one is near enough to be a slip: a different case,
/// or at most a third of its characters (at least one) off by edit distance.
#[must_use]
pub fn suggest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        return Some(k);
    }
    let limit = (name.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (edit_distance(&name.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, k)| k.as_str())
}

/// Edit distance over characters, a swap of two neighbours counting as one edit (optimal string
/// alignment): `dorp` is one slip from `drop`.
#[must_use]
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: two back (for swaps), the last, and this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn an_unknown_verifier_is_an_error_at_its_column_with_a_suggestion() {
        let e = check_names("score.mth > 1", &known(&["math", "format"])).unwrap_err();
        assert_eq!(e.column, 1);
        assert!(e.message.contains("unknown verifier `mth` in `score.mth`"), "{}", e.message);
        assert!(e.message.contains("this store has scores of format, math"), "{}", e.message);
        assert!(e.message.ends_with("did you mean `score.math`?"), "{}", e.message);

        let e = check_names("keep best 1 per prompt by score.math, pass.nosuch", &known(&["math"])).unwrap_err();
        assert_eq!(e.column, 39);
        assert!(e.message.contains("`pass.nosuch`") && !e.message.contains("did you mean"), "{}", e.message);
    }

    #[test]
    fn known_names_and_look_alikes_in_strings_pass() {
        let k = known(&["math", "imported"]);
        assert_eq!(check_names("accept where score.math >= 1 and pass.imported", &k), Ok(()));
        assert_eq!(check_names(r#"score: reject where prompt contains "score.nosuch""#, &k), Ok(()));
        assert_eq!(check_names("reject duplicates", &[]), Ok(()));
    }

    #[test]
    fn with_no_verifier_yet_a_score_says_to_verify_first() {
        let e = check_names("accept where tokens < 10 and score.math >= 1", &[]).unwrap_err();
        assert_eq!(e.column, 30);
        assert!(e.message.contains("no verifier has scored this store yet") && e.message.contains("retort verify"), "{}", e.message);
    }

    #[test]
    fn suggestions_are_near_or_none() {
        let k = known(&["math", "format", "repetition", "language"]);
        assert_eq!(suggest("Math", &k), Some("math"));
        assert_eq!(suggest("fromat", &k), Some("format"));
        assert_eq!(suggest("repetiton", &k), Some("repetition"));
        assert_eq!(suggest("nosuch", &k), None);
        assert_eq!(suggest("dorp", &known(&["drop", "keep"])), Some("drop"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("dorp", "drop"), 1);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
