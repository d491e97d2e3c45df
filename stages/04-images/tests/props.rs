//! Property tests (proptest) for what stage 04 reads from people and from images: Dockerfile
//! text, image references, and layer tarballs. Each property is checked on a few dozen random
//! inputs by default, so `cargo test` stays quick; `PROPTEST_CASES=10000 cargo test -p images
//! --test props` runs a longer hunt. A failing case is shrunk to a small one and saved under
//! `tests/props.proptest-regressions`, which is replayed first on every later run.
//!
//! What must hold:
//! - no input makes the Dockerfile parser, the reference parser or the unpacker panic;
//! - a parsed instruction prints (its `Display`, the build cache's key) to text that parses
//!   back to the same instruction, so two different steps never share a cache key;
//! - a parsed reference prints to a reference that parses back to itself;
//! - unpacking any bytes, or a tarball built to attack the unpacker, writes nothing outside the
//!   layer directory, and a refused tarball leaves no layer directory behind.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use images::dockerfile::parse::{INSTRUCTIONS, parse_instruction};
use images::dockerfile::{Dockerfile, Instruction, Location};
use images::reference::ImageRef;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tar::{EntryType, Header};

/// `cases` random inputs per property, unless `PROPTEST_CASES` asks for another number. A
/// failing case is saved beside this file (`props.proptest-regressions`) and replayed first.
fn config(cases: u32) -> ProptestConfig {
    let mut config = if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default()
    } else {
        ProptestConfig::with_cases(cases)
    };
    config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )));
    config
}

// --- Dockerfiles -------------------------------------------------------------------------------

/// Pieces a Dockerfile line is made of: words, quotes, escapes, substitutions, JSON, flags,
/// heredoc markers, blanks and line breaks of every kind the parser treats specially.
const FRAGMENTS: &[&str] = &[
    "a",
    "busybox",
    "scratch",
    "/dst/",
    "/srv",
    "x y",
    "80",
    "80/udp",
    "8000-8010",
    "1:2",
    "app",
    "\"",
    "'",
    "\\",
    "`",
    "$",
    "$A",
    "${A}",
    "${A:-d}",
    "${A-d}",
    "${A:+w}",
    "${A+w}",
    "${A:?msg}",
    "${A?}",
    "${A",
    "${",
    "}",
    "${:}",
    "${}",
    "$$",
    "[",
    "]",
    "[]",
    "[\"a\",",
    "\"b\"]",
    "[\"sh\", \"-c\"]",
    "['a']",
    "[ -f /x ]",
    "[1]",
    "<<EOF",
    "<<-'EOF'",
    "<<\"E\"",
    "EOF",
    "=",
    "A=1",
    "B=\"x y\"",
    "C='q'",
    "D=",
    "=v",
    "AS",
    "as",
    "stage1",
    "1stage",
    "#",
    "# c",
    " ",
    "  ",
    "\t",
    "\r",
    "\u{b}",
    "\u{c}",
    "\u{a0}",
    "é",
    "µs",
    "\u{feff}",
    "\u{2028}",
    "\n",
    "\r\n",
    "\\\n",
    "`\n",
    "\\  \n",
    "--",
    "--from=a",
    "--chown=1:1",
    "--chown=\"a b\"",
    "--chmod=755",
    "--link",
    "--link=maybe",
    "--platform=linux/amd64",
    "--interval=1.5s",
    "--timeout=0",
    "--retries=3",
    "--retries=-1",
    "--start-period=99999999999h",
    "--mount=type=cache",
    "--nope",
    "NONE",
    "CMD",
    "SIGTERM",
    "RTMIN+3",
    "9",
    "0.5h",
    "1e3s",
];

/// A fragment, or an instruction word in a random case.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
        1 => (prop::sample::select(&INSTRUCTIONS[..]), any::<bool>())
            .prop_map(|(w, lower)| if lower { w.to_lowercase() } else { w.to_string() }),
        1 => "[ -~]{0,6}",
    ]
}

/// One line: an instruction word, then fragments, some joined by blanks.
fn line() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        6 => prop::sample::select(&INSTRUCTIONS[..]).prop_map(str::to_string),
        1 => "[A-Za-z]{1,10}",
    ];
    (
        word,
        prop::collection::vec((fragment(), any::<bool>()), 0..10),
    )
        .prop_map(|(word, rest)| {
            let mut line = word;
            line.push(' ');
            for (piece, blank) in rest {
                line.push_str(&piece);
                if blank {
                    line.push(' ');
                }
            }
            line
        })
}

