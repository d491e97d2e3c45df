//! The parser: tokens in, a tree out.
//!
//! The tree has Go's shapes: a list of nodes (text, actions, `if`/`with`/`range`), each action a
//! pipeline of commands joined by `|`, each command a list of arguments. Everything that can be
//! found without the data is found here: unknown functions, undefined variables, `{{end}}`
//! without a start, `{{break}}` outside `{{range}}`, so a bad format fails before any output.

use std::fmt;

use super::funcs::Func;
use super::lex::{Kind, MAX_DEPTH, Token, lex};
use super::{FormatError, located};

/// One piece of a template.
#[derive(Debug)]
pub(super) enum Node {
    /// Text printed as it is.
    Text(String),
    /// `{{pipeline}}`: printed, unless it declares or assigns variables.
    Action(Pipe),
    /// `{{if}}…{{else}}…{{end}}`
    If(Branch),
    /// `{{with}}…{{else}}…{{end}}`: like `if`, and the value becomes the dot.
    With(Branch),
    /// `{{range}}…{{else}}…{{end}}`
    Range(Branch),
    /// `{{break}}`
    Break,
    /// `{{continue}}`
    Continue,
}

/// The parts of `if`, `with` and `range`.
#[derive(Debug)]
pub(super) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Vec<Node>,
}

