//! Sizes, times and tables the way Docker prints them.
//!
//! Docker's CLI uses the `go-units` package: sizes in decimal units with three significant digits
//! (`4.26MB`, `1.23kB`, `0B`) and times as a rough distance (`3 minutes ago`, `About an hour ago`).
//! Image configs carry times as RFC 3339 strings (`2024-05-01T12:00:00.123456789Z`).

use std::io::Write;
use std::time::{Duration, SystemTime};

/// Now, as an RFC 3339 string with nanoseconds, as image configs store times (Go's
/// `RFC3339Nano`: no trailing zeros in the fraction).
pub fn now_rfc3339() -> String {
    crate::config_json::go_time(&humantime::format_rfc3339_nanos(SystemTime::now()).to_string())
}

/// Parses an RFC 3339 time from an image config; `None` when it cannot be read.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    // Configs written by Go end in `Z`; a few carry `+00:00`, which means the same.
    let text = text
        .strip_suffix("+00:00")
        .map_or(text.to_string(), |t| format!("{t}Z"));
    humantime::parse_rfc3339_weak(&text).ok()
}

/// A time as Go's `time.Time.String()` writes it, which is what Docker's templates show for a
/// time the API hands the CLI as one (`network ls --format '{{.CreatedAt}}'`):
/// `2024-05-01 10:11:12.123456789 +0000 UTC`. The fraction loses its trailing zeros and a whole
/// second has none; an offset other than zero is its own zone name (`+0200 +0200`), as Go
/// prints a zone it knows no name for. `None` when `rfc3339` is not a time.
pub fn go_time_string(rfc3339: &str) -> Option<String> {
    let (date, rest) = rfc3339.split_once('T')?;
    let (clock, zone) = rest.split_at(rest.find(['Z', '+', '-'])?);
    let zone = match zone {
        "Z" | "+00:00" | "-00:00" => "+0000 UTC".to_string(),
        offset if offset.len() == 6 && offset.as_bytes()[3] == b':' => {
            let hhmm = offset.replacen(':', "", 1);
            format!("{hhmm} {hhmm}")
        }
        _ => return None,
    };
    // The date and the clock must read as a time, whatever the zone.
    parse_time(&format!("{date}T{clock}Z"))?;
    let (seconds, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let fraction = fraction.trim_end_matches('0');
    let dot = if fraction.is_empty() { "" } else { "." };
    Some(format!("{date} {seconds}{dot}{fraction} {zone}"))
}

/// A size as Docker shows it: decimal units, three significant digits (`4.26MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    // Precision is not a concern at three significant digits.
    #[allow(clippy::cast_precision_loss)]
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let mut text = three_digits(size);
    if text == "1000" && unit < UNITS.len() - 1 {
        // 999.9kB rounds to 1000kB: say 1MB instead.
        text = "1".into();
        unit += 1;
    }
    format!("{text}{}", UNITS[unit])
}

/// `%.3g` without the exponent: 3 significant digits, trailing zeros dropped.
fn three_digits(value: f64) -> String {
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A duration as Docker words it (`3 minutes`, `About an hour`), from go-units' HumanDuration.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = (d.as_secs_f64() / 3600.0 + 0.5).floor();
    // Whole hours of any realistic age fit a u64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let hours = hours as u64;
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// How long ago an RFC 3339 time was, as Docker's CREATED column shows it (`3 minutes ago`);
/// `N/A` when the time is missing or unreadable.
pub fn ago(created: Option<&str>, now: SystemTime) -> String {
    match created.and_then(parse_time) {
        Some(then) => {
            let d = now.duration_since(then).unwrap_or_default();
            format!("{} ago", human_duration(d))
        }
        None => "N/A".into(),
    }
}

/// Lays out rows in columns as Docker's tables are: Go's tabwriter with a minimum cell width of
/// 10 including a padding of 3 (this crate's minimum width does not include the padding).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut writer = tabwriter::TabWriter::new(Vec::new()).minwidth(7).padding(3);
    let mut line = |cells: &[&str]| {
        // Writing to a Vec cannot fail.
        let _ = writeln!(writer, "{}", cells.join("\t"));
    };
    if !header.is_empty() {
        line(header);
    }
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // tabwriter pads the last column too; Docker's output has no trailing spaces.
    text.lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

/// Shortens `text` to `width` characters, ending with `…` when cut (Docker's `Ellipsis`).
pub fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let kept: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_string_is_gos_time_string() {
        let go = |t| go_time_string(t).unwrap_or_default();
        assert_eq!(
            go("2026-12-05T07:43:46.854182351Z"),
            "2026-12-05 07:43:46.854182351 +0000 UTC"
        );
        assert_eq!(
            go("2024-05-01T10:11:12.120Z"),
            "2024-05-01 10:11:12.12 +0000 UTC"
        );
        assert_eq!(
            go("2024-05-01T10:11:12.000Z"),
            "2024-05-01 10:11:12 +0000 UTC"
        );
        assert_eq!(
            go("2024-05-01T10:11:12+00:00"),
            "2024-05-01 10:11:12 +0000 UTC"
        );
        assert_eq!(
            go("2025-04-19T00:18:29.108342801+08:00"),
            "2025-04-19 00:18:29.108342801 +0800 +0800"
        );
        assert_eq!(go_time_string(""), None);
        assert_eq!(go_time_string("2024-05-01"), None);
        assert_eq!(go_time_string("2024-13-01T10:11:12Z"), None);
    }

    #[test]
    fn sizes_match_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(4_261_376), "4.26MB");
        assert_eq!(human_size(72_800_000), "72.8MB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_size(999_999), "1MB");
        assert_eq!(human_size(123_456_789_012), "123GB");
    }

    #[test]
    fn durations_match_docker() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(45)), "45 seconds");
        assert_eq!(human_duration(s(90)), "About a minute");
        assert_eq!(human_duration(s(180)), "3 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5 * 3600)), "5 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(21 * 86400)), "3 weeks");
        assert_eq!(human_duration(s(90 * 86400)), "3 months");
        assert_eq!(human_duration(s(3 * 365 * 86400)), "3 years");
    }

    #[test]
    fn ago_reads_config_times() {
        let now = parse_time("2024-05-01T12:03:00Z").unwrap();
        assert_eq!(
            ago(Some("2024-05-01T12:00:00.123456789Z"), now),
            "2 minutes ago"
        );
        assert_eq!(ago(Some("2024-05-01T12:00:00+00:00"), now), "3 minutes ago");
        assert_eq!(ago(Some("yesterday"), now), "N/A");
        assert_eq!(ago(None, now), "N/A");
        assert!(parse_time(&now_rfc3339()).is_some());
    }

    #[test]
    fn tables_are_aligned_without_trailing_spaces() {
        let out = table(
            &["REPOSITORY", "TAG", "SIZE"],
            &[vec!["busybox".into(), "latest".into(), "4.26MB".into()]],
        );
        assert_eq!(
            out,
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n"
        );
    }

    #[test]
    fn ellipsis_cuts_long_text() {
        assert_eq!(ellipsis("short", 10), "short");
        assert_eq!(ellipsis("/bin/sh -c echo hello world", 10), "/bin/sh -…");
    }
}
