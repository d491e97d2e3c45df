//! The functions a template can call: Go's builtins and the ones Docker adds.
//!
//! Go's (text/template "Functions"): `and or not eq ne lt le gt ge len index slice print printf
//! println html js urlquery`. Docker's (docker/cli templates/templates.go): `json join split
//! lower upper title pad truncate`. Each takes JSON values and says, in its error, what it
//! wanted; the evaluator adds which call failed and where.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::Value;

use super::exec::Datum;
use super::print;

/// A function a template names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    And,
    Or,
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Html,
    Js,
    Urlquery,
    Json,
    Join,
    Split,
    Lower,
    Upper,
    Title,
    Pad,
    Truncate,
}

const NAMES: &[(&str, Func)] = &[
    ("and", Func::And),
    ("or", Func::Or),
    ("not", Func::Not),
    ("eq", Func::Eq),
    ("ne", Func::Ne),
    ("lt", Func::Lt),
    ("le", Func::Le),
    ("gt", Func::Gt),
    ("ge", Func::Ge),
    ("len", Func::Len),
    ("index", Func::Index),
    ("slice", Func::Slice),
    ("print", Func::Print),
    ("printf", Func::Printf),
    ("println", Func::Println),
    ("html", Func::Html),
    ("js", Func::Js),
    ("urlquery", Func::Urlquery),
    ("json", Func::Json),
    ("join", Func::Join),
    ("split", Func::Split),
    ("lower", Func::Lower),
    ("upper", Func::Upper),
    ("title", Func::Title),
    ("pad", Func::Pad),
    ("truncate", Func::Truncate),
];

impl Func {
    /// The function a name stands for, if any.
    pub(super) fn named(name: &str) -> Option<Func> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The name a template uses.
    pub(super) fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }
}