/// Dockerfile-shaped text: maybe a parser directive, maybe a FROM, then lines.
fn dockerfile_text() -> impl Strategy<Value = String> {
    let directive = prop::sample::select(&[
        "",
        "# escape=`\n",
        "# escape=\\\n",
        "# syntax=docker/dockerfile:1\n",
        "# escape=x\n",
        "#escape = `\n",
    ]);
    let from = prop::sample::select(&["", "FROM busybox\n", "ARG B=busybox\nFROM $B AS base\n"]);
    let ending = prop::sample::select(&["\n", "\r\n", " \\\n", "\n\n# comment\n", ""]);
    (
        directive,
        from,
        prop::collection::vec((line(), ending), 0..8),
    )
        .prop_map(|(directive, from, lines)| {
            let mut text = format!("{directive}{from}");
            for (line, ending) in lines {
                text.push_str(&line);
                text.push_str(ending);
            }
            text
        })
}

/// Whether an instruction's `Display` is its text as written: the instructions whose words
/// are printed as they are (or as JSON arrays, which read back the same).
fn printed_as_written(instruction: &Instruction) -> bool {
    !matches!(
        instruction,
        Instruction::Env(_)
            | Instruction::Label(_)
            | Instruction::Arg(_)
            | Instruction::Copy(_)
            | Instruction::Add(_)
    )
}

/// Checks that a parsed Dockerfile's instructions that print as written parse back to
/// themselves. (ENV, LABEL, ARG, COPY and ADD print their *substituted* form, with values as
/// JSON strings, for the cache key; for those [`no_two_steps_share_a_cache_text`] checks what
/// the key needs.)
fn round_trips(df: &Dockerfile) -> Result<(), TestCaseError> {
    for line in df
        .lines
        .iter()
        .filter(|l| printed_as_written(&l.instruction))
    {
        let printed = line.instruction.to_string();
        let at = Location::new("Dockerfile", 1);
        let again = parse_instruction(&at, &printed, df.escape).map_err(|e| e.to_string());
        prop_assert_eq!(
            again.as_ref(),
            Ok(&line.instruction),
            "line {:?} printed as {:?}",
            line.text,
            printed
        );
    }
    Ok(())
}

/// Flags and words for lines that differ a little: quotes, blanks and flag-like text inside
/// values, and `$A`, which the lookup below sets to a value with a blank and a flag in it.
const NEAR_FLAGS: &[&str] = &[
    "--from=x",
    "--from=\"$A\"",
    "--link",
    "--chown=a",
    "--chown=\"$A\"",
    "--chmod=7",
    "--chmod=\"$A\"",
];
const NEAR_WORDS: &[&str] = &[
    "a",
    "b",
    "$A",
    "\"$A\"",
    "\\$A",
    "'x y'",
    "a=$A",
    "a=\"x --link\"",
];

