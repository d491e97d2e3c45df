//! The startup chart: one horizontal bar per contestant on a logarithmic axis in milliseconds,
//! written as SVG text by hand (an SVG file is XML: rectangles, lines and text at coordinates).
//!
//! A log scale because the contestants differ by orders of magnitude: a chroot takes about a
//! millisecond, a virtual machine seconds. Each bar ends at the median; a thin line ("whisker")
//! spans the fastest to the slowest run. Published figures are drawn as outlined bars.

use std::fmt::Write as _;

/// How a bar is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// A skiff stage.
    Stage,
    /// The floor: the same kernel calls from util-linux tools.
    Floor,
    /// Another runtime or engine.
    Peer,
    /// A virtual machine.
    Vm,
    /// A published figure, not measured here.
    Reference,
}

impl Group {
    fn colour(self) -> &'static str {
        match self {
            Group::Stage => "#2b6cb0",
            Group::Floor => "#2f855a",
            Group::Peer => "#718096",
            Group::Vm => "#c05621",
            Group::Reference => "#805ad5",
        }
    }

    fn legend(self) -> &'static str {
        match self {
            Group::Stage => "skiff stage",
            Group::Floor => "floor (util-linux)",
            Group::Peer => "other runtime",
            Group::Vm => "virtual machine",
            Group::Reference => "published, not measured here",
        }
    }
}

/// One row of the chart, in milliseconds.
#[derive(Debug, Clone)]
pub struct Bar {
    /// The contestant.
    pub label: String,
    /// Where the bar ends.
    pub median: f64,
    /// The whisker's left end.
    pub min: f64,
    /// The whisker's right end.
    pub max: f64,
    /// Its colour.
    pub group: Group,
    /// Text after the whisker ("4.12 ms").
    pub note: String,
}

const WIDTH: f64 = 900.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 70.0;
const ROW: f64 = 26.0;
const BAR: f64 = 16.0;
const LINE: f64 = 16.0;

// ANCHOR: log_scale
/// Maps milliseconds to x on a log axis spanning whole decades around every value.
struct LogAxis {
    low: f64,
    high: f64,
}

impl LogAxis {
    fn around(values: impl Iterator<Item = f64>) -> LogAxis {
        let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite() && *v > 0.0) {
            low = low.min(v);
            high = high.max(v);
        }
        if !low.is_finite() {
            (low, high) = (1.0, 10.0);
        }
        let low = low.log10().floor();
        let high = high.log10().ceil().max(low + 1.0);
        LogAxis { low, high }
    }

    fn x(&self, ms: f64) -> f64 {
        let fraction = (ms.max(1e-9).log10() - self.low) / (self.high - self.low);
        LEFT + fraction.clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }
}
// ANCHOR_END: log_scale

/// The chart as an SVG document.
pub fn chart(title: &str, bars: &[Bar], caption: &[String]) -> String {
    let axis = LogAxis::around(bars.iter().flat_map(|b| [b.min, b.median, b.max]));
    let rows_bottom = TOP + ROW * bars.len() as f64;
    let axis_y = rows_bottom + 8.0;
    let height = axis_y + 52.0 + LINE * caption.len() as f64 + 10.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    legend(&mut svg, bars);
    grid(&mut svg, &axis, axis_y);
    for (row, bar) in bars.iter().enumerate() {
        draw_bar(&mut svg, &axis, bar, TOP + ROW * row as f64);
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">startup time, ms (log scale)</text>"#,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        axis_y + 36.0
    );
    for (i, line) in caption.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<text x="10" y="{:.1}" fill="#4a5568">{}</text>"##,
            axis_y + 58.0 + LINE * i as f64,
            escape(line)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn legend(svg: &mut String, bars: &[Bar]) {
    let mut x = LEFT;
    let mut seen = Vec::new();
    for bar in bars {
        if seen.contains(&bar.group) {
            continue;
        }
        seen.push(bar.group);
        let colour = bar.group.colour();
        let swatch = if bar.group == Group::Reference {
            format!(r#"fill="none" stroke="{colour}" stroke-dasharray="2 1""#)
        } else {
            format!(r#"fill="{colour}""#)
        };
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="38" width="10" height="10" {swatch}/>"#
        );
        let text = bar.group.legend();
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="47">{}</text>"#,
            x + 14.0,
            escape(text)
        );
        x += 30.0 + 6.5 * text.len() as f64;
    }
}

fn grid(svg: &mut String, axis: &LogAxis, axis_y: f64) {
    let decades = whole(axis.high - axis.low);
    let low = whole(axis.low);
    for decade in low..=low + decades {
        for step in [1.0, 2.0, 5.0] {
            let value = step * 10f64.powi(decade);
            if decade == low + decades && step > 1.0 {
                break;
            }
            let x = axis.x(value);
            let (colour, width) = if step == 1.0 {
                ("#a0aec0", 1.0)
            } else {
                ("#e2e8f0", 0.5)
            };
            let _ = writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{axis_y:.1}" stroke="{colour}" stroke-width="{width}"/>"#,
                TOP - 4.0
            );
            if step == 1.0 {
                let _ = writeln!(
                    svg,
                    r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    axis_y + 16.0,
                    tick_label(value)
                );
            }
        }
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}" stroke="#2d3748"/>"##,
        WIDTH - RIGHT
    );
}

