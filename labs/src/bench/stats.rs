//! Summaries of a contestant's runs: median, minimum and maximum.
//!
//! The median, not the mean, is the headline figure: one run slowed down by another process on
//! the machine moves the mean, not the median. The minimum is what the code can do when nothing
//! is in its way; the maximum shows how much the machine got in the way.

use std::time::Duration;

/// The median, minimum and maximum of a set of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The middle value (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Summary {
    /// Summarises `values`; `None` when there are none (or one is NaN).
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Some(Summary { median, min, max })
    }

    /// Summarises durations in milliseconds.
    pub fn of_millis(durations: &[Duration]) -> Option<Summary> {
        let millis: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        Summary::of(&millis)
    }
}

/// Milliseconds with three significant figures or so: `0.412`, `4.12`, `41.2`, `412`, `4120`.
pub fn format_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// A ratio such as `1.00×`, `2.4×`, `310×`.
pub fn format_ratio(ratio: f64) -> String {
    if ratio < 10.0 {
        format!("{ratio:.2}×")
    } else if ratio < 100.0 {
        format!("{ratio:.1}×")
    } else {
        format!("{ratio:.0}×")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_counts_take_the_middle_value() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            s,
            Summary {
                median: 3.0,
                min: 1.0,
                max: 5.0
            }
        );
    }

    #[test]
    fn even_counts_take_the_mean_of_the_two_middle_values() {
        let s = Summary::of(&[4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!(s.median, 3.0);
        assert_eq!((s.min, s.max), (1.0, 10.0));
    }

    #[test]
    fn one_value_is_its_own_summary_and_none_is_none() {
        assert_eq!(
            Summary::of(&[7.5]),
            Some(Summary {
                median: 7.5,
                min: 7.5,
                max: 7.5
            })
        );
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn an_outlier_moves_the_maximum_not_the_median() {
        let s = Summary::of(&[2.0, 2.1, 1.9, 2.0, 250.0]).unwrap();
        assert_eq!(s.median, 2.0);
        assert_eq!(s.max, 250.0);
    }

    #[test]
    fn durations_are_summarised_in_milliseconds() {
        let s = Summary::of_millis(&[
            Duration::from_micros(1500),
            Duration::from_millis(3),
            Duration::from_micros(500),
        ])
        .unwrap();
        assert_eq!((s.median, s.min, s.max), (1.5, 0.5, 3.0));
    }

    #[test]
    fn numbers_are_formatted_to_about_three_figures() {
        assert_eq!(format_ms(0.41234), "0.412");
        assert_eq!(format_ms(4.1234), "4.12");
        assert_eq!(format_ms(41.234), "41.2");
        assert_eq!(format_ms(4123.4), "4123");
        assert_eq!(format_ratio(1.0), "1.00×");
        assert_eq!(format_ratio(24.31), "24.3×");
        assert_eq!(format_ratio(1234.0), "1234×");
    }
}
