//! The lexer: template text in, tokens out.
//!
//! Outside `{{ }}` everything is text. Inside an action the lexer reads Go's small language:
//! fields (`.Name`), variables (`$x`), identifiers (functions and keywords), strings, numbers
//! and punctuation. Trim markers (`{{- ` and ` -}}`) and comments (`{{/* */}}`) are dealt with
//! here, so the parser never sees them. Spaces are not tokens: each token keeps where it starts
//! and ends, and the parser tells `.A.B` (one chain) from `.A .B` (two arguments) by whether one
//! token ends where the next begins.

use super::{FormatError, located};

/// The deepest `(` nesting accepted: a garbled or hostile format must not overflow the stack of
/// the recursive parser.
pub(super) const MAX_DEPTH: usize = 100;

/// One token and the byte range of the template it came from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: Kind,
    pub pos: usize,
    pub end: usize,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    /// Text outside actions, with trim markers already applied.
    Text(String),
    /// `{{`
    Open,
    /// `}}`
    Close,
    /// `.Name`, holding `Name`.
    Field(String),
    /// `.` alone: the cursor.
    Dot,
    /// `$` or `$name`, holding the `$`.
    Variable(String),
    /// A function name or keyword (`if`, `range`, `true`, `nil`…).
    Ident(String),
    /// A string literal, decoded; `quoted` is the text as written, for messages.
    Str { value: String, quoted: String },
    /// A number or character constant, decoded; `text` as written.
    Number {
        value: serde_json::Number,
        text: String,
    },
    /// `|`
    Pipe,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    /// `,`
    Comma,
    /// The end of the template.
    Eof,
}

/// Splits `src` into tokens, ending with [`Kind::Eof`].
pub(super) fn lex(src: &str) -> Result<Vec<Token>, FormatError> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    tokens: Vec<Token>,
}