/// COPY, ADD, ENV, LABEL and ARG lines from [`NEAR_FLAGS`] and [`NEAR_WORDS`]: the lines share
/// one of two lists of words, so that they differ in a few places only.
fn near_lines() -> impl Strategy<Value = Vec<String>> {
    let words = || prop::collection::vec(prop::sample::select(NEAR_WORDS), 1..4);
    let line = (
        prop::sample::select(&["COPY", "COPY", "ADD", "ENV", "LABEL", "ARG"]),
        prop::collection::vec(prop::sample::select(NEAR_FLAGS), 0..3),
        any::<bool>(),
    );
    (words(), words(), prop::collection::vec(line, 40..80)).prop_map(|(one, two, lines)| {
        lines
            .into_iter()
            .map(|(word, flags, first)| {
                let mut line = vec![word];
                line.extend(flags);
                line.extend(if first { &one } else { &two });
                line.join(" ")
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn dockerfile_parser_never_panics_on_any_text(text in any::<String>()) {
        let _ = Dockerfile::parse("Dockerfile", &text);
    }

    #[test]
    fn dockerfile_parser_never_panics_on_dockerfile_shaped_text(text in dockerfile_text()) {
        if let Ok(df) = Dockerfile::parse("Dockerfile", &text) {
            prop_assert!(!df.lines.is_empty());
            round_trips(&df)?;
        }
    }

    /// Each `${...}` inside another is a call on the stack: deep nesting must be an error, not
    /// a stack overflow, which aborts the process. (Test threads have 2 MiB of stack; a build
    /// has 8.)
    #[test]
    fn deeply_nested_substitutions_are_refused_not_overflowed(
        opens in prop::collection::vec(prop::sample::select(&["${A:-", "${A+", "\"${A:?", "${A-'"]), 1..4),
        depth in prop_oneof![0usize..100, 100usize..20_000],
        word in prop::sample::select(&["WORKDIR", "ENV A=", "ONBUILD WORKDIR", "LABEL l=", "COPY a"]),
    ) {
        let open: String = opens.concat();
        let text = format!("FROM busybox\n{word} {}x{}\n", open.repeat(depth), "}".repeat(depth));
        let _ = Dockerfile::parse("Dockerfile", &text);
    }

    #[test]
    fn every_accepted_line_prints_back_to_itself(line in line()) {
        let text = format!("FROM busybox\n{line}\n");
        if let Ok(df) = Dockerfile::parse("Dockerfile", &text) {
            round_trips(&df)?;
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// The build cache keys a step by its substituted instruction's text: two different
    /// instructions with one text would share a cached layer.
    #[test]
    fn no_two_steps_share_a_cache_text(lines in near_lines()) {
        // A value with a blank and a flag in it, as a build argument can hold.
        let lookup = |name: &str| (name == "A").then(|| "x --link".to_string());
        let mut seen: std::collections::HashMap<String, (String, Instruction)> = Default::default();
        for line in lines {
            let Ok(df) = Dockerfile::parse("Dockerfile", &format!("FROM busybox\n{line}\n")) else {
                continue;
            };
            let Ok(step) = df.lines[1].instruction.substitute(df.escape, &lookup) else {
                continue;
            };
            let text = step.to_string();
            if let Some((first, earlier)) = seen.get(&text) {
                prop_assert_eq!(
                    earlier, &step,
                    "{:?} and {:?} have one cache text {:?}", first, line, text
                );
            }
            seen.insert(text, (line, step));
        }
    }
}

// --- image references --------------------------------------------------------------------------

/// A path component of the grammar: `[a-z0-9]+ ((.|_|__|-+)[a-z0-9]+)*`.
fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}"
}

/// A registry: a host name or address, with a port or not.
fn registry() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just("localhost".to_string()),
        "[a-z0-9]{1,8}(\\.[a-z0-9]{1,8}){1,3}",
        "[0-9]{1,3}(\\.[0-9]{1,3}){3}",
        Just("[::1]".to_string()),
        "[A-Z][a-zA-Z0-9]{0,6}\\.example",
    ];
    (host, prop::option::of(1u16..)).prop_map(|(host, port)| match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// A known-good reference, with the parts it was made of.
#[derive(Debug, Clone)]
struct GoodRef {
    text: String,
    registry: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

fn good_reference() -> impl Strategy<Value = GoodRef> {
    (
        prop::option::of(registry()),
        prop::collection::vec(component(), 1..4),
        prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        prop::option::of("[0-9a-f]{64}"),
    )
        .prop_map(|(registry, mut path, tag, digest)| {
            if registry.is_none() && path.len() > 1 {
                // A first component with a dot would be read as a registry (`quay.io/x`).
                path[0] = path[0].replace('.', "-");
            }
            let path = path.join("/");
            let digest = digest.map(|hex| format!("sha256:{hex}"));
            let mut text = match &registry {
                Some(r) => format!("{r}/{path}"),
                None => path.clone(),
            };
            if let Some(tag) = &tag {
                text.push(':');
                text.push_str(tag);
            }
            if let Some(digest) = &digest {
                text.push('@');
                text.push_str(digest);
            }
            GoodRef {
                text,
                registry,
                path,
                tag,
                digest,
            }
        })
}

/// Reference-shaped text: the pieces of good references, glued in any order.
fn reference_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        component(),
        registry(),
        prop::sample::select(&[
            "/",
            ":",
            "@",
            "sha256:",
            ".",
            "_",
            "__",
            "-",
            "library",
            "docker.io",
            "index.docker.io",
            "A",
            "[",
            "]",
            "::",
            "@sha256:",
            "é",
            " ",
            "\0",
        ])
        .prop_map(str::to_string),
        "[0-9a-f]{64}",
        "[a-z]{60,130}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// A parsed reference prints, in each of its forms, to text that parses back to it.
fn prints_back(reference: &ImageRef) -> Result<(), TestCaseError> {
    for printed in [
        reference.full(),
        reference.familiar(),
        reference.to_string(),
    ] {
        let again = ImageRef::parse(&printed).map_err(|e| e.to_string());
        prop_assert_eq!(again.as_ref(), Ok(reference), "printed as {:?}", printed);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn reference_parser_never_panics_on_any_text(text in any::<String>()) {
        if let Ok(reference) = ImageRef::parse(&text) {
            prints_back(&reference)?;
        }
    }

    #[test]
    fn reference_shaped_text_parses_back_to_itself(text in reference_text()) {
        if let Ok(reference) = ImageRef::parse(&text) {
            prints_back(&reference)?;
        }
    }

    #[test]
    fn known_good_references_parse(good in good_reference()) {
        let name_len = good.text.split(['@']).next().map_or(0, |n| {
            n.len() - good.tag.as_ref().map_or(0, |t| t.len() + 1)
        });
        let parsed = ImageRef::parse(&good.text);
        if name_len + "docker.io/library/".len() > 255 {
            // Too long for the spec in its normalised form: refused or not, never a panic.
            return Ok(());
        }
        let parsed = parsed.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.tag(), good.tag.as_deref().or(good.digest.is_none().then_some("latest")));
        prop_assert_eq!(parsed.digest(), good.digest.as_deref());
        match &good.registry {
            Some(r) => {
                prop_assert_eq!(parsed.registry(), r.as_str());
                prop_assert_eq!(parsed.repository(), good.path.as_str());
            }
            // Without a registry, a first component with a dot is read as one (`quay.io/x`).
            None => prop_assert_eq!(parsed.registry(), "docker.io"),
        }
        prints_back(&parsed)?;
    }
}

// --- layer tarballs ----------------------------------------------------------------------------

/// Where a link in a hostile tarball points.
#[derive(Debug, Clone)]
enum Target {
    /// The sentinel directory next to the layer, by absolute path.
    SentinelAbsolute,
    /// The sentinel directory, by `../` climbs from inside the layer.
    SentinelRelative(usize),
    /// The victim file next to the layer, by absolute path.
    VictimAbsolute,
    /// The victim file, by `../` climbs.
    VictimRelative(usize),
    /// A path inside the layer (or made to look like one).
    Inner(String),
}

/// The kind of a tarball entry.
#[derive(Debug, Clone)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(Target),
    Hardlink(Target),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    /// A GNU sparse file: a hole of `hole` bytes, then the data.
    Sparse(u64, Vec<u8>),
    /// An entry type the unpacker does not know (`V`, `M`, `S` and the like).
    Odd(u8),
}

/// How an entry's path travels.
#[derive(Debug, Clone, Copy)]
enum PathForm {
    /// In the header's 100-byte name field (cut there).
    Header,
    /// In a GNU long-name entry before it.
    GnuLong,
    /// In a PAX `path` record.
    Pax,
}

#[derive(Debug, Clone)]
struct TarEntry {
    path: String,
    form: PathForm,
    kind: Kind,
    mode: u32,
    mtime: u64,
    uid: u64,
    pax: Vec<(String, Vec<u8>)>,
}

/// Path components that collide with each other often and attack the unpacker: `..`, whiteout
/// names in odd places, over-long names. The refused ones (`..`) are rarer, so that most
/// tarballs get some way in before they are refused, if they are.
fn path_component() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::sample::select(&["a", "b", "evil", "sentinel", "victim", "dev"])
            .prop_map(str::to_string),
        4 => prop::sample::select(&[
            ".wh.a", ".wh.evil", ".wh.b", ".wh..wh..opq", ".wh..wh.plnk", ".wh.", ".wh..",
            ".wh...", "x\u{1}y",
        ])
        .prop_map(str::to_string),
        2 => Just(".".to_string()),
        1 => Just(String::new()),
        1 => Just("..".to_string()),
        1 => (1usize..300).prop_map(|n| "n".repeat(n)),
    ]
}

/// A path: components joined by `/`, rarely absolute, maybe with a trailing `/`.
fn entry_path() -> impl Strategy<Value = String> {
    (
        prop_oneof![30 => Just(""), 6 => Just("./"), 1 => Just("/"), 1 => Just("//")],
        prop::collection::vec(path_component(), 0..5),
        prop::sample::select(&["", "", "/"]),
    )
        .prop_map(|(lead, parts, trail)| format!("{lead}{}{trail}", parts.join("/")))
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::SentinelAbsolute),
        (1usize..5).prop_map(Target::SentinelRelative),
        Just(Target::VictimAbsolute),
        (1usize..5).prop_map(Target::VictimRelative),
        entry_path().prop_map(Target::Inner),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Dir),
        3 => prop::collection::vec(any::<u8>(), 0..600).prop_map(Kind::File),
        4 => target().prop_map(Kind::Symlink),
        3 => target().prop_map(Kind::Hardlink),
        1 => (0u32..10, 0u32..10).prop_map(|(ma, mi)| Kind::Char(ma, mi)),
        1 => (0u32..10, 0u32..10).prop_map(|(ma, mi)| Kind::Block(ma, mi)),
        1 => Just(Kind::Fifo),
        1 => (
            prop_oneof![0u64..5000, Just(1 << 20), Just(1 << 40)],
            prop::collection::vec(any::<u8>(), 0..600)
        )
            .prop_map(|(hole, data)| Kind::Sparse(hole, data)),
        1 => prop::sample::select(b"VMND7Z").prop_map(Kind::Odd),
    ]
}

