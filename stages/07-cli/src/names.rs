//! Names for containers that were not given one: `adjective_noun`, as Docker makes them
//! (`docker run` without `--name` gives names like `eager_turing`). Docker's nouns are
//! scientists and hackers; skiff's are boats, to match its own name.

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "bright", "busy", "calm", "clever", "cosy", "crisp", "daring",
    "eager", "fair", "fast", "gentle", "glad", "happy", "hardy", "keen", "kind", "light", "lively",
    "loyal", "lucky", "merry", "modest", "neat", "nimble", "noble", "patient", "plucky", "proud",
    "quick", "quiet", "ready", "sharp", "shy", "silent", "sleek", "smooth", "snug", "steady",
    "stout", "swift", "tidy", "trim", "trusty", "vivid", "warm", "wise", "witty",
];

const NOUNS: &[&str] = &[
    "ark",
    "barge",
    "brig",
    "canoe",
    "caravel",
    "catamaran",
    "clipper",
    "coracle",
    "cutter",
    "dhow",
    "dinghy",
    "dory",
    "felucca",
    "ferry",
    "frigate",
    "galleon",
    "gig",
    "gondola",
    "junk",
    "kayak",
    "ketch",
    "launch",
    "longboat",
    "lugger",
    "pinnace",
    "punt",
    "raft",
    "schooner",
    "scow",
    "shallop",
    "skiff",
    "sloop",
    "sampan",
    "smack",
    "tender",
    "trawler",
    "trimaran",
    "tug",
    "umiak",
    "yacht",
    "yawl",
    "wherry",
    "pirogue",
    "junkboat",
    "keelboat",
    "lighter",
    "outrigger",
    "packet",
    "sculler",
    "whaler",
];

/// A name made from `seed` (random bytes): `adjective_noun`, with a number after it when
/// `attempt` is above zero (the plain one was taken).
pub fn make(seed: u64, attempt: u32) -> String {
    let pick = |value: u64, len: usize| usize::try_from(value % len as u64).unwrap_or(0);
    let adjective = ADJECTIVES[pick(seed, ADJECTIVES.len())];
    let noun = NOUNS[pick(seed >> 16, NOUNS.len())];
    if attempt == 0 {
        format!("{adjective}_{noun}")
    } else {
        format!("{adjective}_{noun}{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_look_like_dockers() {
        let name = make(12345, 0);
        let (a, n) = name.split_once('_').unwrap();
        assert!(ADJECTIVES.contains(&a) && NOUNS.contains(&n), "{name}");
        assert!(make(12345, 3).ends_with('3'));
        // Every name is valid as a container name: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
        for seed in 0..500u64 {
            let name = make(seed * 7919, 0);
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }
}
