//! Which files an import reads: the files named, and the data files of the folders named (a
//! dataset as downloaded, with its README, licence and `dataset_info.json` beside the data).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ImportError, ImportOptions};
use crate::ingest::reader::{Layout, sniff_layout};

/// A file an import leaves out, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SkippedFile {
    pub path: PathBuf,
    pub why: String,
}

/// The extensions of the files a folder's data is read from.
/// (Compressed text is judged by its inner name: `a.jsonl.gz`, `a.jsonl.zst`.)
const DATA_EXTENSIONS: &[&str] = &["jsonl", "json", "ndjson", "parquet"];

/// Why a file is not data, by its name alone: documentation, licences, repository files and the
/// metadata files dataset tools write beside the data. None when it may be data.
#[must_use]
pub fn not_data_by_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    if name.starts_with('.') {
        return Some("a hidden file".into());
    }
    let stem = name.split('.').next().unwrap_or("");
    if ["readme", "license", "licence", "copying", "notice", "changelog", "citation", "authors", "manifest"]
        .iter()
        .any(|d| stem.starts_with(d))
    {
        return Some("documentation, not data".into());
    }
    let ext = Path::new(&name).extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    if ["md", "markdown", "rst", "html", "pdf", "cff", "bib"].contains(&ext.as_str()) {
        return Some("documentation, not data".into());
    }
    // LLaMA-Factory's dataset_info.json (also under a prefix: `llamafactory_dataset_info.json`),
    // and the files Hugging Face `datasets` writes beside saved data.
    if ["dataset_info.json", "dataset_infos.json", "dataset_dict.json"].iter().any(|m| name.ends_with(m)) || name == "state.json" {
        return Some("dataset metadata, not data".into());
    }
    None
}

/// The files to import from `paths`, in order, and those left out with the reason. A file named
/// is read unless its name says it is not data ([`not_data_by_name`]). A folder is read for its
/// data files (`.parquet`, `.jsonl`, `.json`, `.ndjson`, the text ones plain or as `.gz`/`.zst`),
/// recursively, in name order (a Hub download's `data/train-00000-of-00004.parquet`... shards in
/// turn), hidden ones aside; a
/// JSON file in it holding one object of no known format (a tool's config or metrics) is left
/// out too. A file that looks like data and fails still fails the import, located as ever.
pub fn gather(paths: &[PathBuf], opts: &ImportOptions) -> Result<(Vec<PathBuf>, Vec<SkippedFile>), ImportError> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            walk(path, opts, &mut files, &mut skipped)?;
            if files.len() == before {
                return Err(ImportError::Usage(format!(
                    "{}: the folder holds no data file (*.parquet, *.jsonl, *.json, *.ndjson, plain or as .gz/.zst){}",
                    path.display(),
                    if skipped.is_empty() { String::new() } else { format!("; {} other files were left out", skipped.len()) }
                )));
            }
        } else if path.is_file() {
            match not_data_by_name(path) {
                Some(why) => skipped.push(SkippedFile { path: path.clone(), why }),
                None => files.push(path.clone()),
            }
        } else {
            return Err(ImportError::Usage(format!("{}: no such file or folder", path.display())));
        }
    }
    if files.is_empty() {
        return Err(ImportError::Usage("nothing to import: every file named is documentation or metadata, not data".into()));
    }
    Ok((files, skipped))
}

fn walk(dir: &Path, opts: &ImportOptions, files: &mut Vec<PathBuf>, skipped: &mut Vec<SkippedFile>) -> Result<(), ImportError> {
    let unreadable = |e: std::io::Error| ImportError::File { path: dir.to_owned(), message: format!("cannot read the folder: {e}") };
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(unreadable)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(unreadable)?;
    entries.sort();
    for path in entries {
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if path.is_dir() {
            // `.git`, `.cache` (a Hugging Face download's own bookkeeping): nothing to say.
            if !hidden {
                walk(&path, opts, files, skipped)?;
            }
            continue;
        }
        if let Some(why) = not_data_by_name(&path) {
            skipped.push(SkippedFile { path, why });
            continue;
        }
        let plain = crate::ingest::reader::plain_name(&path);
        let ext = plain.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        if !DATA_EXTENSIONS.contains(&ext.as_str()) {
            let why = if ext.is_empty() { "not a data file".to_owned() } else { format!("not a data file (.{ext})") };
            skipped.push(SkippedFile { path, why });
            continue;
        }
        if opts.format.is_none() && is_lone_foreign_object(&path, opts) {
            skipped.push(SkippedFile { path, why: "one JSON object of no known record format (metadata?), not data".into() });
            continue;
        }
        files.push(path);
    }
    Ok(())
}