fn pax_record() -> impl Strategy<Value = (String, Vec<u8>)> {
    prop_oneof![
        Just((
            "SCHILY.xattr.trusted.overlay.opaque".to_string(),
            b"y".to_vec()
        )),
        Just(("SCHILY.xattr.user.note".to_string(), b"v".to_vec())),
        prop::collection::vec(any::<u8>(), 0..24)
            .prop_map(|v| ("SCHILY.xattr.security.capability".to_string(), v)),
        Just(("uid".to_string(), b"99999999999".to_vec())),
        Just(("mtime".to_string(), b"-1.5".to_vec())),
        Just(("mtime".to_string(), b"99999999999999999999".to_vec())),
        entry_path().prop_map(|p| ("linkpath".to_string(), p.into_bytes())),
    ]
}

fn tar_entry() -> impl Strategy<Value = TarEntry> {
    (
        entry_path(),
        prop::sample::select(&[
            PathForm::Header,
            PathForm::Header,
            PathForm::GnuLong,
            PathForm::Pax,
        ]),
        kind(),
        prop::sample::select(&[0o644u32, 0o755, 0o4755, 0o7777, 0o000, 0o1777]),
        prop::sample::select(&[0u64, 1_700_000_000, 0o77_777_777_777]),
        prop::sample::select(&[0u64, 1000, 0o7_777_777]),
        prop_oneof![6 => Just(Vec::new()), 1 => prop::collection::vec(pax_record(), 1..3)],
    )
        .prop_map(|(path, form, kind, mode, mtime, uid, pax)| TarEntry {
            path,
            form,
            kind,
            mode,
            mtime,
            uid,
            pax,
        })
}

