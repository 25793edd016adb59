//! A curator's edit of a sample's answer, or of its prompt's reference answer: stored as the
//! sample's hard label, the text it replaced kept in the history, one action that `undo` and
//! redo treat like any decision. `retort edit` and the TUI's edit key both come here; both
//! edit in `$VISUAL` / `$EDITOR` through [`edit_in_editor`].

use std::path::PathBuf;

use super::decide::{CURATOR, Decided};
use crate::ingest::tokens::TokenCounter;
use crate::store::edits::{self, Edit, Outcome};
use crate::store::{self, Store};

pub use crate::store::edits::EditField;

/// Why an edit was not stored.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("there is no sample #{id} in this store (`retort list` shows the ids)")]
    NoSample { id: i64 },
    #[error(
        "an empty {field} is not stored: sample #{id} keeps its {field} as it was \
         (to leave the sample out of the export, reject it instead)"
    )]
    Empty { id: i64, field: EditField },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// The text `field` of sample `id` holds now: what an editor opens with (empty when the prompt
/// has no reference yet).
pub async fn current_text(store: &Store, id: i64, field: EditField) -> Result<String, EditError> {
    let texts = edits::editable(store, id).await?.ok_or(EditError::NoSample { id })?;
    Ok(texts.text(field).unwrap_or_default().to_owned())
}

/// Stores `text` as sample `id`'s `field` and makes its label hard, as one action of the
/// curator's; returns it (its moves keep the status line's label counts exact), or none when
/// the text already was this (nothing recorded). An empty (all-blank) text is refused.
pub async fn edit_text(store: &Store, id: i64, field: EditField, text: &str) -> Result<Option<Decided>, EditError> {
    if text.trim().is_empty() {
        // Say which sample first: an unknown id is the more useful error.
        current_text(store, id, field).await?;
        return Err(EditError::Empty { id, field });
    }
    let answer_tokens = match field {
        EditField::Answer => {
            let counter = edits::editable(store, id).await?.ok_or(EditError::NoSample { id })?.token_counter;
            let text = text.to_owned();
            // A tokenizer file may take a moment to load: off the async threads.
            tokio::task::spawn_blocking(move || count_tokens(counter.as_deref(), &text)).await.ok()
        }
        EditField::Reference => None,
    };
    let mut tx = store.write().await?;
    match edits::edit(&mut tx, &Edit { sample_id: id, field, text, answer_tokens }, CURATOR).await? {
        Outcome::NoSample => Err(EditError::NoSample { id }),
        Outcome::Unchanged => {
            tx.rollback().await?;
            Ok(None)
        }
        Outcome::Edited { action_id, moves } => {
            tx.commit().await?;
            Ok(Some(Decided { action_id, moves }))
        }
    }
}

/// The tokens of an edited answer, counted as its import counted the sample's (`estimate`, or
/// `tokenizer:<file>` when that file still loads; the estimate otherwise).
fn count_tokens(counter: Option<&str>, text: &str) -> i64 {
    let counter = counter
        .and_then(|c| c.strip_prefix("tokenizer:"))
        .and_then(|file| TokenCounter::from_file(std::path::Path::new(file)).ok())
        .unwrap_or(TokenCounter::Estimate);
    counter.count(text) as i64
}

/// Why the editor gave nothing back.
#[derive(Debug, thiserror::Error)]
pub enum EditorError {
    #[error("cannot write the file to edit {}: {cause}", path.display())]
    Write { path: PathBuf, cause: std::io::Error },
    #[error("cannot read back the edited file {}: {cause}", path.display())]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("the editor command {command:?} does not parse ({cause}); set $VISUAL or $EDITOR to a command, e.g. `vim` or `code --wait`")]
    Syntax { command: String, cause: shell_words::ParseError },
    #[error("cannot start the editor {command:?}: {cause}; set $VISUAL or $EDITOR to one that is installed")]
    Start { command: String, cause: std::io::Error },
    #[error("the editor {command:?} failed ({status}): nothing was changed")]
    Failed { command: String, status: std::process::ExitStatus },
}

/// The editor the user asked for: `$VISUAL`, else `$EDITOR`, else `vi`.
#[must_use]
pub fn editor_command() -> String {
    user_command(&["VISUAL", "EDITOR"], "vi")
}

/// The command the first set (non-blank) variable of `vars` holds, else `fallback`: how the
/// user names their editor or pager (it may carry arguments: `code --wait`, `less -R`).
#[must_use]
pub fn user_command(vars: &[&str], fallback: &str) -> String {
    vars.iter()
        .filter_map(std::env::var_os)
        .map(|v| v.to_string_lossy().trim().to_owned())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| fallback.to_owned())
}