fn draw_bar(svg: &mut String, axis: &LogAxis, bar: &Bar, y: f64) {
    let colour = bar.group.colour();
    let middle = y + BAR / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
        LEFT - 8.0,
        middle + 4.0,
        escape(&bar.label)
    );
    let end = axis.x(bar.median);
    let width = (end - LEFT).max(1.0);
    if bar.group == Group::Reference {
        let _ = writeln!(
            svg,
            r#"<rect x="{LEFT}" y="{y:.1}" width="{width:.1}" height="{BAR}" fill="none" stroke="{colour}" stroke-dasharray="4 3"/>"#
        );
    } else {
        let _ = writeln!(
            svg,
            r#"<rect x="{LEFT}" y="{y:.1}" width="{width:.1}" height="{BAR}" fill="{colour}"/>"#
        );
        let (from, to) = (axis.x(bar.min), axis.x(bar.max));
        let _ = writeln!(
            svg,
            r##"<path d="M{from:.1} {middle:.1}H{to:.1}M{from:.1} {:.1}V{:.1}M{to:.1} {:.1}V{:.1}" stroke="#1a202c" fill="none"/>"##,
            middle - 4.0,
            middle + 4.0,
            middle - 4.0,
            middle + 4.0
        );
    }
    let text_x = axis.x(bar.max.max(bar.median)) + 6.0;
    let _ = writeln!(
        svg,
        r#"<text x="{text_x:.1}" y="{:.1}">{}</text>"#,
        middle + 4.0,
        escape(&bar.note)
    );
}

/// `0.01`, `0.1`, `1`, `10`, `1000`.
fn tick_label(value: f64) -> String {
    if value >= 1.0 {
        format!("{value:.0}")
    } else {
        let digits = usize::try_from(whole(-value.log10())).unwrap_or(0);
        format!("{value:.digits$}")
    }
}

/// A decade exponent as an integer: the logarithm of a time in milliseconds, well inside `i32`.
#[allow(clippy::cast_possible_truncation)]
fn whole(exponent: f64) -> i32 {
    exponent.round().clamp(-300.0, 300.0) as i32
}