/// A `.json` file holding one object whose format is not one retort reads: a config or metrics
/// file beside the data, not a dataset of one broken record.
fn is_lone_foreign_object(path: &Path, opts: &ImportOptions) -> bool {
    if !matches!(sniff_layout(path), Ok(Layout::Values)) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    let mut values = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let lone = matches!((values.next(), values.next()), (Some(Ok(serde_json::Value::Object(_))), None));
    lone && super::check::file_format(path, Layout::Values, opts).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_data() {
        for name in ["README.md", "readme", "LICENSE", "LICENSE.llamafactory", "NOTES.md", ".gitattributes", "CITATION.cff"] {
            assert!(not_data_by_name(Path::new(name)).is_some(), "{name}");
        }
        assert_eq!(not_data_by_name(Path::new("llamafactory_README.md")).as_deref(), Some("documentation, not data"));
        assert_eq!(not_data_by_name(Path::new("x/llamafactory_dataset_info.json")).as_deref(), Some("dataset metadata, not data"));
        for name in ["train.jsonl", "alpaca_en_demo.json", "dataset.json", "sky-t1-14b_aime24.jsonl", "data.ndjson", "gens.txt"] {
            assert_eq!(not_data_by_name(Path::new(name)), None, "{name}");
        }
    }

    #[test]
    fn a_folder_yields_its_data_files_in_order_and_says_what_it_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("b.jsonl"), "{\"prompt\": \"p\", \"completion\": \"c\"}\n").unwrap();
        std::fs::write(d.join("a.json"), "[{\"instruction\": \"i\", \"input\": \"\", \"output\": \"o\"}]").unwrap();
        std::fs::write(d.join("dataset_info.json"), "{\"a\": {\"file_name\": \"a.json\"}}").unwrap();
        std::fs::write(d.join("metrics.json"), "{\"accuracy\": 0.5}").unwrap();
        std::fs::write(d.join("README.md"), "# data").unwrap();
        std::fs::write(d.join("MANIFEST.tsv"), "a\tb").unwrap();
        std::fs::write(d.join("run.py"), "print(1)").unwrap();
        std::fs::create_dir(d.join(".cache")).unwrap();
        std::fs::write(d.join(".cache/x.jsonl"), "{}").unwrap();
        std::fs::create_dir(d.join("more")).unwrap();
        std::fs::write(d.join("more/c.jsonl"), "{\"prompt\": \"q\", \"completion\": \"d\"}\n").unwrap();
        let (files, skipped) = gather(&[d.to_owned()], &ImportOptions::default()).unwrap();
        assert_eq!(files, [d.join("a.json"), d.join("b.jsonl"), d.join("more/c.jsonl")]);
        let left: Vec<(String, &str)> =
            skipped.iter().map(|s| (s.path.file_name().unwrap().to_string_lossy().into_owned(), s.why.as_str())).collect();
        assert_eq!(
            left,
            [
                ("MANIFEST.tsv".into(), "documentation, not data"),
                ("README.md".into(), "documentation, not data"),
                ("dataset_info.json".into(), "dataset metadata, not data"),
                ("metrics.json".into(), "one JSON object of no known record format (metadata?), not data"),
                ("run.py".into(), "not a data file (.py)"),
            ]
        );
        // Named on its own, a metadata file is left out; a broken data file is still read (and fails later).
        let (files, skipped) = gather(&[d.join("dataset_info.json"), d.join("metrics.json")], &ImportOptions::default()).unwrap();
        assert_eq!((files, skipped.len()), (vec![d.join("metrics.json")], 1));
        assert!(matches!(gather(&[d.join("README.md")], &ImportOptions::default()), Err(ImportError::Usage(_))));
        assert!(
            matches!(gather(&[d.join("none.jsonl")], &ImportOptions::default()), Err(ImportError::Usage(m)) if m.contains("no such file"))
        );
    }
}
