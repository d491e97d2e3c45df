//! The evaluator: walks the tree over the data and writes the output.
//!
//! The dot starts as the whole object and moves with `with` and `range`; `$` stays the whole
//! object. Values are borrowed from the data while they can be (a field of a field of the
//! object) and owned once a function has made them, so a template over a large `inspect`
//! object copies only what it prints.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use super::funcs::{self, Func, Key};
use super::parse::{Branch, Cmd, Expr, ExprKind, Node, Pipe};
use super::{FormatError, located, print};

/// A value in a template: JSON, or nothing at all where a map has no such key (Go's invalid
/// value, printed `<no value>`), which is not the same as JSON's null (printed `<nil>`).
#[derive(Debug, Clone)]
pub(super) enum Datum<'a> {
    Missing,
    Json(Cow<'a, Value>),
}

impl<'a> Datum<'a> {
    fn truth(&self) -> bool {
        match self {
            Datum::Missing => false,
            Datum::Json(value) => funcs::truth(value),
        }
    }

    /// As a function's argument: Go passes nil where a map had no entry.
    fn into_arg(self) -> Cow<'a, Value> {
        match self {
            Datum::Missing => Cow::Owned(Value::Null),
            Datum::Json(value) => value,
        }
    }
}

/// Runs a parsed template with `data` as the dot and `$`. When `data` is a list's row,
/// `json` of the row itself is [`print::json_marshal`]'s, as Docker's row's own JSON is.
pub(super) fn execute<'t>(
    src: &'t str,
    nodes: &'t [Node],
    data: &Value,
    is_row: bool,
) -> Result<String, FormatError> {
    let root = Datum::Json(Cow::Borrowed(data));
    let mut exec = Exec {
        src,
        vars: vec![("$", root.clone())],
        out: String::new(),
        row: is_row.then_some(data),
    };
    exec.walk(&root, nodes)?;
    Ok(exec.out)
}

/// What a range visits: (index or key, element).
type Pairs<'a> = Vec<(Datum<'a>, Datum<'a>)>;

/// How a list ended: at its end, or at `{{break}}` or `{{continue}}` for the enclosing range.
enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'a, 't> {
    src: &'t str,
    /// Variables in scope, innermost last.
    vars: Vec<(&'t str, Datum<'a>)>,
    out: String,
    /// The list row the template runs over, if it is one.
    row: Option<&'a Value>,
}

impl<'a, 't> Exec<'a, 't> {
    /// Go's message: where, which node, what went wrong.
    fn fail(&self, pos: usize, node: &dyn fmt::Display, msg: impl fmt::Display) -> FormatError {
        located(
            self.src,
            pos,
            format_args!("executing \"\" at <{node}>: {msg}"),
        )
    }