/// Entries, some of them placed *through* an earlier one (`evil -> /outside`, then `evil/x`,
/// or a hardlink to `evil/x`): the attacks that need two entries in order.
fn tar_entries(max: usize) -> impl Strategy<Value = Vec<TarEntry>> {
    let through = (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        path_component(),
    );
    (
        prop::collection::vec(tar_entry(), 1..max),
        prop::collection::vec(through, 0..4),
    )
        .prop_map(|(mut entries, throughs)| {
            for (earlier, later, name) in throughs {
                let (i, j) = (earlier.index(entries.len()), later.index(entries.len()));
                if i >= j {
                    continue;
                }
                let path = format!("{}/{name}", entries[i].path.trim_end_matches('/'));
                match &mut entries[j].kind {
                    Kind::Hardlink(target) => *target = Target::Inner(path),
                    _ => entries[j].path = path,
                }
            }
            entries
        })
}

/// The directory a hostile layer is unpacked next to: the layer goes in `outer/layer`, beside
/// an empty `sentinel` directory and a `victim` file that links and paths aim at.
struct Outer {
    dir: tempfile::TempDir,
}

impl Outer {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("skiff-props-")
            .tempdir()
            .expect("make a temp dir");
        fs::create_dir(dir.path().join("sentinel")).expect("make the sentinel");
        fs::write(dir.path().join("victim"), b"victim").expect("write the victim");
        Outer { dir }
    }

    fn layer(&self) -> PathBuf {
        self.dir.path().join("layer")
    }

    fn sentinel(&self) -> PathBuf {
        self.dir.path().join("sentinel")
    }

    fn victim(&self) -> PathBuf {
        self.dir.path().join("victim")
    }

    fn resolve(&self, target: &Target) -> String {
        match target {
            Target::SentinelAbsolute => self.sentinel().display().to_string(),
            Target::SentinelRelative(n) => format!("{}sentinel", "../".repeat(*n)),
            Target::VictimAbsolute => self.victim().display().to_string(),
            Target::VictimRelative(n) => format!("{}victim", "../".repeat(*n)),
            Target::Inner(path) => path.clone(),
        }
    }

    /// Nothing but the layer (when kept), the sentinel and the victim is beside the layer; the
    /// sentinel is empty; the victim has its content, mode and only one link.
    fn untouched(&self, layer_kept: bool) -> Result<(), TestCaseError> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .expect("list a directory")
            .map(|e| {
                e.expect("read a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        let expected: &[&str] = if layer_kept {
            &["layer", "sentinel", "victim"]
        } else {
            &["sentinel", "victim"]
        };
        prop_assert_eq!(names, expected);
        let sentinel: Vec<_> = fs::read_dir(self.sentinel())
            .expect("list a directory")
            .collect();
        prop_assert!(
            sentinel.is_empty(),
            "written into the sentinel: {:?}",
            sentinel
        );
        let victim = fs::symlink_metadata(self.victim()).expect("stat an entry");
        prop_assert!(victim.is_file());
        prop_assert_eq!(
            victim.nlink(),
            1,
            "the victim was hardlinked into the layer"
        );
        prop_assert_eq!(victim.mode() & 0o7777, 0o644);
        prop_assert_eq!(fs::read(self.victim()).expect("read the victim"), b"victim");
        Ok(())
    }
}

