//! How Go writes values: fmt's `%v` and `Printf`, strconv's quoting, encoding/json.
//!
//! A template prints what Go's fmt package would print for the value: `[a b]` for a list,
//! `map[k:v]` for an object, `1e+06` for a large float. The rules live here, apart from the
//! template machinery, because they are the part a reader compares with Go's output.
//! Integers print as integers: JSON does not say `int` or `float64`, so a number written without
//! a fraction or exponent is taken for the Go `int` it is in Docker's structs (`State.Pid`).

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// Go's type name for a value from JSON, as messages and `%!d(string=…)` show it.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if is_integer(n) => "int",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64()
}

/// Objects in Go's order: maps print and range with their keys sorted.
pub(super) fn sorted(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// `%v`: what `{{.X}}` prints.
pub(super) fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (key, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_value(out, item);
            }
            out.push(']');
        }
    }
}

/// `%v` of one value, as a string.
pub(super) fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn number(n: &Number) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (None, Some(u), _) => u.to_string(),
        (None, None, Some(f)) => float(f),
        (None, None, None) => n.to_string(),
    }
}

/// A float's decimal digits and exponent, the way strconv works with them: `digits` has no
/// leading zeros, and the value is `0.d1d2d3… × 10^(exp+1)`, i.e. `d1.d2d3… × 10^exp`.
struct Decimal {
    negative: bool,
    digits: String,
    exp: i32,
}

impl Decimal {
    /// From Rust's `{:e}`, which is already the shortest text that reads back the same float,
    /// as Go's strconv picks with precision -1.
    fn shortest(f: f64) -> Decimal {
        Decimal::from_scientific(&format!("{f:e}"))
    }

    /// Rounded to `significant` digits, trailing zeros dropped (as strconv's `%g` does).
    fn rounded(f: f64, significant: usize) -> Decimal {
        let mut d = Decimal::from_scientific(&format!("{:.*e}", significant.saturating_sub(1), f));
        let kept = d.digits.trim_end_matches('0').len().max(1);
        d.digits.truncate(kept);
        d
    }

    fn from_scientific(text: &str) -> Decimal {
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
        Decimal {
            negative,
            digits: mantissa.chars().filter(char::is_ascii_digit).collect(),
            exp: exp.parse().unwrap_or(0),
        }
    }

    fn sign(&self) -> &'static str {
        if self.negative { "-" } else { "" }
    }

    /// `1.5e+06`: one digit, the rest after the point, an exponent of at least two digits.
    fn exponent_form(&self) -> String {
        let (first, rest) = self.digits.split_at(self.digits.len().min(1));
        let point = if rest.is_empty() { "" } else { "." };
        let exp_sign = if self.exp < 0 { '-' } else { '+' };
        format!(
            "{}{first}{point}{rest}e{exp_sign}{:02}",
            self.sign(),
            self.exp.unsigned_abs()
        )
    }

    /// `1500000`, `0.0015`: the digits placed around the point, as few as needed.
    fn fixed_form(&self) -> String {
        let digits = self.digits.as_str();
        let n = i64::try_from(digits.len()).unwrap_or(i64::MAX);
        let point = i64::from(self.exp) + 1;
        let body = if digits == "0" {
            "0".to_string()
        } else if point <= 0 {
            format!(
                "0.{}{digits}",
                "0".repeat(usize::try_from(-point).unwrap_or(0))
            )
        } else if point >= n {
            format!(
                "{digits}{}",
                "0".repeat(usize::try_from(point - n).unwrap_or(0))
            )
        } else {
            let (int, frac) = digits.split_at(usize::try_from(point).unwrap_or(0));
            format!("{int}.{frac}")
        };
        format!("{}{body}", self.sign())
    }

    /// Go's `%g` choice: the exponent form when the exponent is below -4 or at least `eprec`.
    fn g_form(&self, eprec: i32) -> String {
        if self.exp < -4 || self.exp >= eprec {
            self.exponent_form()
        } else {
            self.fixed_form()
        }
    }
}

/// `%v` of a float64: strconv's `'g'` with the shortest digits, which switches to an exponent
/// from 1e+06 on (so Docker prints a float `1000000` as `1e+06`).
pub(super) fn float(f: f64) -> String {
    Decimal::shortest(f).g_form(6)
}

