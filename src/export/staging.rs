//! An export's files as one set: written into a hidden directory beside the destination, then
//! put in its place in one step, so the destination holds the old set or the new one, whole,
//! and nothing else (a `validation.jsonl` of an earlier export with `--val` does not survive an
//! export without it, where its rows are now in `train.jsonl`).
//!
//! On Linux the two directories are swapped atomically (`renameat2(RENAME_EXCHANGE)`), and the
//! old set removed after; elsewhere the old set is moved aside first, which leaves a moment with
//! neither in place.

use std::io;
use std::path::{Path, PathBuf};

/// Why a destination cannot take an export.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error(
        "{out} holds files that are not part of a retort export ({files}): an export replaces the whole directory, so give \
         an empty or new directory, or one an earlier export wrote"
    )]
    Foreign { out: PathBuf, files: String },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
}

fn io_error(path: &Path, e: &io::Error) -> StagingError {
    StagingError::Io { path: path.to_owned(), message: e.to_string() }
}

/// The files an earlier export left in `out` that its manifest does not account for.
fn foreign_files(out: &Path) -> Result<Vec<String>, StagingError> {
    let entries = match std::fs::read_dir(out) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(out, &e)),
    };
    let manifest: Option<serde_json::Value> =
        std::fs::read_to_string(out.join("manifest.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    let mut ours: Vec<String> = vec!["manifest.json".into(), "dataset_info.json".into()];
    match manifest.as_ref().filter(|m| m.get("retort_version").is_some()) {
        Some(m) => {
            for part in m.get("parts").and_then(serde_json::Value::as_object).into_iter().flat_map(|p| p.values()) {
                if let Some(f) = part.get("file").and_then(serde_json::Value::as_str) {
                    ours.push(f.to_owned());
                }
                // A part in several shards.
                for shard in part.get("shards").and_then(serde_json::Value::as_array).into_iter().flatten() {
                    if let Some(f) = shard.get("file").and_then(serde_json::Value::as_str) {
                        ours.push(f.to_owned());
                    }
                }
            }
        }
        // Not a retort export: only an empty directory may be taken.
        None => ours.clear(),
    }
    let mut foreign = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(out, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // A part an earlier export was writing when it was killed.
        let partial = name.starts_with('.') && name.ends_with(".partial");
        if !partial && !ours.contains(&name) {
            foreign.push(name);
        }
    }
    foreign.sort();
    Ok(foreign)
}

/// A staging directory: `.NAME.staging-PID` beside the destination `NAME`.
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
    placed: bool,
}

impl Staging {
    /// Checks that `out` may take an export (absent, empty, or an earlier export's files only),
    /// clears staging directories that killed exports left, and makes this one's.
    pub fn begin(out: &Path) -> Result<Self, StagingError> {
        let foreign = foreign_files(out)?;
        if !foreign.is_empty() {
            let mut files: Vec<String> = foreign.iter().take(5).cloned().collect();
            if foreign.len() > 5 {
                files.push(format!("and {} more", foreign.len() - 5));
            }
            return Err(StagingError::Foreign { out: out.to_owned(), files: files.join(", ") });
        }
        let name = out.file_name().map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| io_error(&parent, &e))?;
        let prefix = format!(".{name}.staging-");
        if let Ok(entries) = std::fs::read_dir(&parent) {
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = file.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
                // Another export to the same place may be running: only the dead's are cleared.
                if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = parent.join(format!("{prefix}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).map_err(|e| io_error(&dir, &e))?;
        Ok(Self { out: out.to_owned(), dir, placed: false })
    }

    /// Where the files are written.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Puts the written set in the destination's place; the old set, if any, is removed.
    pub fn place(mut self) -> Result<(), StagingError> {
        if self.out.exists() {
            swap(&self.dir, &self.out).map_err(|e| io_error(&self.out, &e))?;
            // The staging directory now holds the old set.
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            std::fs::rename(&self.dir, &self.out).map_err(|e| io_error(&self.out, &e))?;
        }
        self.placed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Exchanges two directories in one step.
#[cfg(target_os = "linux")]
fn swap(a: &Path, b: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(rustix::fs::CWD, a, rustix::fs::CWD, b, rustix::fs::RenameFlags::EXCHANGE).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn swap(a: &Path, b: &Path) -> io::Result<()> {
    let aside = b.with_extension("retort-old");
    std::fs::rename(b, &aside)?;
    std::fs::rename(a, b)?;
    std::fs::rename(&aside, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_replaces_the_old_one_whole_and_nothing_else_is_taken() {
        let root = std::env::temp_dir().join(format!("retort-staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let out = root.join("sft");
        let write = |files: &[&str]| {
            let s = Staging::begin(&out).unwrap();
            let parts: serde_json::Map<String, serde_json::Value> =
                files.iter().map(|f| ((*f).to_owned(), serde_json::json!({"file": f}))).collect();
            std::fs::write(s.dir().join("manifest.json"), serde_json::json!({"retort_version": "x", "parts": parts}).to_string()).unwrap();
            for f in files {
                std::fs::write(s.dir().join(f), "{}\n").unwrap();
            }
            s.place().unwrap();
        };
        write(&["train.jsonl", "validation.jsonl"]);
        write(&["train.jsonl"]);
        let mut names: Vec<String> =
            std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["manifest.json", "train.jsonl"], "the old validation part is gone");
        // Nothing is left beside it.
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
        // A directory with a file of its own is not taken.
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let e = Staging::begin(&out).err().unwrap();
        assert!(e.to_string().contains("(notes.txt)"), "{e}");
        // An abandoned staging directory goes with its Drop.
        std::fs::remove_file(out.join("notes.txt")).unwrap();
        drop(Staging::begin(&out).unwrap());
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