/// Go's trim markers need a space beside the dash, so that `{{-3}}` stays the number -3.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn push(&mut self, kind: Kind, pos: usize) {
        self.tokens.push(Token {
            kind,
            pos,
            end: self.pos,
        });
    }

    fn error(&self, pos: usize, msg: impl std::fmt::Display) -> FormatError {
        located(self.src, pos, msg)
    }

    /// Text, then an action, until the input runs out.
    fn run(&mut self) -> Result<(), FormatError> {
        loop {
            let start = self.pos;
            let Some(offset) = self.rest().find("{{") else {
                let text = self.rest().to_string();
                self.pos = self.src.len();
                if !text.is_empty() {
                    self.push(Kind::Text(text), start);
                }
                self.push(Kind::Eof, self.src.len());
                return Ok(());
            };
            let open = start + offset;
            let after = &self.src[open + 2..];
            let trim_left = after.starts_with('-') && after[1..].starts_with(is_space);
            let mut text = &self.src[start..open];
            if trim_left {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                self.tokens.push(Token {
                    kind: Kind::Text(text.to_string()),
                    pos: start,
                    end: open,
                });
            }
            self.pos = open + 2;
            if trim_left {
                // Step over the dash; the space after it belongs to the action, unless a
                // comment follows it (`{{- /* … */ -}}`).
                self.pos += 1;
                if self.rest()[1..].starts_with("/*") {
                    self.pos += 1;
                }
            }
            if self.rest().starts_with("/*") {
                self.comment(open)?;
            } else {
                self.tokens.push(Token {
                    kind: Kind::Open,
                    pos: open,
                    end: open + 2,
                });
                self.action()?;
            }
        }
    }

    /// If the input is at `}}` or ` -}}`, steps past it (and past the whitespace a trim marker
    /// removes) and returns true.
    fn close(&mut self) -> bool {
        let rest = self.rest();
        let trim = rest.starts_with(is_space) && rest[1..].starts_with("-}}");
        let len = if trim {
            4
        } else if rest.starts_with("}}") {
            2
        } else {
            return false;
        };
        let at = self.pos + len - 2;
        self.pos += len;
        self.tokens.push(Token {
            kind: Kind::Close,
            pos: at,
            end: self.pos,
        });
        if trim {
            let skipped = self.rest().len() - self.rest().trim_start_matches(is_space).len();
            self.pos += skipped;
        }
        true
    }

    /// `/* … */`, which must fill the whole action.
    fn comment(&mut self, open: usize) -> Result<(), FormatError> {
        let Some(end) = self.rest().find("*/") else {
            return Err(self.error(open, "unclosed comment"));
        };
        self.pos += end + 2;
        if !self.close() {
            return Err(self.error(open, "comment ends before closing delimiter"));
        }
        // A comment leaves no token: drop the Close that `close` pushed.
        self.tokens.pop();
        Ok(())
    }

    /// The tokens of one action, up to and including its `}}`.
    fn action(&mut self) -> Result<(), FormatError> {
        let mut depth = 0usize;
        loop {
            let pos = self.pos;
            if self.close() {
                if depth > 0 {
                    return Err(self.error(pos, "unclosed left paren"));
                }
                return Ok(());
            }
            let Some(c) = self.bump() else {
                return Err(self.error(pos, "unclosed action"));
            };
            match c {
                c if is_space(c) => {}
                '|' => self.push(Kind::Pipe, pos),
                ',' => self.push(Kind::Comma, pos),
                '=' => self.push(Kind::Assign, pos),
                ':' => {
                    if self.bump() != Some('=') {
                        return Err(self.error(pos, "expected :="));
                    }
                    self.push(Kind::Declare, pos);
                }
                '(' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(self.error(pos, "parentheses nested too deeply"));
                    }
                    self.push(Kind::LParen, pos);
                }
                ')' => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| self.error(pos, "unexpected right paren"))?;
                    self.push(Kind::RParen, pos);
                }
                '"' => self.quoted(pos)?,
                '`' => self.raw_quoted(pos)?,
                '\'' => self.char_constant(pos)?,
                '$' => {
                    self.alnum_run();
                    self.check_terminator(pos)?;
                    let name = self.src[pos..self.pos].to_string();
                    self.push(Kind::Variable(name), pos);
                }
                '.' if self.peek().is_some_and(|c| c.is_ascii_digit()) => self.number(pos)?,
                '.' => {
                    self.alnum_run();
                    self.check_terminator(pos)?;
                    if self.pos == pos + 1 {
                        self.push(Kind::Dot, pos);
                    } else {
                        let name = self.src[pos + 1..self.pos].to_string();
                        self.push(Kind::Field(name), pos);
                    }
                }
                '+' | '-' | '0'..='9' => self.number(pos)?,
                c if is_alnum(c) => {
                    self.alnum_run();
                    self.check_terminator(pos)?;
                    let word = self.src[pos..self.pos].to_string();
                    self.push(Kind::Ident(word), pos);
                }
                c => {
                    return Err(
                        self.error(pos, format_args!("unrecognized character in action: {c:?}"))
                    );
                }
            }
        }
    }

    fn alnum_run(&mut self) {
        while self.peek().is_some_and(is_alnum) {
            self.bump();
        }
    }

    /// After a name comes a space, punctuation or the end of the action; `.A"x"` is a mistake.
    fn check_terminator(&self, start: usize) -> Result<(), FormatError> {
        match self.peek() {
            None => Ok(()),
            Some(c) if is_space(c) || matches!(c, '.' | ',' | '|' | ':' | ')' | '(' | '=') => {
                Ok(())
            }
            Some('}') if self.rest().starts_with("}}") => Ok(()),
            Some(c) => Err(self.error(
                start,
                format_args!("bad character {c:?} after {:?}", &self.src[start..self.pos]),
            )),
        }
    }

    /// A number as Go writes it: sign, `0x`/`0o`/`0b` prefixes, underscores, a fraction, an
    /// exponent. Gathered loosely here and judged by [`parse_number`].
    fn number(&mut self, start: usize) -> Result<(), FormatError> {
        let mut prev = self.src[start..self.pos].chars().last().unwrap_or(' ');
        while let Some(c) = self.peek() {
            let exponent_sign = matches!(c, '+' | '-') && matches!(prev, 'e' | 'E' | 'p' | 'P');
            if !(is_alnum(c) || c == '.' || exponent_sign) {
                break;
            }
            prev = c;
            self.bump();
        }
        let text = &self.src[start..self.pos];
        let value = parse_number(text)
            .ok_or_else(|| self.error(start, format_args!("bad number syntax: {text:?}")))?;
        let text = text.to_string();
        self.push(Kind::Number { value, text }, start);
        Ok(())
    }

    fn quoted(&mut self, start: usize) -> Result<(), FormatError> {
        loop {
            match self.bump() {
                Some('\\') => {
                    if self.bump().is_none_or(|c| c == '\n') {
                        break;
                    }
                }
                Some('"') => {
                    let quoted = &self.src[start..self.pos];
                    let value = unquote(&quoted[1..quoted.len() - 1])
                        .map_err(|e| self.error(start, format_args!("{e} in {quoted}")))?;
                    let quoted = quoted.to_string();
                    self.push(Kind::Str { value, quoted }, start);
                    return Ok(());
                }
                Some('\n') | None => break,
                Some(_) => {}
            }
        }
        Err(self.error(start, "unterminated quoted string"))
    }

    fn raw_quoted(&mut self, start: usize) -> Result<(), FormatError> {
        let Some(end) = self.rest().find('`') else {
            return Err(self.error(start, "unterminated raw quoted string"));
        };
        // Go drops carriage returns from raw strings, so a template saved on Windows reads the same.
        let value = self.rest()[..end].replace('\r', "");
        self.pos += end + 1;
        let quoted = self.src[start..self.pos].to_string();
        self.push(Kind::Str { value, quoted }, start);
        Ok(())
    }

    /// `'a'`, `'\n'`: a number, the character's code point, as in Go.
    fn char_constant(&mut self, start: usize) -> Result<(), FormatError> {
        loop {
            match self.bump() {
                Some('\\') => {
                    self.bump();
                }
                Some('\'') => break,
                Some('\n') | None => {
                    return Err(self.error(start, "unterminated character constant"));
                }
                Some(_) => {}
            }
        }
        let text = &self.src[start..self.pos];
        let bad = || self.error(start, format_args!("malformed character constant: {text}"));
        let inner = &text[1..text.len() - 1];
        let code = match inner.strip_prefix('\\') {
            Some(_) => {
                let mut bytes = Vec::new();
                let mut chars = inner.chars().peekable();
                unescape(&mut chars, &mut bytes, '\'').map_err(|_| bad())?;
                if chars.next().is_some() {
                    return Err(bad());
                }
                match std::str::from_utf8(&bytes) {
                    // `'\xff'` and `'\377'` are the byte's value, not a character.
                    Ok(s) if s.chars().count() == 1 => s.chars().next().map_or(0, u32::from),
                    _ if bytes.len() == 1 => u32::from(bytes[0]),
                    _ => return Err(bad()),
                }
            }
            None => {
                let mut chars = inner.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => u32::from(c),
                    _ => return Err(bad()),
                }
            }
        };
        let text = text.to_string();
        self.push(
            Kind::Number {
                value: code.into(),
                text,
            },
            start,
        );
        Ok(())
    }
}