/// `%g` with a precision: that many significant digits.
fn float_g(f: f64, precision: usize) -> String {
    let d = Decimal::rounded(f, precision.max(1));
    let mut eprec = i32::try_from(precision.max(1)).unwrap_or(i32::MAX);
    let nd = i32::try_from(d.digits.len()).unwrap_or(i32::MAX);
    // strconv's rule, with `point` for its `dp`: fewer digits than the precision, all before
    // the point, print without an exponent.
    let point = d.exp.saturating_add(1);
    if eprec > nd && nd >= point {
        eprec = nd;
    }
    d.g_form(eprec)
}

/// `%e` with a precision: Rust rounds the same way, Go writes the exponent with a sign and two
/// digits.
fn float_e(f: f64, precision: usize) -> String {
    Decimal::from_scientific(&format!("{f:.precision$e}")).exponent_form()
}

/// strconv.Quote: a Go string literal, as `%q` prints it.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// Close to Go's unicode.IsPrint: no control characters, and no spaces but the ASCII one.
pub(super) fn is_print(c: char) -> bool {
    !(c.is_control() || (c.is_whitespace() && c != ' ') || matches!(c, '\u{ad}' | '\u{feff}'))
}

/// Docker's `json` function: Go's encoding/json, compact, keys sorted. Docker turns off
/// `SetEscapeHTML`, so `<`, `>` and `&` stay as they are (docker/cli templates/templates.go).
pub(super) fn json(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

/// encoding/json's `Marshal`, which also escapes `<`, `>` and `&` (`\u003c`...) for HTML:
/// what docker/cli's list formatters hand back for a whole row (`formatter.MarshalJSON`), so
/// it is what `--format json` and `{{json .}}` print for `ps`, `images`, `volume ls`... Outside
/// strings JSON has none of the three, so each one met is inside a string.
pub(super) fn json_marshal(value: &Value) -> String {
    let mut out = String::new();
    for c in json(value).chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !is_integer(n) => out.push_str(&json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, key);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// encoding/json's float64: plain digits from 1e-6 up to 1e21, an exponent outside, and no
/// zero padding in a negative exponent (`1e-7`).
fn json_float(f: f64) -> String {
    let d = Decimal::shortest(f);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = d.exponent_form();
        match text.rsplit_once("e-0") {
            Some((mantissa, exp)) => format!("{mantissa}e-{exp}"),
            None => text,
        }
    } else {
        d.fixed_form()
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // Valid JSON, but not valid JavaScript: Go escapes them always.
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// fmt.Sprint: spaces between operands when neither is a string.
pub(super) fn sprint(args: &[&Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && !arg.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        write_value(&mut out, arg);
    }
    out
}

/// fmt.Sprintln: spaces between all operands, and a newline.
pub(super) fn sprintln(args: &[&Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_value(&mut out, arg);
    }
    out.push('\n');
    out
}

/// The flags, width and precision between `%` and the verb.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// fmt.Sprintf for the verbs templates use: `%v %s %d %q %t %x %X %f %e %g %c %%`, with
/// flags, widths and precisions. Wrong verbs, missing and extra arguments are written into the
/// output the way Go writes them (`%!d(string=abc)`, `%!s(MISSING)`, `%!(EXTRA int=1)`).
pub(super) fn sprintf(format: &str, args: &[&Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut rest = format;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let mut chars = rest[at + 1..].chars();
        let mut spec = Spec::default();
        let mut c = chars.next();
        while let Some(flag) = c {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                '#' => {}
                _ => break,
            }
            c = chars.next();
        }
        let mut star = |c: &mut Option<char>, chars: &mut std::str::Chars<'_>| -> Option<usize> {
            if *c == Some('*') {
                *c = chars.next();
                let n = args
                    .get(next)
                    .and_then(|v| v.as_u64())
                    .and_then(|n| usize::try_from(n).ok());
                next += 1;
                return n;
            }
            let mut n: Option<usize> = None;
            while let Some(d) = c.and_then(|c| c.to_digit(10)) {
                n = Some(
                    n.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(usize::try_from(d).unwrap_or(0)),
                );
                *c = chars.next();
            }
            n
        };
        spec.width = star(&mut c, &mut chars);
        if c == Some('.') {
            c = chars.next();
            spec.precision = Some(star(&mut c, &mut chars).unwrap_or(0));
        }
        rest = chars.as_str();
        let Some(verb) = c else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next) {
            Some(arg) => format_one(&mut out, arg, verb, &spec),
            None => {
                let _ = write!(out, "%!{verb}(MISSING)");
            }
        }
        next += 1;
    }
    out.push_str(rest);
    if let Some(extra) = args.get(next..).filter(|extra| !extra.is_empty()) {
        out.push_str("%!(EXTRA ");
        for (i, arg) in extra.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}={}", type_name(arg), to_string(arg));
        }
        out.push(')');
    }
    out
}

