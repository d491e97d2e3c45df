//! "Did you mean RUN?": the closest known word to a misspelt one.
//!
//! The distance is the optimal string alignment distance (Levenshtein plus the swap of two
//! neighbouring letters), so `RUNN`, `RN`, `RUM` and `FORM` are all one edit away from a real
//! instruction. A word is suggested only when it is close: at most two edits, and fewer edits than
//! the misspelt word has letters (so `X` does not suggest `ENV`).

/// The number of single-letter insertions, deletions, substitutions and swaps of neighbours that
/// turn `a` into `b`, ignoring case.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    // d[i][j]: the distance between the first i letters of a and the first j letters of b.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1) // delete
                .min(d[i][j - 1] + 1) // insert
                .min(d[i - 1][j - 1] + cost); // substitute (or keep)
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1); // swap two neighbours
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, if one is close enough to be what the user meant.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let letters = word.chars().count();
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|&(d, _)| d <= 2 && d < letters)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("RUN", "RUN"), 0);
        assert_eq!(distance("RUNN", "RUN"), 1);
        assert_eq!(distance("run", "RUN"), 0);
        assert_eq!(distance("FORM", "FROM"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "ENV"), 3);
    }

    #[test]
    fn suggests_only_close_words() {
        let names = ["FROM", "RUN", "COPY", "ENV", "EXPOSE"];
        assert_eq!(closest("RUNN", names), Some("RUN"));
        assert_eq!(closest("COPPY", names), Some("COPY"));
        assert_eq!(closest("FORM", names), Some("FROM"));
        assert_eq!(closest("EXPOES", names), Some("EXPOSE"));
        assert_eq!(closest("X", names), None);
        assert_eq!(closest("HELLO", names), None);
    }
}