/// Go's number constants: an integer unless it has a fraction or an exponent, as Go's
/// text/template decides whether an untyped constant is an int or a float64.
pub(super) fn parse_number(text: &str) -> Option<serde_json::Number> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let clean = digits.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let radix = |prefix: &str| lower.strip_prefix(prefix).filter(|r| !r.is_empty());
    let magnitude: Option<u64> = if let Some(hex) = radix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(octal) = radix("0o") {
        u64::from_str_radix(octal, 8).ok()
    } else if let Some(binary) = radix("0b") {
        u64::from_str_radix(binary, 2).ok()
    } else if lower.contains(['.', 'e']) {
        None
    } else if lower.len() > 1 && lower.starts_with('0') {
        // A leading zero means octal in Go, as in C.
        u64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse().ok()
    };
    match magnitude {
        Some(m) if negative => {
            let m = i64::try_from(m).ok()?;
            Some(serde_json::Number::from(-m))
        }
        Some(m) => Some(serde_json::Number::from(m)),
        // Only a fraction or an exponent makes a float: Go rejects `08` and integers too
        // large for 64 bits rather than quietly reading them as float64.
        None if lower.starts_with("0x") || !lower.contains(['.', 'e']) => None,
        None => {
            let f: f64 = lower.parse().ok()?;
            let f = if negative { -f } else { f };
            serde_json::Number::from_f64(f).filter(|_| f.is_finite())
        }
    }
}

/// The inside of a Go interpreted string literal, escapes decoded.
pub(super) fn unquote(inner: &str) -> Result<String, &'static str> {
    let mut bytes = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == '\\' {
            unescape(&mut chars, &mut bytes, '"')?;
        } else {
            chars.next();
            let mut buf = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    String::from_utf8(bytes).map_err(|_| "invalid UTF-8")
}

/// One escape sequence, starting at its backslash; `quote` is the one quote it may escape.
/// `\x` and octal escapes are bytes, so the caller collects bytes and checks UTF-8 at the end.
fn unescape(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut Vec<u8>,
    quote: char,
) -> Result<(), &'static str> {
    chars.next();
    let c = chars.next().ok_or("unfinished escape")?;
    let mut digits = |n: usize, radix: u32| -> Result<u32, &'static str> {
        let mut value = 0u32;
        for _ in 0..n {
            let d = chars
                .next()
                .and_then(|c| c.to_digit(radix))
                .ok_or("invalid escape")?;
            value = value * radix + d;
        }
        Ok(value)
    };
    let push_char = |out: &mut Vec<u8>, c: char| {
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    match c {
        'a' => out.push(0x07),
        'b' => out.push(0x08),
        'f' => out.push(0x0c),
        'n' => out.push(b'\n'),
        'r' => out.push(b'\r'),
        't' => out.push(b'\t'),
        'v' => out.push(0x0b),
        '\\' => out.push(b'\\'),
        c if c == quote => push_char(out, c),
        'x' => out.push(u8::try_from(digits(2, 16)?).map_err(|_| "invalid escape")?),
        '0'..='7' => {
            let rest = digits(2, 8)?;
            let value = c.to_digit(8).unwrap_or(0) * 64 + rest;
            out.push(u8::try_from(value).map_err(|_| "octal escape value > 255")?);
        }
        'u' => push_char(out, char::from_u32(digits(4, 16)?).ok_or("invalid escape")?),
        'U' => push_char(out, char::from_u32(digits(8, 16)?).ok_or("invalid escape")?),
        _ => return Err("invalid escape"),
    }
    Ok(())
}
