//! Building statements at run time: arguments for multi-row statements and compiled rules.

use sqlx::Arguments as _;
use sqlx::sqlite::SqliteArguments;

use crate::rules::compile::{Compiled, Param};

/// Adds one value to a dynamically built statement's arguments.
pub(super) fn add_arg<T>(args: &mut SqliteArguments, value: T) -> Result<(), sqlx::Error>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    args.add(value).map_err(sqlx::Error::Encode)
}

/// Adds a compiled predicate's parameters, in order.
pub(super) fn add_params(args: &mut SqliteArguments, compiled: &Compiled) -> Result<(), sqlx::Error> {
    for p in &compiled.params {
        match p {
            Param::Real(n) => add_arg(args, *n)?,
            Param::Text(s) => add_arg(args, s.clone())?,
        }
    }
    Ok(())
}

/// `n` placeholders: `?,?,?`.
pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}
