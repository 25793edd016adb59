//! The verbs of the TUI. Keys map to actions (keymap.rs); `App::update` carries them out.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leave retort (every decision is already in the store).
    Quit,
    /// Show or hide the key help.
    Help,
    /// The next tab (Review → Rules → Export → Train → Stats).
    NextTab,
    /// The previous tab.
    PreviousTab,
    /// Move the cursor down one sample.
    SelectNext,
    /// Move the cursor up one sample.
    SelectPrevious,
    /// Jump to the first sample.
    SelectFirst,
    /// Jump to the last sample.
    SelectLast,
    /// Move down a screenful.
    PageDown,
    /// Move up a screenful.
    PageUp,
    /// Accept the sample under the cursor (written at once) and move on.
    Accept,
    /// Reject the sample under the cursor and move on.
    Reject,
    /// Put the sample back to pending.
    Reset,
    /// Label the sample's supervision as hard (a reference answer).
    LabelHard,
    /// Label it soft (the teacher's distribution).
    LabelSoft,
    /// Label it pseudo (a teacher-generated target).
    LabelPseudo,
    /// Mark or unmark the sample for a batch decision.
    ToggleMark,
    /// Accept every marked sample, as one undoable action.
    AcceptMarked,
    /// Reject every marked sample, as one undoable action.
    RejectMarked,
    /// Undo the last action (a key press, a batch, a rule).
    Undo,
    /// Redo the action undone last.
    Redo,
    /// Fold or unfold the reasoning in the detail view.
    ToggleReasoning,
    /// Show the completion token by token, coloured by the teacher's probability of each.
    ToggleTokens,
    /// Token view: the token cursor to the next token (its alternatives shown).
    NextToken,
    /// Token view: the token cursor to the previous token.
    PreviousToken,
    /// Token view: the next token the teacher gave less than even odds.
    NextUnsure,
    /// Token view: the previous token the teacher gave less than even odds.
    PreviousUnsure,
    /// Scroll the detail view down.
    ScrollDetailDown,
    /// Scroll the detail view up.
    ScrollDetailUp,
    /// Show the prompt's samples side by side (best-of-n), or go back to one sample.
    GroupView,
    /// Fuzzy search over prompts and teacher names; Enter narrows the list to what matched.
    Search,
    /// Full-text search over prompt, reasoning and answer.
    FullText,
    /// Filter the list with a predicate in the rule language.
    Filter,
    /// Show every sample again.
    ClearFilter,
    /// Sort the list by the next column (id, tokens ↑, tokens ↓, status, teacher, label, score).
    Sort,
    /// Write a note on the sample.
    Note,
    /// Rules tab: apply the selected rule (one undoable action).
    ApplyRule,
    /// Rules tab: edit the selected rule.
    EditRule,
    /// Rules tab: write a new rule.
    NewRule,
    /// The command palette: every action by name, and `#id` to jump to a sample.
    Palette,
    /// Close what is open: the help, the group view, the sample pane's focus.
    Back,
    /// Move the focus to the sample pane, where the movement keys scroll it.
    FocusDetail,
    /// Move the focus back to the list.
    FocusList,
    /// Search inside the sample's text (the sample pane).
    SearchTrace,
    /// The next match of the search inside the sample.
    NextMatch,
    /// The previous match of the search inside the sample.
    PreviousMatch,
    /// Group view: the sample to the left.
    GroupPrevious,
    /// Group view: the sample to the right.
    GroupNext,
    /// Group view: accept the sample under the cursor and reject its siblings, as one action.
    Pick,
    /// Group view: compare every answer with the one under the cursor, word by word.
    Diff,
    /// Group view: scroll the samples together, or each alone.
    LinkScroll,
    /// Group view: the next prompt's samples.
    NextPrompt,
    /// Group view: the previous prompt's samples.
    PreviousPrompt,
    /// Copy the answer, reasoning, prompt or whole sample to the clipboard (OSC 52).
    Yank,
    /// Read the whole sample in `$PAGER`.
    Pager,
    /// Edit the answer in `$EDITOR`: the edit becomes the sample's hard label.
    EditAnswer,
    /// Write the reference answer in `$EDITOR`.
    EditReference,
    /// Let the terminal have the mouse (to select text), or take it back.
    ToggleMouse,
}