/// Go's truth: false, 0, "", an empty list or map, and nil are false.
pub(super) fn truth(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// What picks a child out of a list or a map.
pub(super) enum Key<'k> {
    Name(&'k str),
    Position(usize),
}

/// A map's entry or a list's element, borrowed from the data where the value is borrowed.
pub(super) fn child<'a>(item: Cow<'a, Value>, key: &Key<'_>) -> Option<Cow<'a, Value>> {
    match item {
        Cow::Borrowed(value) => match key {
            Key::Name(name) => value.get(name),
            Key::Position(i) => value.get(i),
        }
        .map(Cow::Borrowed),
        Cow::Owned(value) => match (value, key) {
            (Value::Object(mut map), Key::Name(name)) => map.remove(*name),
            (Value::Array(mut items), Key::Position(i)) if *i < items.len() => {
                Some(items.swap_remove(*i))
            }
            _ => None,
        }
        .map(Cow::Owned),
    }
}

/// Calls `func` on its evaluated arguments. (The evaluator runs `and` and `or` itself, so
/// that they stop at the first argument that decides; their eager form here keeps the list
/// of functions whole.)
pub(super) fn call<'a>(func: Func, mut args: Vec<Cow<'a, Value>>) -> Result<Datum<'a>, String> {
    let owned = |v: Value| Ok(Datum::Json(Cow::Owned(v)));
    match func {
        Func::And | Func::Or => {
            let want = func == Func::Or;
            let last = args
                .len()
                .checked_sub(1)
                .ok_or("wrong number of args: want at least 1, got 0")?;
            let pick = args.iter().position(|a| truth(a) == want).unwrap_or(last);
            Ok(Datum::Json(args.swap_remove(pick)))
        }
        Func::Not => {
            let [x] = arity(&args)?;
            owned(Value::Bool(!truth(x)))
        }
        Func::Eq | Func::Ne => {
            let (first, rest) = args
                .split_first()
                .ok_or("missing argument for comparison")?;
            if rest.is_empty() {
                return Err("missing argument for comparison".into());
            }
            let mut equal = false;
            for other in rest {
                if equals(first, other)? {
                    equal = true;
                    break;
                }
            }
            owned(Value::Bool(equal == (func == Func::Eq)))
        }
        Func::Lt | Func::Le | Func::Gt | Func::Ge => {
            let [a, b] = arity(&args)?;
            let order = compare(a, b)?;
            let result = match func {
                Func::Lt => order == Ordering::Less,
                Func::Le => order != Ordering::Greater,
                Func::Gt => order == Ordering::Greater,
                _ => order != Ordering::Less,
            };
            owned(Value::Bool(result))
        }
        Func::Len => {
            let [x] = arity(&args)?;
            let len = match x {
                // Go counts a string's bytes.
                Value::String(s) => s.len(),
                Value::Array(items) => items.len(),
                Value::Object(map) => map.len(),
                // JSON's null is Docker's nil slice or map: empty.
                Value::Null => 0,
                other => return Err(format!("len of type {}", print::type_name(other))),
            };
            owned(Value::from(len))
        }
        Func::Index => index(args),
        Func::Slice => slice(args),
        Func::Print => owned(Value::String(print::sprint(&refs(&args)))),
        Func::Println => owned(Value::String(print::sprintln(&refs(&args)))),
        Func::Printf => {
            let (format, rest) = args
                .split_first()
                .ok_or("wrong number of args: want at least 1, got 0")?;
            let format = string(format)?;
            owned(Value::String(print::sprintf(format, &refs(rest))))
        }
        Func::Html => owned(Value::String(html(&text_of(&args)))),
        Func::Js => owned(Value::String(js(&text_of(&args)))),
        Func::Urlquery => owned(Value::String(urlquery(&text_of(&args)))),
        Func::Json => {
            let [x] = arity(&args)?;
            owned(Value::String(print::json(x)))
        }
        Func::Join => {
            let [items, sep] = arity(&args)?;
            owned(Value::String(join(items, string(sep)?)?))
        }
        Func::Split => {
            let [s, sep] = arity(&args)?;
            let (s, sep) = (string(s)?, string(sep)?);
            // Go splits around each character when the separator is empty.
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep).map(|p| Value::String(p.to_string())).collect()
            };
            owned(Value::Array(parts))
        }
        Func::Lower => {
            let [s] = arity(&args)?;
            owned(Value::String(string(s)?.to_lowercase()))
        }
        Func::Upper => {
            let [s] = arity(&args)?;
            owned(Value::String(string(s)?.to_uppercase()))
        }
        Func::Title => {
            let [s] = arity(&args)?;
            owned(Value::String(title(string(s)?)))
        }
        Func::Pad => {
            let [s, before, after] = arity(&args)?;
            let (s, before, after) = (string(s)?, count(before)?, count(after)?);
            // Docker pads only what is there, so an empty column stays empty.
            let padded = if s.is_empty() {
                String::new()
            } else {
                format!("{}{s}{}", " ".repeat(before), " ".repeat(after))
            };
            owned(Value::String(padded))
        }
        Func::Truncate => {
            let [s, n] = arity(&args)?;
            let (s, n) = (string(s)?, count(n)?);
            // Docker cuts bytes; stepping back to a character boundary keeps the text valid.
            let mut end = n.min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            owned(Value::String(s[..end].to_string()))
        }
    }
}

/// Exactly N arguments, as an array to destructure.
fn arity<'v, 'a, const N: usize>(args: &'v [Cow<'a, Value>]) -> Result<[&'v Value; N], String> {
    let refs: Vec<&Value> = args.iter().map(AsRef::as_ref).collect();
    refs.try_into()
        .map_err(|refs: Vec<&Value>| format!("wrong number of args: want {N}, got {}", refs.len()))
}

fn refs<'v>(args: &'v [Cow<'_, Value>]) -> Vec<&'v Value> {
    args.iter().map(AsRef::as_ref).collect()
}

fn string(value: &Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| wrong_type("string", value))
}

/// A non-negative integer: a count of spaces or bytes.
fn count(value: &Value) -> Result<usize, String> {
    match value.as_i64() {
        Some(n) if n < 0 => Err(format!("negative count {n}")),
        Some(n) => usize::try_from(n).map_err(|_| format!("count {n} too large")),
        None => Err(wrong_type("int", value)),
    }
}