/// `$x := cmd | cmd | cmd`: each command's value becomes the last argument of the next.
#[derive(Debug)]
pub(super) struct Pipe {
    pub decl: Vec<String>,
    /// `=` rather than `:=`: the variables exist already.
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

/// A function and its arguments, or a single value.
#[derive(Debug)]
pub(super) struct Cmd {
    pub pos: usize,
    pub args: Vec<Expr>,
}

/// An argument, with where it starts in the template for messages.
#[derive(Debug)]
pub(super) struct Expr {
    pub pos: usize,
    pub kind: ExprKind,
}

/// What an argument is.
#[derive(Debug)]
pub(super) enum ExprKind {
    Dot,
    Nil,
    Bool(bool),
    Number {
        value: serde_json::Number,
        text: String,
    },
    Str {
        value: String,
        quoted: String,
    },
    /// `.A.B`: fields of the dot.
    Field(Vec<String>),
    /// `$x.A.B`
    Variable {
        name: String,
        fields: Vec<String>,
    },
    /// `(pipeline).A.B`
    Paren {
        pipe: Box<Pipe>,
        fields: Vec<String>,
    },
    Func(Func),
}

/// Parses a whole template.
pub(super) fn parse(src: &str) -> Result<Vec<Node>, FormatError> {
    let tokens = lex(src)?;
    let mut parser = Parser {
        src,
        tokens,
        next: 0,
        last_end: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
    };
    let (list, stop) = parser.list()?;
    match stop {
        Stop::Eof => Ok(list),
        Stop::End(pos) => Err(parser.error(pos, "unexpected {{end}}")),
        Stop::Else(pos) => Err(parser.error(pos, "unexpected {{else}}")),
    }
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End(usize),
    Else(usize),
}

/// Which construct a pipeline belongs to: it decides what may be declared, and names the
/// construct in messages.
#[derive(Clone, Copy, PartialEq)]
enum Context {
    Command,
    If,
    With,
    Range,
    Paren,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Context::Command => "command",
            Context::If => "if",
            Context::With => "with",
            Context::Range => "range",
            Context::Paren => "parenthesized pipeline",
        })
    }
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "break", "continue", "define", "template", "block",
];

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    next: usize,
    /// Where the last token taken ended: a field that starts there chains onto it.
    last_end: usize,
    /// The variables in scope, innermost last; `$` is always there.
    vars: Vec<String>,
    range_depth: usize,
    /// How deep control structures nest: bounded, like parentheses, to keep recursion finite.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The lexer always ends with Eof, and `take` never steps past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    /// The kind of the token `ahead` places on, for the look-ahead that finds declarations.
    fn kind_at(&self, ahead: usize) -> Option<&Kind> {
        self.tokens.get(self.next + ahead).map(|t| &t.kind)
    }

    fn take(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != Kind::Eof {
            self.next += 1;
        }
        self.last_end = token.end;
        token
    }

    fn error(&self, pos: usize, msg: impl fmt::Display) -> FormatError {
        located(self.src, pos, msg)
    }

    fn unexpected(&self, token: &Token, context: impl fmt::Display) -> FormatError {
        self.error(
            token.pos,
            format_args!("unexpected {} in {context}", describe(token, self.src)),
        )
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop), FormatError> {
        let mut nodes = Vec::new();
        loop {
            let token = self.take();
            match token.kind {
                Kind::Eof => return Ok((nodes, Stop::Eof)),
                Kind::Text(text) => nodes.push(Node::Text(text)),
                Kind::Open => match self.action()? {
                    Action::Node(node) => nodes.push(node),
                    Action::End(pos) => return Ok((nodes, Stop::End(pos))),
                    Action::Else(pos) => return Ok((nodes, Stop::Else(pos))),
                },
                _ => return Err(self.unexpected(&token, "text")),
            }
        }
    }

    /// What follows `{{`.
    fn action(&mut self) -> Result<Action, FormatError> {
        let token = self.peek().clone();
        let keyword = match &token.kind {
            Kind::Ident(word) if KEYWORDS.contains(&word.as_str()) => word.as_str(),
            _ => return Ok(Action::Node(Node::Action(self.pipeline(Context::Command)?))),
        };
        self.take();
        let node = match keyword {
            "if" => Node::If(self.control(Context::If, token.pos)?),
            "with" => Node::With(self.control(Context::With, token.pos)?),
            "range" => Node::Range(self.control(Context::Range, token.pos)?),
            // `else` is closed by the control structure, which knows whether `if` may follow.
            "else" => return Ok(Action::Else(token.pos)),
            "end" => {
                self.expect_close("end")?;
                return Ok(Action::End(token.pos));
            }
            "break" | "continue" => {
                if self.range_depth == 0 {
                    return Err(self.error(
                        token.pos,
                        format_args!("{{{{{keyword}}}}} outside {{{{range}}}}"),
                    ));
                }
                self.expect_close(keyword)?;
                if keyword == "break" {
                    Node::Break
                } else {
                    Node::Continue
                }
            }
            _ => {
                return Err(self.error(
                    token.pos,
                    format_args!(
                        "{{{{{keyword}}}}} is not supported: a --format has no named templates"
                    ),
                ));
            }
        };
        Ok(Action::Node(node))
    }

    fn expect_close(&mut self, context: &str) -> Result<(), FormatError> {
        let token = self.take();
        match token.kind {
            Kind::Close => Ok(()),
            _ => Err(self.unexpected(&token, context)),
        }
    }

    /// `if`, `with` or `range`, after its keyword: pipeline, list, and an optional else list,
    /// up to the `{{end}}`.
    fn control(&mut self, context: Context, pos: usize) -> Result<Branch, FormatError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(pos, "control structures nested too deeply"));
        }
        // Variables declared in the pipeline or the lists live until the {{end}}.
        let outer_vars = self.vars.len();
        let pipe = self.pipeline(context)?;
        let inner_vars = self.vars.len();
        if context == Context::Range {
            self.range_depth += 1;
        }
        let (list, stop) = self.list()?;
        if context == Context::Range {
            self.range_depth -= 1;
        }
        self.vars.truncate(inner_vars);
        let else_list = match stop {
            Stop::Eof => {
                return Err(self.error(
                    pos,
                    format_args!(
                        "unexpected end of template: {{{{{context}}}}} has no {{{{end}}}}"
                    ),
                ));
            }
            Stop::End(_) => Vec::new(),
            Stop::Else(else_pos) => self.else_list(context, else_pos)?,
        };
        self.vars.truncate(outer_vars);
        self.depth -= 1;
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    /// After `{{else`: `{{else if …}}` and `{{else with …}}` read as an `if` (or `with`) inside
    /// the else, ending at the same `{{end}}`, as Go reads them.
    fn else_list(&mut self, context: Context, pos: usize) -> Result<Vec<Node>, FormatError> {
        let chained = match (&self.peek().kind, context) {
            (Kind::Ident(word), Context::If) if word == "if" => Some(Context::If),
            (Kind::Ident(word), Context::With) if word == "with" => Some(Context::With),
            _ => None,
        };
        if let Some(inner) = chained {
            let at = self.take().pos;
            let branch = self.control(inner, at)?;
            return Ok(vec![if inner == Context::If {
                Node::If(branch)
            } else {
                Node::With(branch)
            }]);
        }
        self.expect_close("else")?;
        let (list, stop) = self.list()?;
        match stop {
            Stop::End(_) => Ok(list),
            Stop::Else(at) => Err(self.error(at, "expected {{end}}; found {{else}}")),
            Stop::Eof => Err(self.error(
                pos,
                format_args!("unexpected end of template: {{{{{context}}}}} has no {{{{end}}}}"),
            )),
        }
    }

    /// `[$x :=] command [| command]…` up to `}}` (or `)` in parentheses).
    fn pipeline(&mut self, context: Context) -> Result<Pipe, FormatError> {
        let start = self.peek().pos;
        let (decl, is_assign) = self.declarations(context)?;
        let end = if context == Context::Paren {
            Kind::RParen
        } else {
            Kind::Close
        };
        let mut cmds = Vec::new();
        loop {
            let token = self.peek().clone();
            if token.kind == end {
                self.take();
                break;
            }
            if !starts_operand(&token.kind) {
                self.take();
                return Err(self.unexpected(&token, context));
            }
            let (cmd, piped) = self.command(&end)?;
            cmds.push(cmd);
            if piped && !starts_operand(&self.peek().kind) {
                let token = self.take();
                return Err(self.error(token.pos, "missing command after |"));
            }
        }
        let Some((_, later)) = cmds.split_first() else {
            return Err(self.error(start, format_args!("missing value for {context}")));
        };
        for (stage, cmd) in later.iter().enumerate() {
            if let Some(first) = cmd.args.first()
                && matches!(
                    first.kind,
                    ExprKind::Bool(_)
                        | ExprKind::Dot
                        | ExprKind::Nil
                        | ExprKind::Number { .. }
                        | ExprKind::Str { .. }
                )
            {
                return Err(self.error(
                    cmd.pos,
                    format_args!("non executable command in pipeline stage {}", stage + 2),
                ));
            }
        }
        if !is_assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe {
            decl,
            is_assign,
            cmds,
        })
    }

    /// `$x :=`, `$x =`, and in a range `$k, $v :=`.
    fn declarations(&mut self, context: Context) -> Result<(Vec<String>, bool), FormatError> {
        if context == Context::Paren {
            return Ok((Vec::new(), false));
        }
        let (Some(Kind::Variable(first)), Some(after)) = (self.kind_at(0), self.kind_at(1)) else {
            return Ok((Vec::new(), false));
        };
        let first = first.clone();
        let (decl, is_assign, used) = match after {
            Kind::Declare => (vec![first], false, 2),
            Kind::Assign => (vec![first], true, 2),
            Kind::Comma => match (self.kind_at(2), self.kind_at(3)) {
                (Some(Kind::Variable(second)), Some(Kind::Declare))
                    if context == Context::Range =>
                {
                    (vec![first, second.clone()], false, 4)
                }
                (Some(Kind::Variable(_)), Some(Kind::Declare)) => {
                    let pos = self.peek().pos;
                    return Err(self.error(pos, format_args!("too many declarations in {context}")));
                }
                _ => {
                    let pos = self.peek().pos;
                    return Err(self.error(pos, "range can only initialize variables"));
                }
            },
            _ => return Ok((Vec::new(), false)),
        };
        let pos = self.peek().pos;
        if is_assign && !self.vars.contains(&decl[0]) {
            return Err(self.error(pos, format_args!("undefined variable {:?}", decl[0])));
        }
        for _ in 0..used {
            self.take();
        }
        Ok((decl, is_assign))
    }

    /// Arguments separated by spaces, up to `|` (taken; the bool says so) or the pipeline's end
    /// (left for the pipeline).
    fn command(&mut self, end: &Kind) -> Result<(Cmd, bool), FormatError> {
        let pos = self.peek().pos;
        let mut args = Vec::new();
        loop {
            let Some(arg) = self.operand()? else {
                let token = self.take();
                return Err(self.unexpected(&token, "operand"));
            };
            args.push(arg);
            let token = self.peek().clone();
            if token.kind == *end {
                break;
            }
            if token.kind == Kind::Pipe {
                self.take();
                return self.checked_command(pos, args, true);
            }
            if token.pos == self.last_end || !starts_operand(&token.kind) {
                // `"a""b"` or `.A)`: arguments must be apart, and only operands may follow.
                self.take();
                return Err(self.unexpected(&token, "operand"));
            }
        }
        self.checked_command(pos, args, false)
    }

    fn checked_command(
        &self,
        pos: usize,
        args: Vec<Expr>,
        piped: bool,
    ) -> Result<(Cmd, bool), FormatError> {
        if let Some(Expr {
            kind: ExprKind::Nil,
            pos,
        }) = args.first()
        {
            return Err(self.error(*pos, "nil is not a command"));
        }
        Ok((Cmd { pos, args }, piped))
    }

    /// A term and the fields chained onto it with no space between: `$x.A`, `(index .A 0).B`.
    fn operand(&mut self) -> Result<Option<Expr>, FormatError> {
        let Some(mut expr) = self.term()? else {
            return Ok(None);
        };
        let mut chained = Vec::new();
        while let Kind::Field(name) = &self.peek().kind
            && self.peek().pos == self.last_end
        {
            chained.push(name.clone());
            self.take();
        }
        if chained.is_empty() {
            return Ok(Some(expr));
        }
        match &mut expr.kind {
            ExprKind::Field(fields)
            | ExprKind::Variable { fields, .. }
            | ExprKind::Paren { fields, .. } => {
                fields.extend(chained);
            }
            _ => {
                return Err(self.error(
                    expr.pos,
                    format_args!("unexpected . after term {:?}", expr.to_string()),
                ));
            }
        }
        Ok(Some(expr))
    }

    /// One value: a literal, the dot, a field, a variable, a function name or `( pipeline )`.
    fn term(&mut self) -> Result<Option<Expr>, FormatError> {
        let token = self.peek().clone();
        let kind = match token.kind {
            Kind::Ident(word) => match word.as_str() {
                "true" => ExprKind::Bool(true),
                "false" => ExprKind::Bool(false),
                "nil" => ExprKind::Nil,
                w if KEYWORDS.contains(&w) => return Ok(None),
                name => ExprKind::Func(Func::named(name).ok_or_else(|| {
                    self.error(token.pos, format_args!("function {name:?} not defined"))
                })?),
            },
            Kind::Dot => ExprKind::Dot,
            Kind::Field(name) => ExprKind::Field(vec![name]),
            Kind::Variable(name) => {
                if !self.vars.contains(&name) {
                    return Err(self.error(token.pos, format_args!("undefined variable {name:?}")));
                }
                ExprKind::Variable {
                    name,
                    fields: Vec::new(),
                }
            }
            Kind::Number { value, text } => ExprKind::Number { value, text },
            Kind::Str { value, quoted } => ExprKind::Str { value, quoted },
            Kind::LParen => {
                self.take();
                let pipe = self.pipeline(Context::Paren)?;
                return Ok(Some(Expr {
                    pos: token.pos,
                    kind: ExprKind::Paren {
                        pipe: Box::new(pipe),
                        fields: Vec::new(),
                    },
                }));
            }
            _ => return Ok(None),
        };
        self.take();
        Ok(Some(Expr {
            pos: token.pos,
            kind,
        }))
    }
}

