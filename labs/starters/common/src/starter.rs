//! What happens when a run reaches a piece you have not written yet.
//!
//! Your pieces start as `todo!("…")`. This file is the starter's only scaffolding, and the rule
//! it keeps is the same in every stage:
//!
//! - a run that **asks** for something of this stage (a flag of its own) and reaches a piece
//!   still `todo!()` stops before anything exists on the host, and says which piece is missing
//!   and where the book explains it: `skiff starter: not written yet: …`, exit 125, as an
//!   engine refuses any request it cannot carry out;
//! - a piece on the path **every** container takes (stage 02's namespaces) is tried with
//!   [`written`]; while it is `todo!()`, the run keeps the previous stage's behaviour, so the
//!   earlier labs still pass. That is said on stderr only to a person at a terminal: the labs
//!   read stderr, where an engine prints nothing it was not asked for.

use std::any::Any;
use std::io::IsTerminal;
use std::panic::{self, AssertUnwindSafe};

/// The words `todo!()` starts its panic message with.
const TODO: &str = "not yet implemented";

/// A piece that is still `todo!()`: the text of its `todo!("…")`.
#[derive(Debug)]
pub struct NotWritten(pub String);

impl std::fmt::Display for NotWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skiff starter: not written yet: {}", self.0)
    }
}

impl std::error::Error for NotWritten {}

/// Keeps `todo!()`'s own panic message quiet (the starter says it better); any other panic is a
/// bug in a piece and prints as usual.
pub fn install() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if todo_text(info.payload()).is_none() {
            default(info);
        }
    }));
}

/// Runs `piece`: a `todo!()` inside it comes back as [`NotWritten`]; any other panic goes on.
pub fn written<T>(piece: impl FnOnce() -> T) -> Result<T, NotWritten> {
    panic::catch_unwind(AssertUnwindSafe(piece)).map_err(|payload| match todo_text(&*payload) {
        Some(text) => NotWritten(text),
        None => panic::resume_unwind(payload),
    })
}

/// Says, to a person at a terminal only, that a piece was skipped and what runs instead.
#[allow(dead_code)] // stage 01 has no earlier stage to fall back to
pub fn skipped(missing: &NotWritten, instead: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{missing}; {instead}");
    }
}

/// The text of a `todo!("…")` panic, or `None` for any other panic.
fn todo_text(payload: &(dyn Any + Send)) -> Option<String> {
    let text = match payload.downcast_ref::<String>() {
        Some(text) => text.as_str(),
        None => *payload.downcast_ref::<&str>()?,
    };
    let rest = text.strip_prefix(TODO)?;
    Some(rest.trim_start_matches(':').trim().to_string())
}