/// One verb applied to one value. Go applies the verb to each element of a list or map.
fn format_one(out: &mut String, value: &Value, verb: char, spec: &Spec) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_one(out, item, verb, spec);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (key, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_one(out, &Value::String(key.clone()), verb, spec);
                out.push(':');
                format_one(out, item, verb, spec);
            }
            out.push(']');
        }
        _ => match scalar(value, verb, spec) {
            Some((body, numeric)) => pad(out, &body, numeric, spec),
            None if value.is_null() => {
                let _ = write!(out, "%!{verb}(<nil>)");
            }
            None => {
                let _ = write!(out, "%!{verb}({}={})", type_name(value), to_string(value));
            }
        },
    }
}

/// The text of a scalar under a verb, and whether it is a number (zero padding goes after the
/// sign); None when Go would call the verb wrong for the type.
fn scalar(value: &Value, verb: char, spec: &Spec) -> Option<(String, bool)> {
    let signed = |text: String, negative: bool| {
        if negative {
            text
        } else if spec.plus {
            format!("+{text}")
        } else if spec.space {
            format!(" {text}")
        } else {
            text
        }
    };
    match (value, verb) {
        (Value::Null, 'v') => Some(("<nil>".to_string(), false)),
        (Value::Bool(b), 'v' | 't') => Some((b.to_string(), false)),
        (Value::String(s), 'v' | 's') => {
            Some((truncate_chars(s, spec.precision).to_string(), false))
        }
        (Value::String(s), 'q') => Some((quote(truncate_chars(s, spec.precision)), false)),
        (Value::String(s), 'x' | 'X') => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            Some((if verb == 'X' { hex.to_uppercase() } else { hex }, false))
        }
        (Value::Number(n), _) if is_integer(n) => {
            let (negative, magnitude) = match n.as_i64() {
                Some(i) => (i < 0, i.unsigned_abs()),
                None => (false, n.as_u64().unwrap_or(0)),
            };
            let digits = match verb {
                'v' | 'd' => magnitude.to_string(),
                'x' => format!("{magnitude:x}"),
                'X' => format!("{magnitude:X}"),
                'o' => format!("{magnitude:o}"),
                'b' => format!("{magnitude:b}"),
                'c' => {
                    let c = u32::try_from(magnitude).ok().and_then(char::from_u32)?;
                    return Some((c.to_string(), false));
                }
                _ => return None,
            };
            let text = if negative {
                format!("-{digits}")
            } else {
                digits
            };
            Some((signed(text, negative), true))
        }
        (Value::Number(n), _) => {
            let f = n.as_f64()?;
            let text = match (verb, spec.precision) {
                ('v' | 'g', None) => float(f),
                ('g', Some(p)) => float_g(f, p),
                ('G', p) => p.map_or_else(|| float(f), |p| float_g(f, p)).to_uppercase(),
                ('f' | 'F', p) => format!("{f:.*}", p.unwrap_or(6)),
                ('e', p) => float_e(f, p.unwrap_or(6)),
                ('E', p) => float_e(f, p.unwrap_or(6)).to_uppercase(),
                _ => return None,
            };
            Some((signed(text, f.is_sign_negative()), true))
        }
        _ => None,
    }
}

fn truncate_chars(s: &str, precision: Option<usize>) -> &str {
    match precision.and_then(|p| s.char_indices().nth(p)) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// Width: Go counts characters, pads with spaces on the left (or the right with `-`), and with
/// zeros after the sign for numbers with `0`.
fn pad(out: &mut String, body: &str, numeric: bool, spec: &Spec) {
    let len = body.chars().count();
    let fill = spec.width.unwrap_or(0).saturating_sub(len);
    if spec.minus {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        let split = usize::from(body.starts_with(['-', '+', ' ']));
        out.push_str(&body[..split]);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(&body[split..]);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}
