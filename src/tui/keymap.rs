//! Keys to actions: defaults compiled in from assets/keymap.toml; a user file rebinds single actions.

use std::collections::HashMap;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

use super::action::Action;

const DEFAULTS: &str = include_str!("../../assets/keymap.toml");

/// A key as written in the config: a character or a name, maybe with `ctrl-`/`alt-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    /// Parses "a", "G", "space", "ctrl-c", "pagedown", "f5".
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "space" => KeyCode::Char(' '),
            "enter" => KeyCode::Enter,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "esc" => KeyCode::Esc,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "backspace" => KeyCode::Backspace,
            "delete" => KeyCode::Delete,
            f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => KeyCode::F(f[1..].parse().unwrap_or(1)),
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().unwrap_or(' ')),
            other => return Err(format!("unknown key {other:?} in {text:?}")),
        };
        Ok(Self { code, ctrl, alt })
    }

    fn from_event(ev: &KeyEvent) -> Self {
        Self { code: ev.code, ctrl: ev.modifiers.contains(KeyModifiers::CONTROL), alt: ev.modifiers.contains(KeyModifiers::ALT) }
    }

    /// How the help screen writes it.
    #[must_use]
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_owned(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "enter".into(),
            KeyCode::Tab => "tab".into(),
            KeyCode::BackTab => "shift-tab".into(),
            KeyCode::Esc => "esc".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "pgup".into(),
            KeyCode::PageDown => "pgdn".into(),
            KeyCode::Home => "home".into(),
            KeyCode::End => "end".into(),
            KeyCode::F(n) => format!("f{n}"),
            other => format!("{other:?}").to_lowercase(),
        };
        format!("{}{}{base}", if self.ctrl { "ctrl-" } else { "" }, if self.alt { "alt-" } else { "" })
    }
}

#[derive(Debug, Deserialize)]
struct KeyFile {
    #[serde(default)]
    keys: HashMap<Action, Vec<String>>,
}

/// The key bindings in force.
#[derive(Debug, Clone)]
pub struct KeyMap {
    by_key: HashMap<Key, Action>,
    by_action: Vec<(Action, Vec<Key>)>,
}

impl KeyMap {
    /// The defaults, with `user` (a TOML config's text) rebinding the actions it names.
    pub fn load(user: Option<(&str, &str)>) -> Result<Self, String> {
        let defaults: KeyFile = toml::from_str(DEFAULTS).map_err(|e| format!("the built-in keymap: {e}"))?;
        let mut bindings: Vec<(Action, Vec<String>)> = Vec::new();
        for line in DEFAULTS.lines() {
            // Keep the file's order for the help screen.
            let Some((name, _)) = line.split_once('=') else { continue };
            let name = name.trim();
            if let Some((action, keys)) = defaults.keys.iter().find(|(a, _)| toml_name(**a) == name) {
                bindings.push((*action, keys.clone()));
            }
        }
        if let Some((origin, text)) = user {
            let user: KeyFile = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
            for (action, keys) in user.keys {
                match bindings.iter_mut().find(|(a, _)| *a == action) {
                    Some(b) => b.1 = keys,
                    None => bindings.push((action, keys)),
                }
            }
        }
        let mut by_key = HashMap::new();
        let mut by_action = Vec::new();
        for (action, keys) in bindings {
            let keys = keys.iter().map(|k| Key::parse(k)).collect::<Result<Vec<_>, _>>()?;
            for k in &keys {
                by_key.insert(*k, action);
            }
            by_action.push((action, keys));
        }
        Ok(Self { by_key, by_action })
    }

    #[must_use]
    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        let key = Key::from_event(ev);
        self.by_key.get(&key).copied().or_else(|| {
            // Shifted letters arrive as uppercase with SHIFT; match them without it.
            if let KeyCode::Char(c) = key.code { self.by_key.get(&Key { code: KeyCode::Char(c), ..key }).copied() } else { None }
        })
    }

    /// The keys of an action, for hints and help (`j/↓`).
    #[must_use]
    pub fn keys_of(&self, action: Action) -> String {
        self.by_action
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, ks)| ks.iter().map(Key::label).collect::<Vec<_>>().join("/"))
            .unwrap_or_default()
    }

    /// Every binding in the keymap file's order.
    #[must_use]
    pub fn bindings(&self) -> &[(Action, Vec<Key>)] {
        &self.by_action
    }
}

/// The name an action has in the keymap file.
fn toml_name(action: Action) -> String {
    let debug = format!("{action:?}");
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn defaults_and_user_rebinding() {
        let km = KeyMap::load(None).unwrap();
        assert_eq!(km.action(&key('a')), Some(Action::Accept));
        assert_eq!(km.action(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Action::Quit));
        assert_eq!(km.action(&KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT)), Some(Action::SelectLast));
        assert_eq!(km.keys_of(Action::SelectNext), "j/↓");
        let km = KeyMap::load(Some(("user.toml", "[keys]\naccept = [\"y\", \"enter\"]\n"))).unwrap();
        assert_eq!(km.action(&key('y')), Some(Action::Accept));
        assert_eq!(km.action(&key('a')), None);
        let err = KeyMap::load(Some(("user.toml", "[keys]\naccept = [\"hyper-q\"]\n"))).unwrap_err();
        assert!(err.contains("hyper-q"), "{err}");
        let err = KeyMap::load(Some(("user.toml", "[keys]\nlaunch = [\"l\"]\n"))).unwrap_err();
        assert!(err.contains("user.toml"), "{err}");
    }
}