/// Writes `entries` as a tarball, with raw names the `tar` crate's safe API would refuse.
fn build_tar(outer: &Outer, entries: &[TarEntry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut pax: Vec<(String, Vec<u8>)> = entry.pax.clone();
        let path = entry.path.as_bytes();
        match entry.form {
            PathForm::Header => {}
            PathForm::GnuLong => {
                let mut long = Header::new_gnu();
                long.set_entry_type(EntryType::GNULongName);
                long.as_gnu_mut().expect("a GNU header").name[..13]
                    .copy_from_slice(b"././@LongLink");
                let mut data = path.to_vec();
                data.push(0);
                long.set_size(data.len() as u64);
                long.set_cksum();
                builder
                    .append(&long, data.as_slice())
                    .expect("append to a Vec");
            }
            PathForm::Pax => pax.push(("path".into(), path.to_vec())),
        }
        let link = match &entry.kind {
            Kind::Symlink(t) | Kind::Hardlink(t) => Some(outer.resolve(t)),
            _ => None,
        };
        if let Some(link) = &link
            && link.len() > 100
        {
            pax.push(("linkpath".into(), link.as_bytes().to_vec()));
        }
        if !pax.is_empty() {
            builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .expect("append to a Vec");
        }
        let mut header = Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_mtime(entry.mtime);
        header.set_uid(entry.uid);
        header.set_gid(entry.uid);
        let data: Vec<u8> = match &entry.kind {
            Kind::Dir => {
                header.set_entry_type(EntryType::Directory);
                Vec::new()
            }
            Kind::File(data) => {
                header.set_entry_type(EntryType::Regular);
                data.clone()
            }
            Kind::Symlink(_) => {
                header.set_entry_type(EntryType::Symlink);
                Vec::new()
            }
            Kind::Hardlink(_) => {
                header.set_entry_type(EntryType::Link);
                Vec::new()
            }
            Kind::Char(major, minor) | Kind::Block(major, minor) => {
                let kind = if matches!(entry.kind, Kind::Char(..)) {
                    EntryType::Char
                } else {
                    EntryType::Block
                };
                header.set_entry_type(kind);
                header
                    .set_device_major(*major)
                    .expect("a GNU header has device fields");
                header
                    .set_device_minor(*minor)
                    .expect("a GNU header has device fields");
                Vec::new()
            }
            Kind::Fifo => {
                header.set_entry_type(EntryType::Fifo);
                Vec::new()
            }
            Kind::Sparse(hole, data) => {
                header.set_entry_type(EntryType::GNUSparse);
                let gnu = header.as_gnu_mut().expect("a GNU header");
                gnu.sparse[0].set_offset(*hole);
                gnu.sparse[0].set_length(data.len() as u64);
                gnu.set_real_size(hole + data.len() as u64);
                data.clone()
            }
            Kind::Odd(byte) => {
                header.set_entry_type(EntryType::new(*byte));
                Vec::new()
            }
        };
        header.set_size(data.len() as u64);
        {
            let gnu = header.as_gnu_mut().expect("a GNU header");
            let n = path.len().min(100);
            gnu.name[..n].copy_from_slice(&path[..n]);
            if let Some(link) = &link {
                let n = link.len().min(100);
                gnu.linkname[..n].copy_from_slice(&link.as_bytes()[..n]);
            }
        }
        header.set_cksum();
        builder
            .append(&header, data.as_slice())
            .expect("append to a Vec");
    }
    builder.into_inner().expect("finish a Vec")
}