/// Text made safe for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that `xml` is well-formed enough for a browser: every element closes in order,
    /// attribute values are quoted, and text holds no raw `<` and only known entities.
    fn check_well_formed(xml: &str) -> Result<Vec<String>, String> {
        let mut open: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = xml;
        while !rest.is_empty() {
            match rest.find('<') {
                Some(at) => {
                    check_text(&rest[..at])?;
                    let close = rest[at..].find('>').ok_or("unclosed tag")? + at;
                    let tag = &rest[at + 1..close];
                    rest = &rest[close + 1..];
                    if let Some(name) = tag.strip_prefix('/') {
                        let expected = open.pop().ok_or(format!("</{name}> closes nothing"))?;
                        if expected != name {
                            return Err(format!("</{name}> closes <{expected}>"));
                        }
                        continue;
                    }
                    let self_closing = tag.ends_with('/');
                    let tag = tag.trim_end_matches('/');
                    let (name, attributes) = tag.split_once(' ').unwrap_or((tag, ""));
                    check_attributes(attributes)?;
                    seen.push(name.to_string());
                    if !self_closing {
                        open.push(name.to_string());
                    }
                }
                None => {
                    check_text(rest)?;
                    rest = "";
                }
            }
            if open.is_empty() && !seen.is_empty() && !rest.trim().is_empty() {
                return Err("content after the root element".into());
            }
        }
        if !open.is_empty() {
            return Err(format!("unclosed elements: {open:?}"));
        }
        Ok(seen)
    }

    fn check_text(text: &str) -> Result<(), String> {
        let mut rest = text;
        while let Some(at) = rest.find('&') {
            let end = rest[at..].find(';').ok_or("& without ;")? + at;
            let entity = &rest[at + 1..end];
            if !["amp", "lt", "gt", "quot", "apos"].contains(&entity) {
                return Err(format!("unknown entity &{entity};"));
            }
            rest = &rest[end + 1..];
        }
        Ok(())
    }

    fn check_attributes(mut text: &str) -> Result<(), String> {
        loop {
            text = text.trim_start();
            if text.is_empty() {
                return Ok(());
            }
            let eq = text
                .find('=')
                .ok_or(format!("attribute without value: {text}"))?;
            let name = &text[..eq];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(format!("bad attribute name {name:?}"));
            }
            let value = text[eq + 1..]
                .strip_prefix('"')
                .ok_or(format!("attribute {name} is not quoted"))?;
            let end = value
                .find('"')
                .ok_or(format!("attribute {name} not closed"))?;
            check_text(&value[..end])?;
            text = &value[end + 1..];
        }
    }

    fn sample() -> String {
        let bar = |label: &str, median: f64, group| Bar {
            label: label.into(),
            median,
            min: median * 0.8,
            max: median * 1.5,
            group,
            note: format!("{median} ms"),
        };
        chart(
            "Startup <of> \"true\" & co",
            &[
                bar("01-chroot", 1.2, Group::Stage),
                bar("floor", 3.9, Group::Floor),
                bar("runc", 104.0, Group::Peer),
                bar("vm (TCG)", 5300.0, Group::Vm),
                bar("Firecracker", 125.0, Group::Reference),
            ],
            &["AMD EPYC, 2 cores, Linux 6.1 & more".into()],
        )
    }

    #[test]
    fn the_chart_is_well_formed_svg() {
        let svg = sample();
        let elements = check_well_formed(&svg).unwrap();
        assert_eq!(elements[0], "svg");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(elements.iter().filter(|e| *e == "rect").count(), 1 + 5 + 5);
        assert!(svg.contains("Startup &lt;of&gt; &quot;true&quot; &amp; co"));
        assert!(
            svg.contains("stroke-dasharray"),
            "the reference is outlined"
        );
    }

    #[test]
    fn the_checker_catches_what_it_must() {
        assert!(check_well_formed("<svg><text>a</svg>").is_err());
        assert!(check_well_formed("<svg><text x=1>a</text></svg>").is_err());
        assert!(check_well_formed("<svg><text>a & b</text></svg>").is_err());
        assert!(check_well_formed("<svg><rect/></svg>").is_ok());
    }

    #[test]
    fn the_axis_spans_whole_decades_and_is_labelled_in_ms() {
        let axis = LogAxis::around([1.2, 5300.0].into_iter());
        assert_eq!((axis.low, axis.high), (0.0, 4.0));
        assert_eq!(axis.x(1.0), LEFT);
        assert_eq!(axis.x(10_000.0), WIDTH - RIGHT);
        let svg = sample();
        for label in [">1<", ">10<", ">100<", ">1000<", ">10000<"] {
            assert!(svg.contains(label), "tick {label} missing");
        }
        assert!(svg.contains("startup time, ms (log scale)"));
        assert_eq!(tick_label(0.1), "0.1");
        assert_eq!(tick_label(0.01), "0.01");
    }

    #[test]
    fn an_empty_chart_is_still_a_chart() {
        let svg = chart("nothing measured", &[], &[]);
        check_well_formed(&svg).unwrap();
    }
}
