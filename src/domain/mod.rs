//! The vocabulary of distillation data (DESIGN.md §Concepts): plain data, no IO.

pub mod soft;
pub mod trace;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A name that is none of the names an enum knows (`--status maybe`, a store row written by a
/// newer retort): what was given, and the names that would do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?}; expected one of: {}", .expected.join(", "))]
pub struct UnknownName {
    /// What the name names, in lower case (`status`, `format`, `verifier`).
    pub kind: String,
    pub name: String,
    pub expected: Vec<&'static str>,
}

/// Defines a string-backed enum with `as_str`, `ALL`, `Display` and `FromStr`, so the names the
/// store, the CLI and JSON output use can never drift apart.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownName {
                        kind: stringify!($name).to_lowercase(),
                        name: other.to_owned(),
                        expected: vec![$($text),+],
                    }),
                }
            }
        }
    };
}

named_enum! {
    /// Where a sample stands with the curator.
    Status {
        /// Not yet decided.
        Pending => "pending",
        /// Kept for the training set.
        Accepted => "accepted",
        /// Left out of the training set.
        Rejected => "rejected",
    }
}

named_enum! {
    /// The supervision a sample gives the student; the three are never to be mixed up.
    LabelType {
        /// A human- or rule-made discrete answer (a reference answer).
        Hard => "hard",
        /// The teacher's probability distribution (top-k log-probs): carries "dark knowledge".
        Soft => "soft",
        /// A teacher-generated sequence used as an SFT target.
        Pseudo => "pseudo",
    }
}

named_enum! {
    /// The two halves of an R1-style mix: verifiable reasoning data and general data.
    Kind {
        /// Maths, code, logic: tasks with a checkable answer or a chain of thought.
        Reasoning => "reasoning",
        /// Writing, QA, translation, tool use: kept to preserve general ability.
        General => "general",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), *s);
        }
        for l in LabelType::ALL {
            assert_eq!(l.to_string().parse::<LabelType>().unwrap(), *l);
        }
        assert_eq!("general".parse::<Kind>().unwrap(), Kind::General);
        let err = "soft-ish".parse::<LabelType>().unwrap_err().to_string();
        assert_eq!(err, "unknown labeltype \"soft-ish\"; expected one of: hard, soft, pseudo");
    }
}