/// The layer holds no device but the 0:0 whiteouts, and takes no more disk than the tarball
/// brought (give or take a block per entry): a few bytes of header cannot fill the disk.
fn layer_is_sane(layer: &Path, tar_len: usize) -> Result<(), TestCaseError> {
    let mut stack = vec![layer.to_path_buf()];
    let (mut used, mut entries) = (0u64, 0u64);
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("list a directory") {
            let entry = entry.expect("read a directory entry");
            let meta = fs::symlink_metadata(entry.path()).expect("stat an entry");
            used += meta.blocks() * 512;
            entries += 1;
            let kind = meta.file_type();
            if kind.is_dir() {
                stack.push(entry.path());
            }
            prop_assert!(
                !kind.is_block_device(),
                "a block device: {:?}",
                entry.path()
            );
            if kind.is_char_device() {
                prop_assert_eq!(
                    meta.rdev(),
                    0,
                    "a device that is not a whiteout: {:?}",
                    entry.path()
                );
            }
        }
    }
    let allowed = tar_len as u64 + 8192 * (entries + 1);
    prop_assert!(
        used <= allowed,
        "{} bytes on disk from a tarball of {}",
        used,
        tar_len
    );
    Ok(())
}

// ANCHOR: unpack_checked
/// Unpacks `bytes` next to the sentinel and victim and checks that nothing outside was touched.
fn unpack_checked(outer: &Outer, bytes: &[u8]) -> Result<(), TestCaseError> {
    let result = images::unpack::unpack(bytes, &outer.layer());
    outer.untouched(result.is_ok())?;
    if result.is_ok() {
        layer_is_sane(&outer.layer(), bytes.len())?;
    }
    Ok(())
}
// ANCHOR_END: unpack_checked

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn unpacking_any_bytes_writes_nothing_outside(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..3000),
            // gzip's magic, then noise.
            prop::collection::vec(any::<u8>(), 0..3000).prop_map(|mut v| {
                v.splice(0..0, [0x1f, 0x8b, 8, 0]);
                v
            }),
        ]
    ) {
        let outer = Outer::new();
        unpack_checked(&outer, &bytes)?;
    }

    #[test]
    fn unpacking_a_hostile_tarball_writes_nothing_outside(
        entries in tar_entries(12),
        gzip in any::<bool>(),
    ) {
        let outer = Outer::new();
        let mut bytes = build_tar(&outer, &entries);
        if gzip {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&bytes).unwrap();
            bytes = gz.finish().unwrap();
        }
        unpack_checked(&outer, &bytes)?;
    }

    #[test]
    fn unpacking_a_damaged_tarball_writes_nothing_outside(
        entries in tar_entries(8),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let outer = Outer::new();
        let mut bytes = build_tar(&outer, &entries);
        for (at, byte) in damage {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let keep = cut.index(bytes.len() + 1);
        unpack_checked(&outer, &bytes[..keep])?;
    }
}
