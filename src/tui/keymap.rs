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

/// Where a key is read: the sample pane and the group view have keys of their own, looked up
/// before the keys that hold everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    Global,
    Detail,
    Group,
}

impl Context {
    const ALL: [Context; 3] = [Context::Global, Context::Detail, Context::Group];

    /// The table the keymap file names it by.
    fn table(self) -> &'static str {
        match self {
            Context::Global => "keys",
            Context::Detail => "detail",
            Context::Group => "group",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    keys: HashMap<Action, Vec<String>>,
    #[serde(default)]
    detail: HashMap<Action, Vec<String>>,
    #[serde(default)]
    group: HashMap<Action, Vec<String>>,
}

impl KeyFile {
    fn table(&self, context: Context) -> &HashMap<Action, Vec<String>> {
        match context {
            Context::Global => &self.keys,
            Context::Detail => &self.detail,
            Context::Group => &self.group,
        }
    }
}

/// The key bindings in force.
#[derive(Debug, Clone)]
pub struct KeyMap {
    by_key: HashMap<(Context, Key), Action>,
    by_action: Vec<(Context, Action, Vec<Key>)>,
}

impl KeyMap {
    /// The defaults, with `user` (a TOML config's text) rebinding the actions it names.
    pub fn load(user: Option<(&str, &str)>) -> Result<Self, String> {
        let defaults: KeyFile = toml::from_str(DEFAULTS).map_err(|e| format!("the built-in keymap: {e}"))?;
        let mut bindings: Vec<(Context, Action, Vec<String>)> = Vec::new();
        let mut table = Context::Global;
        for line in DEFAULTS.lines() {
            // Keep the file's order for the help screen.
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                table = Context::ALL.into_iter().find(|c| c.table() == name).unwrap_or(Context::Global);
                continue;
            }
            let Some((name, _)) = line.split_once('=') else { continue };
            let name = name.trim();
            if let Some((action, keys)) = defaults.table(table).iter().find(|(a, _)| toml_name(**a) == name) {
                bindings.push((table, *action, keys.clone()));
            }
        }
        let mut rebound: Vec<(Context, Action)> = Vec::new();
        if let Some((origin, text)) = user {
            let user: KeyFile = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
            for context in Context::ALL {
                for (action, keys) in user.table(context) {
                    rebound.push((context, *action));
                    match bindings.iter_mut().find(|(c, a, _)| *c == context && a == action) {
                        Some(b) => b.2.clone_from(keys),
                        None => bindings.push((context, *action, keys.clone())),
                    }
                }
            }
        }
        let mut by_action = Vec::new();
        for (context, action, keys) in bindings {
            let keys = keys.iter().map(|k| Key::parse(k)).collect::<Result<Vec<_>, _>>()?;
            by_action.push((context, action, keys));
        }
        // A key the user gives an action is taken from the default that had it.
        let mut by_key = HashMap::new();
        for user_bound in [false, true] {
            for (context, action, keys) in &by_action {
                if rebound.contains(&(*context, *action)) == user_bound {
                    for k in keys {
                        by_key.insert((*context, *k), *action);
                    }
                }
            }
        }
        for (context, action, keys) in &mut by_action {
            keys.retain(|k| by_key.get(&(*context, *k)) == Some(action));
        }
        Ok(Self { by_key, by_action })
    }

    /// The action of a key read in `context`: its own keys first, then those of everywhere.
    #[must_use]
    pub fn action(&self, ev: &KeyEvent, context: Context) -> Option<Action> {
        let key = Key::from_event(ev);
        let find = |key: Key| [context, Context::Global].into_iter().find_map(|c| self.by_key.get(&(c, key)).copied());
        find(key).or_else(|| {
            // Shifted letters arrive as uppercase with SHIFT; match them without it.
            if let KeyCode::Char(c) = key.code { find(Key { code: KeyCode::Char(c), ..key }) } else { None }
        })
    }

    /// The keys of an action everywhere, for hints and help (`j/↓`).
    #[must_use]
    pub fn keys_of(&self, action: Action) -> String {
        self.keys_in(action, Context::Global)
    }

    /// The keys of an action in `context`: its own, else those of everywhere.
    #[must_use]
    pub fn keys_in(&self, action: Action, context: Context) -> String {
        let keys = |c: Context| {
            self.by_action
                .iter()
                .find(|(bc, a, ks)| *bc == c && *a == action && !ks.is_empty())
                .map(|(_, _, ks)| ks.iter().map(Key::label).collect::<Vec<_>>().join("/"))
        };
        keys(context).or_else(|| keys(Context::Global)).unwrap_or_default()
    }

    /// The first key of an action in `context` (else everywhere), for the hint bar.
    #[must_use]
    pub fn first_key_in(&self, action: Action, context: Context) -> String {
        let key = |c: Context| {
            self.by_action.iter().find(|(bc, a, ks)| *bc == c && *a == action && !ks.is_empty()).map(|(_, _, ks)| ks[0].label())
        };
        key(context).or_else(|| key(Context::Global)).unwrap_or_default()
    }

    /// Every binding in the keymap file's order.
    #[must_use]
    pub fn bindings(&self) -> &[(Context, Action, Vec<Key>)] {
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
        let g = Context::Global;
        assert_eq!(km.action(&key('a'), g), Some(Action::Accept));
        assert_eq!(km.action(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), g), Some(Action::Quit));
        assert_eq!(km.action(&KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT), g), Some(Action::SelectLast));
        assert_eq!(km.keys_of(Action::SelectNext), "j/↓");
        // The sample pane's own keys come first there, and only there.
        assert_eq!(km.action(&key('n'), g), Some(Action::Note));
        assert_eq!(km.action(&key('n'), Context::Detail), Some(Action::NextMatch));
        assert_eq!(km.action(&key('a'), Context::Detail), Some(Action::Accept));
        assert_eq!(km.action(&key('p'), Context::Group), Some(Action::Pick));
        assert_eq!(km.action(&key('p'), g), None);
        let km = KeyMap::load(Some(("user.toml", "[keys]\naccept = [\"y\", \"enter\"]\n[group]\npick = [\"P\"]\n"))).unwrap();
        assert_eq!(km.action(&key('y'), g), Some(Action::Accept));
        assert_eq!(km.action(&key('a'), g), None);
        assert_eq!(km.action(&key('P'), Context::Group), Some(Action::Pick));
        assert_eq!(km.keys_in(Action::Pick, Context::Group), "P");
        let err = KeyMap::load(Some(("user.toml", "[keys]\naccept = [\"hyper-q\"]\n"))).unwrap_err();
        assert!(err.contains("hyper-q"), "{err}");
        let err = KeyMap::load(Some(("user.toml", "[keys]\nlaunch = [\"l\"]\n"))).unwrap_err();
        assert!(err.contains("user.toml"), "{err}");
        let err = KeyMap::load(Some(("user.toml", "[detial]\npick = [\"l\"]\n"))).unwrap_err();
        assert!(err.contains("detial"), "{err}");
    }
}