fn wrong_type(expected: &str, got: &Value) -> String {
    format!(
        "wrong type for value; expected {expected}; got {}",
        print::type_name(got)
    )
}

/// Go's `html`, `js` and `urlquery` take any arguments and work on their printed text.
fn text_of(args: &[Cow<'_, Value>]) -> String {
    match args {
        [one] if one.is_string() => one.as_str().unwrap_or_default().to_string(),
        _ => print::sprint(&refs(args)),
    }
}

/// What `eq` may compare: Go's basic kinds. Numbers compare by value whatever their kind
/// (JSON does not say int or float64); nil equals only nil.
enum Basic<'v> {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'v str),
}

fn basic(value: &Value) -> Result<Basic<'_>, String> {
    Ok(match value {
        Value::Null => Basic::Nil,
        Value::Bool(b) => Basic::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Basic::Int(i128::from(i)),
            (None, Some(u)) => Basic::Int(i128::from(u)),
            (None, None) => Basic::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Basic::Str(s),
        other => {
            return Err(format!(
                "non-comparable type {}: {}",
                print::type_name(other),
                print::to_string(other)
            ));
        }
    })
}

fn equals(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (basic(a)?, basic(b)?) {
        (Basic::Nil, Basic::Nil) => true,
        (Basic::Nil, _) | (_, Basic::Nil) => false,
        (Basic::Bool(x), Basic::Bool(y)) => x == y,
        (Basic::Str(x), Basic::Str(y)) => x == y,
        (x, y) => match (number(&x), number(&y)) {
            (Some(x), Some(y)) => x.order(&y) == Some(Ordering::Equal),
            _ => return Err("incompatible types for comparison".into()),
        },
    })
}

/// Numbers as one kind for comparing: exact for two integers, as float64 otherwise.
enum Num {
    Int(i128),
    Float(f64),
}

fn number(b: &Basic<'_>) -> Option<Num> {
    match *b {
        Basic::Int(i) => Some(Num::Int(i)),
        Basic::Float(f) => Some(Num::Float(f)),
        _ => None,
    }
}