    fn walk(&mut self, dot: &Datum<'a>, nodes: &'t [Node]) -> Result<Flow, FormatError> {
        for node in nodes {
            let flow = match node {
                Node::Text(text) => {
                    self.out.push_str(text);
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let value = self.pipeline(dot, pipe)?;
                    // An action that sets a variable prints nothing.
                    if pipe.decl.is_empty() {
                        self.print(&value);
                    } else {
                        self.declare(pipe, value);
                    }
                    Flow::Normal
                }
                Node::If(branch) => self.if_or_with(dot, branch, false)?,
                Node::With(branch) => self.if_or_with(dot, branch, true)?,
                Node::Range(branch) => self.range(dot, branch)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn print(&mut self, value: &Datum<'_>) {
        match value {
            Datum::Missing => self.out.push_str("<no value>"),
            Datum::Json(value) => print::write_value(&mut self.out, value),
        }
    }

    fn declare(&mut self, pipe: &'t Pipe, value: Datum<'a>) {
        for name in &pipe.decl {
            if pipe.is_assign {
                // The parser made sure the variable exists.
                if let Some(slot) = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|slot| slot.0 == name.as_str())
                {
                    slot.1 = value.clone();
                }
            } else {
                self.vars.push((name.as_str(), value.clone()));
            }
        }
    }

    fn if_or_with(
        &mut self,
        dot: &Datum<'a>,
        branch: &'t Branch,
        with: bool,
    ) -> Result<Flow, FormatError> {
        let mark = self.vars.len();
        let value = self.pipeline(dot, &branch.pipe)?;
        if !branch.pipe.decl.is_empty() {
            self.declare(&branch.pipe, value.clone());
        }
        let flow = match (value.truth(), with) {
            (true, true) => self.walk(&value, &branch.list)?,
            (true, false) => self.walk(dot, &branch.list)?,
            (false, _) => self.walk(dot, &branch.else_list)?,
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    /// `range`: over a list's elements, a map's values in key order, or the numbers below an
    /// integer; the else list runs when there is nothing to range over.
    fn range(&mut self, dot: &Datum<'a>, branch: &'t Branch) -> Result<Flow, FormatError> {
        let mark = self.vars.len();
        let pipe = &branch.pipe;
        let value = self.pipeline(dot, pipe)?;
        // As in Go, the variables first hold the whole value (what the else list sees), then
        // each key and element in turn.
        self.declare(pipe, value.clone());
        let body_mark = self.vars.len();
        let items = match value {
            // A missing value is Go's invalid value: nothing to range over, and no error.
            Datum::Missing => Vec::new(),
            Datum::Json(value) => self.items(value, pipe)?,
        };
        if items.is_empty() {
            let flow = self.walk(dot, &branch.else_list)?;
            self.vars.truncate(mark);
            return Ok(flow);
        }
        for (key, item) in items {
            if pipe.is_assign {
                self.declare(pipe, item.clone());
            } else if let Some(slots) = self.vars.get_mut(mark..body_mark) {
                match slots {
                    [(_, elem)] => *elem = item.clone(),
                    [(_, k), (_, elem)] => {
                        *k = key;
                        *elem = item.clone();
                    }
                    _ => {}
                }
            }
            let flow = self.walk(&item, &branch.list)?;
            self.vars.truncate(body_mark);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    /// The (key, element) pairs a range visits.
    fn items(&self, value: Cow<'a, Value>, pipe: &Pipe) -> Result<Pairs<'a>, FormatError> {
        let json = |v: Value| Datum::Json(Cow::Owned(v));
        Ok(match value {
            Cow::Borrowed(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (json(i.into()), Datum::Json(Cow::Borrowed(v))))
                .collect(),
            Cow::Owned(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (json(i.into()), json(v)))
                .collect(),
            Cow::Borrowed(Value::Object(map)) => print::sorted(map)
                .into_iter()
                .map(|(k, v)| {
                    (
                        json(Value::String(k.clone())),
                        Datum::Json(Cow::Borrowed(v)),
                    )
                })
                .collect(),
            Cow::Owned(Value::Object(map)) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                entries
                    .into_iter()
                    .map(|(k, v)| (json(Value::String(k)), json(v)))
                    .collect()
            }
            Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null) => Vec::new(),
            // Go 1.22 ranges over an integer: 0, 1, … n-1.
            value => match value.as_i64() {
                Some(n) => (0..n.max(0))
                    .map(|i| (json(i.into()), json(i.into())))
                    .collect(),
                None => {
                    let pos = pipe.cmds.first().map_or(0, |c| c.pos);
                    return Err(self.fail(
                        pos,
                        pipe,
                        format_args!("range can't iterate over {}", print::to_string(&value)),
                    ));
                }
            },
        })
    }

    /// Each command's value becomes the last argument of the next.
    fn pipeline(&mut self, dot: &Datum<'a>, pipe: &'t Pipe) -> Result<Datum<'a>, FormatError> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(dot, cmd, value)?);
        }
        Ok(value.unwrap_or(Datum::Missing))
    }

    fn command(
        &mut self,
        dot: &Datum<'a>,
        cmd: &'t Cmd,
        piped: Option<Datum<'a>>,
    ) -> Result<Datum<'a>, FormatError> {
        let Some((first, rest)) = cmd.args.split_first() else {
            return Ok(Datum::Missing);
        };
        if let ExprKind::Func(func) = first.kind {
            return self.call(dot, cmd.pos, cmd, func, rest, piped);
        }
        if !rest.is_empty() || piped.is_some() {
            return Err(self.fail(
                cmd.pos,
                cmd,
                format_args!("can't give argument to non-function {first}"),
            ));
        }
        self.arg(dot, first)
    }

    fn arg(&mut self, dot: &Datum<'a>, expr: &'t Expr) -> Result<Datum<'a>, FormatError> {
        let json = |v: Value| Ok(Datum::Json(Cow::Owned(v)));
        match &expr.kind {
            ExprKind::Dot => Ok(dot.clone()),
            ExprKind::Nil => json(Value::Null),
            ExprKind::Bool(b) => json(Value::Bool(*b)),
            ExprKind::Number { value, .. } => json(Value::Number(value.clone())),
            ExprKind::Str { value, .. } => json(Value::String(value.clone())),
            ExprKind::Field(names) => self.fields(dot.clone(), names, expr),
            ExprKind::Variable { name, fields } => {
                let value = self
                    .vars
                    .iter()
                    .rev()
                    .find(|slot| slot.0 == name.as_str())
                    .map(|slot| slot.1.clone());
                let value = value.ok_or_else(|| {
                    self.fail(expr.pos, expr, format_args!("undefined variable: {name}"))
                })?;
                self.fields(value, fields, expr)
            }
            ExprKind::Paren { pipe, fields } => {
                let value = self.pipeline(dot, pipe)?;
                self.fields(value, fields, expr)
            }
            // A function named as an argument is called with no arguments, as in Go.
            ExprKind::Func(func) => self.call(dot, expr.pos, expr, *func, &[], None),
        }
    }

    /// `.A.B` from a value: map lookups. A missing key gives no value, and so do its fields;
    /// fields of null or of a string are errors, as Go's are.
    fn fields(
        &self,
        base: Datum<'a>,
        names: &[String],
        expr: &Expr,
    ) -> Result<Datum<'a>, FormatError> {
        let mut current = base;
        for name in names {
            let Datum::Json(value) = current else {
                return Ok(Datum::Missing);
            };
            current = match value.as_ref() {
                Value::Object(_) => {
                    funcs::child(value, &Key::Name(name)).map_or(Datum::Missing, Datum::Json)
                }
                Value::Null => {
                    return Err(self.fail(
                        expr.pos,
                        expr,
                        format_args!("nil pointer evaluating interface {{}}.{name}"),
                    ));
                }
                other => {
                    let kind = print::type_name(other);
                    return Err(self.fail(
                        expr.pos,
                        expr,
                        format_args!("can't evaluate field {name} in type {kind}"),
                    ));
                }
            };
        }
        Ok(current)
    }

