//! Images, audio and video in a record. retort keeps text only: a row that carries media is
//! imported without them, and the import says how many rows did.

use serde::Serialize;
use serde_json::Value;

/// How many rows carried each kind of media that was not kept.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct MediaRows {
    pub images: u64,
    pub audio: u64,
    pub video: u64,
}

impl MediaRows {
    /// Counts `record` (a whole input record) in each kind of media it carries.
    pub fn note(&mut self, record: &Value) {
        self.note_found(kinds(record));
    }

    /// Counts one row in each kind of media [`kinds`] found in it.
    pub fn note_found(&mut self, found: MediaRows) {
        self.images += u64::from(found.images > 0);
        self.audio += u64::from(found.audio > 0);
        self.video += u64::from(found.video > 0);
    }

    #[must_use]
    pub fn any(&self) -> bool {
        self.images + self.audio + self.video > 0
    }

    /// One warning per kind seen: ``12 rows had images; the images are not kept``.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        [(self.images, "images", "the images are"), (self.audio, "audio", "the audio is"), (self.video, "videos", "the videos are")]
            .into_iter()
            .filter(|(n, ..)| *n > 0)
            .map(|(n, what, they)| {
                format!("{n} row{} had {what}; {they} not kept (retort stores text only)", if n == 1 { "" } else { "s" })
            })
            .collect()
    }
}

impl std::ops::AddAssign for MediaRows {
    fn add_assign(&mut self, other: Self) {
        self.images += other.images;
        self.audio += other.audio;
        self.video += other.video;
    }
}

/// Which media one record carries, as counts of columns and content parts found:
/// LLaMA-Factory's `images` / `videos` / `audios` columns (and their singulars), and message
/// content parts of type `image_url`, `input_audio` and the like (OpenAI, TRL, Qwen-VL).
#[must_use]
pub fn kinds(record: &Value) -> MediaRows {
    let mut found = MediaRows::default();
    if let Value::Object(obj) = record {
        for (key, v) in obj {
            let present = match v {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if present {
                match key.as_str() {
                    "images" | "image" => found.images += 1,
                    "audios" | "audio" => found.audio += 1,
                    "videos" | "video" => found.video += 1,
                    _ => {}
                }
            }
        }
    }
    parts(record, &mut found);
    found
}

/// Content parts anywhere in the record: objects whose `type` names a medium.
fn parts(v: &Value, found: &mut MediaRows) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| parts(i, found)),
        Value::Object(obj) => {
            if let Some(Value::String(t)) = obj.get("type") {
                match t.as_str() {
                    "image" | "image_url" | "input_image" => found.images += 1,
                    "audio" | "input_audio" | "audio_url" => found.audio += 1,
                    "video" | "video_url" | "input_video" => found.video += 1,
                    _ => {}
                }
            }
            obj.values().for_each(|i| parts(i, found));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_and_content_parts_are_found() {
        let mut rows = MediaRows::default();
        rows.note(&json!({"messages": [{"role": "user", "content": "<image>Who?"}], "images": ["1.jpg"]}));
        rows.note(&json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "Listen"}, {"type": "input_audio", "input_audio": {"data": "..", "format": "wav"}},
            {"type": "image_url", "image_url": {"url": "http://x/1.png"}}, {"type": "image_url", "image_url": {"url": "http://x/2.png"}}]}]}));
        rows.note(&json!({"conversations": [], "videos": ["a.mp4"], "images": []}));
        rows.note(&json!({"instruction": "no media here", "output": "none", "tools": "[{\"type\": \"image\"}]"}));
        assert_eq!(rows, MediaRows { images: 2, audio: 1, video: 1 });
        assert_eq!(
            rows.warnings(),
            [
                "2 rows had images; the images are not kept (retort stores text only)",
                "1 row had audio; the audio is not kept (retort stores text only)",
                "1 row had videos; the videos are not kept (retort stores text only)"
            ]
        );
        assert!(!MediaRows::default().any() && rows.any());
    }
}
