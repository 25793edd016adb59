//! `retort edit`: a curator's edit of a sample's answer or reference, in `$EDITOR` or from a file.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context;

use crate::ops::edit::{EditField, current_text, edit_in_editor, edit_text, settle_newline};
use crate::store::Store;

pub const EDIT_HELP: &str = "\
The edited text is stored as the sample's hard label: its label becomes hard, exports, `list`
and full-text search use the new text, and the text it replaced stays in the sample's history.
`retort undo` puts the old text and label back (the TUI's u and ctrl-r undo and redo it).

The editor is $VISUAL, else $EDITOR, else vi; it may carry arguments (`code --wait`). Saving
the text unchanged, or quitting without saving, changes nothing; an empty text is refused.
The reference answer belongs to the prompt: every sample of the prompt sees the new one.

Examples:
  retort edit 42                        fix sample 42's answer in your editor
  retort edit 42 --reference            write the reference answer of its prompt
  retort edit 42 --file fixed.md        take the new answer from a file (- reads stdin)
  retort undo                           put the old answer back";

#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// The sample's id (as `retort list` and the TUI show it).
    #[arg(value_name = "ID")]
    pub id: i64,
    /// Edit the reference answer of the sample's prompt instead of the sample's answer.
    #[arg(long)]
    pub reference: bool,
    /// Take the new text from this file (`-`: standard input) instead of opening an editor.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

pub async fn run(store: &Store, args: EditArgs) -> anyhow::Result<()> {
    let field = if args.reference { EditField::Reference } else { EditField::Answer };
    let id = args.id;
    let current = current_text(store, id, field).await?;
    let edited = if let Some(path) = &args.file {
        let text = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read the new text from standard input")?;
            text
        } else {
            std::fs::read_to_string(path).with_context(|| format!("cannot read the new text from {}", path.display()))?
        };
        Some(settle_newline(&current, text)).filter(|t| *t != current)
    } else {
        let suffix = format!("-{id}-{field}.md");
        tokio::task::spawn_blocking(move || edit_in_editor(&current, &suffix)).await??
    };
    let Some(text) = edited else {
        super::say!("No change: sample #{id}'s {field} is as it was.");
        return Ok(());
    };
    match edit_text(store, id, field, &text).await? {
        None => super::say!("No change: sample #{id}'s {field} is as it was."),
        Some(_) => super::say!(
            "Sample #{id}: {field} edited ({} characters), label hard. `retort undo` puts the old {field} back.",
            text.chars().count()
        ),
    }
    Ok(())
}