    fn call(
        &mut self,
        dot: &Datum<'a>,
        pos: usize,
        node: &dyn fmt::Display,
        func: Func,
        args: &'t [Expr],
        piped: Option<Datum<'a>>,
    ) -> Result<Datum<'a>, FormatError> {
        // `and` and `or` stop at the first argument that decides, as Go's do since 1.18, so
        // `{{if and .A .A.B}}` does not look at .A.B when .A is missing.
        if matches!(func, Func::And | Func::Or) {
            let decides = func == Func::Or;
            let mut last = None;
            for arg in args {
                let value = self.arg(dot, arg)?;
                if value.truth() == decides {
                    return Ok(value);
                }
                last = Some(value);
            }
            return piped.or(last).ok_or_else(|| {
                self.fail(
                    pos,
                    node,
                    format_args!(
                        "error calling {}: wrong number of args: want at least 1, got 0",
                        func.name()
                    ),
                )
            });
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.arg(dot, arg)?.into_arg());
        }
        if let Some(piped) = piped {
            values.push(piped.into_arg());
        }
        if func == Func::Json
            && let (Some(row), [Cow::Borrowed(value)]) = (self.row, values.as_slice())
            && std::ptr::eq(row, *value)
        {
            return Ok(Datum::Json(Cow::Owned(Value::String(print::json_marshal(
                row,
            )))));
        }
        funcs::call(func, values).map_err(|msg| {
            self.fail(
                pos,
                node,
                format_args!("error calling {}: {msg}", func.name()),
            )
        })
    }
}