/// Opens `initial` in the user's editor ([`editor_command`], which may carry arguments:
/// `code --wait`) on a temporary file whose name ends in `suffix` (`.md` gives the editor its
/// highlighting), waits for it to exit and reads the file back: the new text, or none when it
/// is unchanged. The newline an editor adds at the end of the last line is taken off again
/// ([`settle_newline`]). Blocking: the TUI calls it with the terminal suspended.
pub fn edit_in_editor(initial: &str, suffix: &str) -> Result<Option<String>, EditorError> {
    edit_with(&editor_command(), initial, suffix)
}

/// [`edit_in_editor`] with this editor command.
pub fn edit_with(command: &str, initial: &str, suffix: &str) -> Result<Option<String>, EditorError> {
    let command = command.to_owned();
    let words = shell_words::split(&command).map_err(|cause| EditorError::Syntax { command: command.clone(), cause })?;
    let Some((program, args)) = words.split_first() else {
        return Err(EditorError::Start { command, cause: std::io::Error::other("it is empty") });
    };
    let file = TempFile::create(initial, suffix)?;
    let status = std::process::Command::new(program)
        .args(args)
        .arg(&file.0)
        .status()
        .map_err(|cause| EditorError::Start { command: command.clone(), cause })?;
    if !status.success() {
        return Err(EditorError::Failed { command, status });
    }
    let edited = std::fs::read_to_string(&file.0).map_err(|cause| EditorError::Read { path: file.0.clone(), cause })?;
    let edited = settle_newline(initial, edited);
    Ok((edited != initial).then_some(edited))
}

/// `edited` without the line ending an editor (or `echo`) puts after the last line, when
/// `initial` had none there: saving an unchanged text is no change.
#[must_use]
pub fn settle_newline(initial: &str, mut edited: String) -> String {
    if !initial.ends_with('\n') && edited.ends_with('\n') {
        edited.pop();
        if edited.ends_with('\r') {
            edited.pop();
        }
    }
    edited
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn create(text: &str, suffix: &str) -> Result<Self, EditorError> {
        use std::io::Write as _;
        let dir = std::env::temp_dir();
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        // A name no other file has: created new, so another user's file is never written through.
        for attempt in 0..100u32 {
            let path = dir.join(format!("retort-edit-{}-{stamp}-{attempt}{suffix}", std::process::id()));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let file = Self(path);
                    f.write_all(text.as_bytes()).map_err(|cause| EditorError::Write { path: file.0.clone(), cause })?;
                    return Ok(file);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(cause) => return Err(EditorError::Write { path, cause }),
            }
        }
        Err(EditorError::Write { path: dir, cause: std::io::Error::other("no free file name") })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newline_an_editor_adds_is_no_change() {
        assert_eq!(settle_newline("4", "4\n".into()), "4");
        assert_eq!(settle_newline("4", "4\r\n".into()), "4");
        assert_eq!(settle_newline("4\n", "4\n".into()), "4\n");
        // Only the one the editor adds: blank lines the curator typed stay.
        assert_eq!(settle_newline("4", "5\n\n".into()), "5\n");
        assert_eq!(settle_newline("", "x".into()), "x");
    }

    #[test]
    fn the_editor_gives_back_what_it_wrote_and_says_when_it_failed() {
        let rewrite = "sh -c 'printf \"new text\" > \"$1\"' sh";
        assert_eq!(edit_with(rewrite, "old", ".md").unwrap().as_deref(), Some("new text"));
        // Saved as it was (with the editor's newline): no change.
        assert_eq!(edit_with("sh -c 'printf \"old\\n\" > \"$1\"' sh", "old", ".md").unwrap(), None);
        assert_eq!(edit_with("true", "old", ".md").unwrap(), None);
        let failed = edit_with("sh -c 'exit 3' sh", "old", ".md").unwrap_err().to_string();
        assert!(failed.contains("failed") && failed.contains('3') && failed.contains("nothing was changed"), "{failed}");
        let missing = edit_with("no-such-editor-here", "old", ".md").unwrap_err().to_string();
        assert!(missing.contains("cannot start the editor") && missing.contains("$EDITOR"), "{missing}");
        assert!(edit_with("vim 'unclosed", "old", ".md").unwrap_err().to_string().contains("does not parse"));
    }

    #[test]
    fn tokens_are_counted_as_the_import_counted_them() {
        assert_eq!(count_tokens(Some("estimate"), "abcdefgh"), 2);
        // A tokenizer file that is gone: the estimate, not a failed edit.
        assert_eq!(count_tokens(Some("tokenizer:/nonexistent/tokenizer.json"), "abcdefgh"), 2);
        assert_eq!(count_tokens(None, ""), 0);
    }
}