/// What `{{` led to.
enum Action {
    Node(Node),
    End(usize),
    Else(usize),
}

fn starts_operand(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Ident(_)
            | Kind::Dot
            | Kind::Field(_)
            | Kind::Variable(_)
            | Kind::Number { .. }
            | Kind::Str { .. }
            | Kind::LParen
    )
}

/// A token as a message shows it: the text as written.
fn describe(token: &Token, src: &str) -> String {
    match token.kind {
        Kind::Eof => "end of template".to_string(),
        Kind::Close => "\"}}\"".to_string(),
        _ => format!("{:?}", src.get(token.pos..token.end).unwrap_or("")),
    }
}

// Go's String() of the tree: the `<…>` in "executing at <.Nope.X>" shows the node as written.

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &[String]) -> fmt::Result {
    fields.iter().try_for_each(|field| write!(f, ".{field}"))
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Dot => f.write_str("."),
            ExprKind::Nil => f.write_str("nil"),
            ExprKind::Bool(b) => write!(f, "{b}"),
            ExprKind::Number { text, .. } => f.write_str(text),
            ExprKind::Str { quoted, .. } => f.write_str(quoted),
            ExprKind::Field(fields) => write_fields(f, fields),
            ExprKind::Variable { name, fields } => {
                f.write_str(name)?;
                write_fields(f, fields)
            }
            ExprKind::Paren { pipe, fields } => {
                write!(f, "({pipe})")?;
                write_fields(f, fields)
            }
            ExprKind::Func(func) => f.write_str(func.name()),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(
                f,
                "{} {} ",
                self.decl.join(", "),
                if self.is_assign { "=" } else { ":=" }
            )?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}