impl Num {
    fn order(&self, other: &Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    #[allow(clippy::cast_precision_loss)] // Comparing with a float64 is comparing as float64, as Go does.
    fn as_f64(&self) -> f64 {
        match self {
            Num::Int(i) => *i as f64,
            Num::Float(f) => *f,
        }
    }
}

fn compare(a: &Value, b: &Value) -> Result<Ordering, String> {
    let (x, y) = (basic(a)?, basic(b)?);
    match (&x, &y) {
        (Basic::Str(x), Basic::Str(y)) => Ok(x.cmp(y)),
        (Basic::Nil | Basic::Bool(_), _) | (_, Basic::Nil | Basic::Bool(_)) => {
            Err("invalid type for comparison".into())
        }
        _ => match (number(&x), number(&y)) {
            (Some(x), Some(y)) => x
                .order(&y)
                .ok_or_else(|| "invalid type for comparison".into()),
            _ => Err("incompatible types for comparison".into()),
        },
    }
}

/// `index x 1 2`: `x[1][2]`. A map's missing key is no value, as in Go over `map[string]any`.
fn index(mut args: Vec<Cow<'_, Value>>) -> Result<Datum<'_>, String> {
    if args.is_empty() {
        return Err("wrong number of args: want at least 1, got 0".into());
    }
    let keys = args.split_off(1);
    let mut item = args.swap_remove(0);
    for key in &keys {
        let found = match (item.as_ref(), key.as_ref()) {
            (Value::Array(items), k) => {
                let i = position(k, "slice/array")?;
                if i >= items.len() {
                    return Err(format!("index out of range: {i}"));
                }
                child(item, &Key::Position(i))
            }
            (Value::Object(_), Value::String(name)) => child(item, &Key::Name(name)),
            (Value::Object(_), k) => {
                return Err(format!(
                    "value has type {}; should be string",
                    print::type_name(k)
                ));
            }
            (Value::String(s), k) => {
                let i = position(k, "string")?;
                let byte = s
                    .as_bytes()
                    .get(i)
                    .ok_or_else(|| format!("index out of range: {i}"))?;
                Some(Cow::Owned(Value::from(*byte)))
            }
            (Value::Null, _) => return Err("index of untyped nil".into()),
            (other, _) => {
                return Err(format!(
                    "can't index item of type {}",
                    print::type_name(other)
                ));
            }
        };
        match found {
            Some(next) => item = next,
            None => return Ok(Datum::Missing),
        }
    }
    Ok(Datum::Json(item))
}

fn position(key: &Value, what: &str) -> Result<usize, String> {
    match key.as_i64() {
        Some(i) => usize::try_from(i).map_err(|_| format!("index out of range: {i}")),
        None => Err(format!(
            "cannot index {what} with type {}",
            print::type_name(key)
        )),
    }
}

/// `slice x 1 2`: `x[1:2]`; on a string, by bytes, as Go does.
fn slice(args: Vec<Cow<'_, Value>>) -> Result<Datum<'_>, String> {
    let (item, bounds) = args
        .split_first()
        .ok_or("wrong number of args: want at least 1, got 0")?;
    if bounds.len() > 3 {
        return Err(format!("too many slice indexes: {}", bounds.len()));
    }
    let bounds = bounds
        .iter()
        .map(|b| position(b, "slice"))
        .collect::<Result<Vec<_>, _>>()?;
    let len = match item.as_ref() {
        Value::String(s) if bounds.len() == 3 => {
            return Err(format!("cannot 3-index slice a string: {s:?}"));
        }
        Value::String(s) => s.len(),
        Value::Array(items) => items.len(),
        Value::Null => return Err("slice of untyped nil".into()),
        other => {
            return Err(format!(
                "can't slice item of type {}",
                print::type_name(other)
            ));
        }
    };
    let start = bounds.first().copied().unwrap_or(0);
    let end = bounds.get(1).copied().unwrap_or(len);
    // A third index is a capacity: it must be in range, and cuts nothing from the values.
    for &b in &bounds {
        if b > len {
            return Err(format!("index out of range: {b}"));
        }
    }
    if start > end {
        return Err(format!("invalid slice index: {start} > {end}"));
    }
    let sliced = match item.as_ref() {
        Value::String(s) => Value::String(
            s.get(start..end)
                .ok_or_else(|| format!("slice {start}:{end} splits a UTF-8 character in {s:?}"))?
                .to_string(),
        ),
        Value::Array(items) => Value::Array(items[start..end].to_vec()),
        _ => Value::Null,
    };
    Ok(Datum::Json(Cow::Owned(sliced)))
}

/// `join`: Docker's strings.Join, for a list of strings; null is an empty list.
fn join(items: &Value, sep: &str) -> Result<String, String> {
    let items = match items {
        Value::Array(items) => items.as_slice(),
        Value::Null => &[],
        other => return Err(wrong_type("[]string", other)),
    };
    let parts = items
        .iter()
        .map(|item| {
            item.as_str().ok_or_else(|| {
                format!(
                    "join wants strings, and the list holds a {}",
                    print::type_name(item)
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parts.join(sep))
}

/// strings.Title: the first letter of each word in upper case, the rest left alone.
fn title(s: &str) -> String {
    // Go's isSeparator: ASCII letters, digits and `_` join words; other ASCII separates them;
    // beyond ASCII, letters and digits join and spaces separate.
    let separates = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        }
    };
    let mut out = String::with_capacity(s.len());
    let mut prev = ' ';
    for c in s.chars() {
        let mut upper = c.to_uppercase();
        match (separates(prev), upper.next(), upper.next()) {
            (true, Some(u), None) => out.push(u),
            _ => out.push(c),
        }
        prev = c;
    }
    out
}

/// text/template's `html`: HTMLEscapeString.
fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// text/template's `js`: JSEscapeString.
fn js(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if u32::from(c) < 0x20 || (!c.is_ascii() && !print::is_print(c)) => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// text/template's `urlquery`: url.QueryEscape.
fn urlquery(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}
