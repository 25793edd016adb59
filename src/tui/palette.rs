//! The command palette (`:`): every action found by its name or what it does, fuzzily, and
//! `#123` (or `123`) to jump to a sample by id.

use fuzzy_matcher::FuzzyMatcher;
use fuzzy_matcher::skim::SkimMatcherV2;

use super::action::Action;
use super::app::App;

/// What Enter on a palette line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Carry out this action.
    Run(Action),
    /// Jump the list to this sample.
    Jump(i64),
}

/// Every action the palette offers, in the help's order.
const ACTIONS: &[Action] = &[
    Action::Accept,
    Action::Reject,
    Action::Reset,
    Action::LabelHard,
    Action::LabelSoft,
    Action::LabelPseudo,
    Action::ToggleMark,
    Action::AcceptMarked,
    Action::RejectMarked,
    Action::Undo,
    Action::Redo,
    Action::GroupView,
    Action::Pick,
    Action::Diff,
    Action::LinkScroll,
    Action::FocusDetail,
    Action::SearchTrace,
    Action::ToggleReasoning,
    Action::ToggleTokens,
    Action::NextUnsure,
    Action::Search,
    Action::FullText,
    Action::Filter,
    Action::ClearFilter,
    Action::Sort,
    Action::Note,
    Action::Yank,
    Action::Pager,
    Action::EditAnswer,
    Action::EditReference,
    Action::ToggleMouse,
    Action::SelectFirst,
    Action::SelectLast,
    Action::NextTab,
    Action::PreviousTab,
    Action::Help,
    Action::Quit,
];

/// The name an action has in the palette and the keymap file (`accept_marked` → `accept marked`).
#[must_use]
pub fn name(action: Action) -> String {
    let debug = format!("{action:?}");
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The palette's lines for `query`, best first: a sample id first when the query is one.
#[must_use]
pub fn choices(query: &str) -> Vec<Choice> {
    let query = query.trim();
    let mut out = Vec::new();
    if let Ok(id) = query.trim_start_matches('#').parse::<i64>() {
        out.push(Choice::Jump(id));
        return out;
    }
    let matcher = SkimMatcherV2::default().ignore_case();
    let mut scored: Vec<(i64, usize, Action)> = ACTIONS
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            if query.is_empty() {
                return Some((0, i, *a));
            }
            let text = format!("{} {}", name(*a), a.describe());
            matcher.fuzzy_match(&text, query).map(|score| (score, i, *a))
        })
        .collect();
    scored.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    out.extend(scored.into_iter().map(|(_, _, a)| Choice::Run(a)));
    out
}

/// How a palette line reads: the name, its keys, what it does.
#[must_use]
pub fn label(app: &App, choice: &Choice) -> (String, String, String) {
    match choice {
        Choice::Jump(id) => (format!("go to #{id}"), "enter".into(), "the sample with this id".into()),
        Choice::Run(a) => {
            let context = match a {
                Action::Pick | Action::Diff | Action::LinkScroll => super::keymap::Context::Group,
                Action::SearchTrace | Action::NextUnsure => super::keymap::Context::Detail,
                _ => super::keymap::Context::Global,
            };
            (name(*a), app.keymap.keys_in(*a, context), a.describe().to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_found_by_name_or_by_what_they_do() {
        assert_eq!(choices("acc").first(), Some(&Choice::Run(Action::Accept)));
        assert_eq!(choices("clipboard").first(), Some(&Choice::Run(Action::Yank)));
        assert_eq!(choices("#42"), vec![Choice::Jump(42)]);
        assert_eq!(choices("42"), vec![Choice::Jump(42)]);
        assert_eq!(choices("").len(), ACTIONS.len());
        assert!(choices("zzzzqqq").is_empty());
        assert_eq!(name(Action::AcceptMarked), "accept marked");
    }
}
