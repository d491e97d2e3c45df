//! `--format`: Go templates over Docker's JSON objects.
//!
//! `docker inspect -f '{{.State.Status}}'` and `docker ps --format 'table {{.ID}}\t{{.Names}}'`
//! print any part of an object through a template in the language of Go's text/template
//! package: actions, pipelines, variables, `if`/`range`/`with`, and its functions, plus those
//! Docker adds in docker/cli `templates/templates.go` (`json join split lower upper title pad
//! truncate`). The reference is the documentation of Go's text/template package
//! (<https://pkg.go.dev/text/template>). skiff runs the same templates over the JSON it shows
//! (`inspect`) or the row it prints (`ps`, `images`): `{{.State.Status}}` is a map lookup.
//! A template is parsed once ([`Template::parse`]) and run per object ([`Template::execute`]).
//!
//! Hand-written, not a crate: gtmpl 0.7.1 (Go templates for Rust, marked passively maintained)
//! ranges over maps in HashMap order where Go sorts keys, prints lists, maps and null as Rust's
//! `Debug` and `nil` instead of Go's `[a b]`, `map[k:v]` and `<nil>`, has no `$x = …`, `break`,
//! `slice`, `html` or `js`, starts a thread to lex each template, and brings thiserror 1,
//! lazy_static and a value type of its own to convert the JSON into. Docker's functions and
//! fmt's printing would be ours to write anyway; a parser and evaluator over serde_json is the
//! smaller whole.
//!
//! Where JSON loses what Docker's Go structs know, skiff shows what Docker shows: a number
//! without fraction or exponent is an int (`137`), others are float64 (`1.5`, `1e+06`); null
//! prints `<nil>` and is an empty list to `range`, `len` and `join`; numbers compare by value.
//!
//! The parts: `lex` (text into tokens), `parse` (tokens into a tree, with every error that needs
//! no data), `exec` (the tree over the data), `funcs` (the functions), `print` (how Go's fmt and
//! encoding/json write values).

mod exec;
mod funcs;
mod lex;
mod parse;
mod print;
#[cfg(test)]
mod tests;

use std::fmt;

/// A template that failed to parse or to run.
#[derive(Debug, thiserror::Error)]
#[error("template: {0}")]
pub struct FormatError(pub String);

/// A parsed template, ready to run over one object after another.
#[derive(Debug)]
pub struct Template {
    text: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses `text`; every error that does not depend on the data is reported here.
    pub fn parse(text: &str) -> Result<Template, FormatError> {
        Ok(Template {
            nodes: parse::parse(text)?,
            text: text.to_string(),
        })
    }

    /// Runs the template with `value` as its dot (and `$`).
    pub fn execute(&self, value: &serde_json::Value) -> Result<String, FormatError> {
        exec::execute(&self.text, &self.nodes, value, false)
    }

    /// Runs the template over one row of a list (`ps`, `images`, `volume ls`...): as
    /// [`Template::execute`], except that `{{json .}}` prints the row as [`row_json`] does.
    pub fn execute_row(&self, row: &serde_json::Value) -> Result<String, FormatError> {
        exec::execute(&self.text, &self.nodes, row, true)
    }
}

/// Renders `template` with `value` as its dot.
pub fn render(template: &str, value: &serde_json::Value) -> Result<String, FormatError> {
    Template::parse(template)?.execute(value)
}

/// Docker's table directive: `"table {{.ID}}\t{{.Names}}"` gives `Some("{{.ID}}\t{{.Names}}")`,
/// the template of one row; None if the format is not a table. Docker's test is a prefix
/// (`table{{.ID}}` is a table too) and it trims spaces around the rest; so does this.
pub fn table_body(format: &str) -> Option<&str> {
    format
        .strip_prefix("table")
        .map(|body| body.trim_matches(' '))
}

