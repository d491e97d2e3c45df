//! Signal names as Docker's commands take them: `SIGTERM`, `TERM`, `term` or `15`
//! (`--stop-signal`, `kill -s`, `stop -s`). See signal(7).

use anyhow::bail;
use nix::sys::signal::Signal;

/// Parses a signal name or number.
pub fn parse(text: &str) -> anyhow::Result<Signal> {
    if let Ok(number) = text.parse::<i32>() {
        return match Signal::try_from(number) {
            Ok(signal) => Ok(signal),
            Err(_) => bail!("invalid signal: {text}"),
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    match name.parse::<Signal>() {
        Ok(signal) => Ok(signal),
        Err(_) => bail!("invalid signal: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for text in ["SIGTERM", "TERM", "term", "15"] {
            assert_eq!(parse(text).unwrap(), Signal::SIGTERM, "{text}");
        }
        assert_eq!(parse("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("sigusr1").unwrap(), Signal::SIGUSR1);
        assert!(parse("NOPE").is_err());
        assert!(parse("99").is_err());
    }
}