impl Action {
    /// Where a cursor over `len` rows goes for this action (next, previous, first, last), or
    /// `None` when the action does not move a cursor.
    #[must_use]
    pub fn moved_cursor(self, cursor: usize, len: usize) -> Option<usize> {
        let last = len.saturating_sub(1);
        match self {
            Action::SelectNext => Some((cursor + 1).min(last)),
            Action::SelectPrevious => Some(cursor.saturating_sub(1)),
            Action::SelectFirst => Some(0),
            Action::SelectLast => Some(last),
            _ => None,
        }
    }

    /// What the help screen says the action does.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit (decisions are already saved)",
            Action::Help => "this help",
            Action::NextTab => "next tab",
            Action::PreviousTab => "previous tab",
            Action::SelectNext => "next sample",
            Action::SelectPrevious => "previous sample",
            Action::SelectFirst => "first sample",
            Action::SelectLast => "last sample",
            Action::PageDown => "a screen down",
            Action::PageUp => "a screen up",
            Action::Accept => "accept, then next",
            Action::Reject => "reject, then next",
            Action::Reset => "back to pending",
            Action::LabelHard => "label hard (reference answer)",
            Action::LabelSoft => "label soft (teacher distribution)",
            Action::LabelPseudo => "label pseudo (teacher sequence)",
            Action::ToggleMark => "mark / unmark, then next",
            Action::AcceptMarked => "accept the marked samples",
            Action::RejectMarked => "reject the marked samples",
            Action::Undo => "undo the last action",
            Action::Redo => "redo what was undone",
            Action::ToggleReasoning => "fold / unfold the reasoning",
            Action::ToggleTokens => "per-token teacher odds",
            Action::NextToken => "next token (token view)",
            Action::PreviousToken => "previous token",
            Action::NextUnsure => "next token below 50%",
            Action::PreviousUnsure => "previous below 50%",
            Action::ScrollDetailDown => "scroll the sample down",
            Action::ScrollDetailUp => "scroll the sample up",
            Action::GroupView => "the prompt's samples side by side",
            Action::Search => "fuzzy search prompts and teachers",
            Action::FullText => "full-text search",
            Action::Filter => "filter: score.math < 1 and tokens > 8000",
            Action::ClearFilter => "clear the filter or search",
            Action::Sort => "sort by the next column",
            Action::Note => "write a note on the sample",
            Action::ApplyRule => "rules tab: apply the selected rule",
            Action::EditRule => "rules tab: edit the selected rule",
            Action::NewRule => "rules tab: write a new rule",
            Action::Palette => "command palette: actions by name, #id jumps",
            Action::Back => "close the help, group or pane",
            Action::FocusDetail => "read the sample: focus its pane",
            Action::FocusList => "back to the list",
            Action::SearchTrace => "search inside the sample",
            Action::NextMatch => "next match",
            Action::PreviousMatch => "previous match",
            Action::GroupPrevious => "the sample to the left",
            Action::GroupNext => "the sample to the right",
            Action::Pick => "pick: accept it, reject its siblings",
            Action::Diff => "diff every answer against this one",
            Action::LinkScroll => "scroll together / each alone",
            Action::NextPrompt => "the next prompt's samples",
            Action::PreviousPrompt => "the previous prompt's samples",
            Action::Yank => "copy to the clipboard: then a/r/p/s",
            Action::Pager => "read the sample in $PAGER",
            Action::EditAnswer => "edit the answer ($EDITOR, a hard label)",
            Action::EditReference => "write the reference ($EDITOR)",
            Action::ToggleMouse => "mouse to the terminal / back",
        }
    }
}