/// A list's row as Docker prints it for `--format json` or `{{json .}}`: Go's `json.Marshal`,
/// keys sorted, `<`, `>` and `&` escaped (`"Digest":"\u003cnone\u003e"`), where the `json`
/// function on anything else (`{{json .Labels}}`, `inspect`) keeps them as they are.
pub fn row_json(row: &serde_json::Map<String, serde_json::Value>) -> String {
    print::json_marshal(&serde_json::Value::Object(row.clone()))
}

/// Docker's `--format json` (since Docker 23): each object as one line of JSON. True for exactly
/// `json`; `{{json .}}` is a template like any other.
pub fn is_json(format: &str) -> bool {
    format == "json"
}

// ANCHOR: listing
/// The columns a list command knows: each field of its rows, with the header Docker prints for
/// it (`("ID", "CONTAINER ID")`), and the ones its plain table shows.
pub struct Columns<'a> {
    /// Every field and its header.
    pub headers: &'a [(&'a str, &'a str)],
    /// The fields of the default table, in order.
    pub default: &'a [&'a str],
}

/// A list of rows as `--format` asks: nothing or `table` for the default table, `table
/// TEMPLATE` for a table of those columns, `json` for a JSON object per line, any other
/// template for one line per row. What `ps`, `images`, `stats`, `network ls` and `volume ls`
/// share.
pub fn list(
    format: Option<&str>,
    columns: &Columns<'_>,
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> Result<String, FormatError> {
    use serde_json::Value;
    let format = unescape(format.unwrap_or("").trim());
    if is_json(&format) {
        return Ok(rows.iter().map(|r| format!("{}\n", row_json(r))).collect());
    }
    match table_body(&format) {
        _ if format.is_empty() => Ok(default_table(columns, rows)),
        Some("") => Ok(default_table(columns, rows)),
        Some(body) => table_of(body, columns.headers, rows),
        None => {
            let template = Template::parse(&format)?;
            rows.iter()
                .map(|r| {
                    Ok(format!(
                        "{}\n",
                        template.execute_row(&Value::Object(r.clone()))?
                    ))
                })
                .collect()
        }
    }
}

fn default_table(
    columns: &Columns<'_>,
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> String {
    let header: Vec<&str> = columns
        .default
        .iter()
        .map(|field| header_of(columns.headers, field))
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .default
                .iter()
                .map(|field| {
                    row.get(*field)
                        .map(|v| match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    images::human::table(&header, &cells)
}

fn header_of<'a>(headers: &[(&str, &'a str)], field: &str) -> &'a str {
    headers
        .iter()
        .find(|(f, _)| *f == field)
        .map_or("", |(_, header)| header)
}

/// A `table TEMPLATE`: the template run over the headers gives the header row (Docker's
/// trick: `{{.ID}}` over a map from field to header prints `CONTAINER ID`), then over each
/// row; tabs separate the columns, which line up as Docker's tabwriter lines them up.
pub fn table_of(
    body: &str,
    headers: &[(&str, &str)],
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> Result<String, FormatError> {
    use serde_json::Value;
    let template = Template::parse(body)?;
    let names: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(field, header)| ((*field).to_string(), Value::String((*header).to_string())))
        .collect();
    let header = template.execute(&Value::Object(names))?;
    let mut cells = Vec::new();
    for row in rows {
        let text = template.execute_row(&Value::Object(row.clone()))?;
        cells.push(text.split('\t').map(str::to_string).collect());
    }
    let header: Vec<&str> = header.split('\t').collect();
    Ok(images::human::table(&header, &cells))
}

/// Docker's CLI turns the two characters `\t` and `\n` of a `--format` into a tab and a
/// newline before it parses the template: that is how a shell user types a column separator.
pub fn unescape(format: &str) -> String {
    format.replace("\\t", "\t").replace("\\n", "\n")
}
// ANCHOR_END: listing

/// An error at a byte offset of the template, located as Go does: `:line:column:`, the column
/// counted in bytes from 0.
fn located(src: &str, pos: usize, msg: impl fmt::Display) -> FormatError {
    let before = src.get(..pos).unwrap_or(src);
    let line = 1 + before.matches('\n').count();
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1);
    FormatError(format!(":{line}:{column}: {msg}"))
}
