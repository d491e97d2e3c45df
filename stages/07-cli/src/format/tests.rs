//! The examples of Docker's documentation (`docker inspect --format`, `docker ps --format`,
//! "Format command and log output"), Go's printing rules, and errors.

use serde_json::{Value, json};

use super::{Template, is_json, render, table_body};

/// A container as `inspect` shows it, cut down to what the examples use.
fn container() -> Value {
    json!({
        "Id": "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2",
        "Name": "/web",
        "Path": "nginx",
        "Args": ["-g", "daemon off;"],
        "State": {"Status": "running", "Running": true, "Pid": 137, "ExitCode": 0, "Health": null},
        "Config": {
            "Image": "nginx:1.27",
            "Labels": {"com.example.version": "1.0", "maintainer": "a<b>&c"},
            "Env": ["PATH=/usr/bin", "A=1"],
            "Cmd": null
        },
        "NetworkSettings": {
            "Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "back": {"IPAddress": "10.0.0.5"}},
            "Ports": {
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}]
            }
        },
        "Mounts": [
            {"Source": "/data", "Destination": "/var/lib/data"},
            {"Source": "/logs", "Destination": "/var/log"}
        ]
    })
}

#[track_caller]
fn ok(template: &str) -> String {
    match render(template, &container()) {
        Ok(out) => out,
        Err(e) => panic!("{template:?} failed: {e}"),
    }
}

#[track_caller]
fn of(template: &str, value: Value) -> String {
    match render(template, &value) {
        Ok(out) => out,
        Err(e) => panic!("{template:?} failed: {e}"),
    }
}

#[track_caller]
fn err(template: &str) -> String {
    match render(template, &container()) {
        Ok(out) => panic!("{template:?} should fail, printed {out:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn docker_inspect_examples() {
    assert_eq!(ok("{{.State.Status}}"), "running");
    // Maps range in key order, as Go's do: "back" before "bridge".
    assert_eq!(
        ok("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"),
        "10.0.0.5172.17.0.2"
    );
    assert_eq!(
        ok("{{json .Config}}"),
        r#"{"Cmd":null,"Env":["PATH=/usr/bin","A=1"],"Image":"nginx:1.27","Labels":{"com.example.version":"1.0","maintainer":"a<b>&c"}}"#
    );
    assert_eq!(
        ok(
            "{{range $p, $conf := .NetworkSettings.Ports}} {{$p}} -> {{(index $conf 0).HostPort}} {{end}}"
        ),
        " 443/tcp -> 8443  80/tcp -> 8080 "
    );
    assert_eq!(
        ok(r#"{{index .Config.Labels "com.example.version"}}"#),
        "1.0"
    );
    assert_eq!(ok("{{.Name}} {{.State.Pid}}"), "/web 137");
    assert_eq!(ok("{{if .State.Running}}up{{else}}down{{end}}"), "up");
    assert_eq!(ok(r#"{{join .Args " "}}"#), "-g daemon off;");
    assert_eq!(ok("{{upper .Name}}"), "/WEB");
    assert_eq!(ok("{{len .Mounts}}"), "2");
    assert_eq!(
        ok(r#"{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}"#),
        "/data:/var/lib/data /logs:/var/log "
    );
}

#[test]
fn docker_format_functions() {
    assert_eq!(ok(r#"{{join .Args " , "}}"#), "-g , daemon off;");
    assert_eq!(ok(r#"{{split .Config.Image ":"}}"#), "[nginx 1.27]");
    assert_eq!(ok(r#"{{index (split .Config.Image ":") 1}}"#), "1.27");
    assert_eq!(
        ok(r#"{{lower "NGINX"}} {{title "hello wide_world-x"}}"#),
        "nginx Hello Wide_world-X"
    );
    assert_eq!(ok("{{truncate .Id 12}}"), "4fa6e0f0c678");
    assert_eq!(ok(r#"{{truncate "ab" 12}}"#), "ab");
    // Docker truncates bytes; a character cut in half is left out.
    assert_eq!(ok(r#"{{truncate "héllo" 2}}"#), "h");
    assert_eq!(ok(r#"[{{pad "ab" 1 2}}][{{pad "" 1 2}}]"#), "[ ab  ][]");
    assert_eq!(
        ok(r#"{{range $k, $v := .Args}}{{println $v $k}}{{end}}"#),
        "-g 0\ndaemon off; 1\n"
    );
    assert_eq!(
        ok("{{json .Name}} {{json .State.Pid}} {{json .State.Health}} {{json .Nope}}"),
        r#""/web" 137 null null"#
    );
}

#[test]
fn ps_table_rows() {
    assert_eq!(
        table_body("table {{.ID}}\t{{.Names}}"),
        Some("{{.ID}}\t{{.Names}}")
    );
    assert_eq!(table_body("table"), Some(""));
    assert_eq!(table_body("{{.ID}}\t{{.Names}}"), None);
    assert_eq!(table_body("json"), None);
    let row = Template::parse(table_body("table {{.ID}}\t{{.Names}}").unwrap_or_default())
        .map_err(|e| e.to_string());
    let Ok(row) = row else { panic!("{row:?}") };
    let rows = [
        json!({"ID": "4fa6e0f0c678", "Names": "web"}),
        json!({"ID": "9c1f3a7b2d10", "Names": "db"}),
    ];
    let printed: Vec<String> = rows.iter().filter_map(|r| row.execute(r).ok()).collect();
    assert_eq!(printed, ["4fa6e0f0c678\tweb", "9c1f3a7b2d10\tdb"]);
    assert_eq!(
        of(
            r#"{{.Names}}: {{.Status}}"#,
            json!({"Names": "web", "Status": "Up 2 hours"})
        ),
        "web: Up 2 hours"
    );
}

#[test]
fn json_directive() {
    assert!(is_json("json"));
    assert!(!is_json("json "));
    assert!(!is_json("{{json .}}"));
    assert!(!is_json("JSON"));
}

#[test]
fn prints_values_as_go_fmt_does() {
    assert_eq!(of("{{.}}", json!("raw \"text\"")), "raw \"text\"");
    assert_eq!(of("{{.}}", json!(137)), "137");
    assert_eq!(of("{{.}}", json!(-5)), "-5");
    assert_eq!(of("{{.}}", json!(1000000)), "1000000");
    assert_eq!(of("{{.}}", json!(u64::MAX)), "18446744073709551615");
    assert_eq!(of("{{.}}", json!(1.5)), "1.5");
    assert_eq!(of("{{.}}", json!(1e6)), "1e+06");
    assert_eq!(of("{{.}}", json!(123_456.0)), "123456");
    assert_eq!(of("{{.}}", json!(1_234_567.0)), "1.234567e+06");
    assert_eq!(of("{{.}}", json!(0.0001)), "0.0001");
    assert_eq!(of("{{.}}", json!(0.000_012_5)), "1.25e-05");
    assert_eq!(of("{{.}}", json!(-2.0)), "-2");
    assert_eq!(of("{{.}}", json!(1e21)), "1e+21");
    assert_eq!(of("{{.}}", json!(true)), "true");
    assert_eq!(of("{{.}}", json!(null)), "<nil>");
    assert_eq!(of("{{.}}", json!(["a", "b", "c"])), "[a b c]");
    assert_eq!(of("{{.}}", json!([])), "[]");
    assert_eq!(
        of("{{.}}", json!({"k2": "v2", "k1": "v1"})),
        "map[k1:v1 k2:v2]"
    );
    assert_eq!(
        of("{{.}}", json!({"a": [1, null, {"b": 2.5}], "c": {}})),
        "map[a:[1 <nil> map[b:2.5]] c:map[]]"
    );
    assert_eq!(ok("{{.State.Health}}"), "<nil>");
}

#[test]
fn missing_keys_print_no_value() {
    assert_eq!(ok("{{.Nope}}"), "<no value>");
    assert_eq!(ok("{{.Nope.Deeper}}"), "<no value>");
    assert_eq!(ok("{{.Config.Labels.nope}}"), "<no value>");
    assert_eq!(ok(r#"{{index .Config.Labels "nope"}}"#), "<no value>");
    // Passed to a function, a missing value is nil, as Go passes it.
    assert_eq!(ok("{{print .Nope}}"), "<nil>");
    assert_eq!(ok("{{if .Nope}}yes{{else}}no{{end}}"), "no");
}

#[test]
fn json_is_go_encoding_json_without_html_escaping() {
    assert_eq!(
        of("{{json .}}", json!({"b": [1, 2.5, 1e6], "a": "x"})),
        r#"{"a":"x","b":[1,2.5,1000000]}"#
    );
    // docker/cli calls SetEscapeHTML(false): <, > and & stay; U+2028/2029 are escaped always.
    assert_eq!(
        of("{{json .}}", json!("a<b>&c \"q\" \\ \n\t\u{1}\u{2028}")),
        r#""a<b>&c \"q\" \\ \n\t\u0001\u2028""#
    );
    assert_eq!(
        of("{{json .}}", json!([1e21, 1e-7, 0.000_001, 0.0])),
        "[1e+21,1e-7,0.000001,0]"
    );
}

#[test]
fn actions_variables_and_pipelines() {
    assert_eq!(ok("{{$x := .Name}}[{{$x}}]"), "[/web]");
    assert_eq!(ok("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}"), "2");
    assert_eq!(ok("{{range .Mounts}}{{$.Name}}{{end}}"), "/web/web");
    assert_eq!(ok("{{$}}"), ok("{{.}}"));
    assert_eq!(ok(r#"{{.Name | printf "%q"}}"#), r#""/web""#);
    assert_eq!(ok("{{.Args | len | printf \"%03d\"}}"), "002");
    assert_eq!(ok("{{(index .Mounts 1).Source}}"), "/logs");
    assert_eq!(
        ok("{{$m := index .Mounts 0}}{{$m.Destination}}"),
        "/var/lib/data"
    );
    assert_eq!(
        ok("{{with $s := .State}}{{$s.Pid}} {{.Status}}{{end}}"),
        "137 running"
    );
    assert_eq!(ok("{{with .Nope}}x{{else}}y{{end}}"), "y");
    assert_eq!(
        ok("{{with .Nope}}x{{else with .State}}{{.Status}}{{end}}"),
        "running"
    );
}

#[test]
fn control_structures() {
    let status = r#"{{if eq .State.Status "exited"}}x{{else if eq .State.Status "running"}}r{{else}}?{{end}}"#;
    assert_eq!(ok(status), "r");
    assert_eq!(ok("{{range .Config.Cmd}}x{{else}}none{{end}}"), "none");
    assert_eq!(ok("{{range .Nope}}x{{else}}none{{end}}"), "none");
    assert_eq!(
        ok("{{range $i, $e := .Args}}{{$i}}={{$e}} {{end}}"),
        "0=-g 1=daemon off; "
    );
    assert_eq!(
        ok("{{range $e := .Args}}<{{$e}}>{{end}}"),
        "<-g><daemon off;>"
    );
    assert_eq!(
        ok("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"),
        "com.example.version=1.0;maintainer=a<b>&c;"
    );
    assert_eq!(
        ok(r#"{{range .Args}}{{if eq . "daemon off;"}}{{break}}{{end}}{{.}}{{end}}"#),
        "-g"
    );
    assert_eq!(
        ok(r#"{{range .Args}}{{if eq . "-g"}}{{continue}}{{end}}{{.}}{{end}}"#),
        "daemon off;"
    );
    assert_eq!(ok("{{range 3}}{{.}}{{end}}"), "012");
    assert_eq!(
        ok("{{range (split \"a,b\" \",\")}}[{{.}}]{{end}}"),
        "[a][b]"
    );
}

#[test]
fn comments_and_trimming() {
    assert_eq!(ok("a {{- /* a comment */ -}} b"), "ab");
    assert_eq!(ok("a{{/* a\nlong comment */}}b"), "ab");
    // Go's documentation example.
    assert_eq!(ok("{{23 -}} < {{- 45}}"), "23<45");
    assert_eq!(ok("x \n {{- .Name}} \n y"), "x/web \n y");
    assert_eq!(ok("{{range .Args -}}\n  {{.}}\n{{- end}}"), "-gdaemon off;");
    assert_eq!(ok("{{-3}}"), "-3");
}

#[test]
fn literals() {
    assert_eq!(ok(r#"{{"a\tb\u00e9\x41\101"}}"#), "a\tbéAA");
    assert_eq!(ok(r#"{{`a\tb`}}"#), r"a\tb");
    assert_eq!(
        ok("{{1.5}} {{0x1F}} {{0o17}} {{017}} {{1_000}} {{1e3}} {{'a'}} {{'\\n'}}"),
        "1.5 31 15 15 1000 1000 97 10"
    );
    assert_eq!(ok("{{true}} {{false}} {{print nil}}"), "true false <nil>");
}

#[test]
fn go_builtins() {
    assert_eq!(
        ok(r#"{{and 1 0 "x"}} {{and 1 "x"}} {{or 0 "" "x"}} {{or 0 ""}}"#),
        "0 x x "
    );
    assert_eq!(ok("{{not .State.Running}} {{not .Nope}}"), "false true");
    // and/or stop early, so .Nope.X is never asked of a missing value's nil.
    assert_eq!(ok("{{and .State.Health .State.Health.Status}}"), "<nil>");
    assert_eq!(
        ok(r#"{{eq .State.Status "a" "running"}} {{ne 1 2}} {{eq .State.Pid 137}}"#),
        "true true true"
    );
    assert_eq!(
        ok("{{eq .State.ExitCode 0.0}} {{lt 1 2.5}} {{le 2 2}} {{gt 3 2}} {{ge \"b\" \"a\"}}"),
        "true true true true true"
    );
    assert_eq!(
        ok("{{eq .State.Health nil}} {{eq .Nope nil}} {{eq .Name nil}}"),
        "true true false"
    );
    assert_eq!(
        ok(r#"{{index .Mounts 1 "Source"}} {{index .Args 0}} {{index "abc" 1}}"#),
        "/logs -g 98"
    );
    assert_eq!(
        ok("{{slice .Name 1}} {{slice .Args 0 1}} {{slice .Args 1 2 2}} {{slice .Args}}"),
        "web [-g] [daemon off;] [-g daemon off;]"
    );
    assert_eq!(
        ok("{{len .Name}} {{len .Config.Labels}} {{len .Config.Cmd}} {{len \"é\"}}"),
        "4 2 0 2"
    );
    assert_eq!(
        ok(r#"{{print 1 2 "a" "b" 3 .Args}}"#),
        "1 2ab3 [-g daemon off;]"
    );
    assert_eq!(
        ok(r#"{{html "<a href='x'>&\"</a>"}}"#),
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"
    );
    assert_eq!(ok(r#"{{js "a'b\"<=\\"}}"#), r#"a\'b\"\u003C\u003D\\"#);
    assert_eq!(
        ok(r#"{{urlquery "a b&c=d/é"}} {{"x y" | urlquery}}"#),
        "a+b%26c%3Dd%2F%C3%A9 x+y"
    );
}

#[test]
fn printf_verbs() {
    assert_eq!(
        ok(
            r#"{{printf "%-8s|%5d|%v|%q|%t|%x|%X" .State.Status .State.Pid .Args .Name true "hi" 255}}"#
        ),
        r#"running |  137|[-g daemon off;]|"/web"|true|6869|FF"#
    );
    assert_eq!(
        ok(r#"{{printf "%05.1f|%6.2f|%.0f|%f" 3.14159 1.5 2.5 0.1}}"#),
        "003.1|  1.50|2|0.100000"
    );
    assert_eq!(
        ok(r#"{{printf "%e|%g|%g|%.3g|%v" 1234.5678 1e6 0.5 3.14159 2.0}}"#),
        "1.234568e+03|1e+06|0.5|3.14|2"
    );
    assert_eq!(
        ok(r#"{{printf "%+d|%05d|%-5d|%x|%c" 5 -42 7 -255 65}}"#),
        "+5|-0042|7    |-ff|A"
    );
    assert_eq!(
        ok(r#"{{printf "%s|%.2s|%8.3s|" "abc" "héllo" "abcdef"}}"#),
        "abc|hé|     abc|"
    );
    assert_eq!(ok(r#"{{printf "100%%"}}"#), "100%");
    assert_eq!(
        ok(r#"{{printf "%d %s" 1.5 .State.Pid}}"#),
        "%!d(float64=1.5) %!s(int=137)"
    );
    assert_eq!(ok(r#"{{printf "%s %s" "a"}}"#), "a %!s(MISSING)");
    assert_eq!(
        ok(r#"{{printf "%s" "a" 1 "b"}}"#),
        "a%!(EXTRA int=1, string=b)"
    );
    assert_eq!(
        ok(r#"{{printf "%d" .State.Health}} {{printf "%z" 1}} {{printf "50%"}}"#),
        "%!d(<nil>) %!z(int=1) 50%!(NOVERB)"
    );
    assert_eq!(
        ok(r#"{{printf "%v" .Config.Labels}}"#),
        "map[com.example.version:1.0 maintainer:a<b>&c]"
    );
    assert_eq!(ok(r#"{{printf "%q" .Args}}"#), r#"["-g" "daemon off;"]"#);
    assert_eq!(
        ok(r#"{{printf "%q" "tab\there\u0001é"}}"#),
        r#""tab\there\x01é""#
    );
    assert_eq!(ok(r#"{{printf "%*d|%-*d|" 4 1 3 2}}"#), "   1|2  |");
}

#[test]
fn execution_errors_say_what_and_where() {
    assert_eq!(
        err("{{.Name.X}}"),
        r#"template: :1:2: executing "" at <.Name.X>: can't evaluate field X in type string"#
    );
    assert_eq!(
        err("{{.State.Health.Status}}"),
        r#"template: :1:2: executing "" at <.State.Health.Status>: nil pointer evaluating interface {}.Status"#
    );
    assert_eq!(
        err("{{index .Args 5}}"),
        r#"template: :1:2: executing "" at <index .Args 5>: error calling index: index out of range: 5"#
    );
    assert_eq!(
        err("line one\n  {{upper .State.Pid}}"),
        r#"template: :2:4: executing "" at <upper .State.Pid>: error calling upper: wrong type for value; expected string; got int"#
    );
    assert!(err("{{.Name .Path}}").contains("can't give argument to non-function .Name"));
    assert!(err("{{.Name | .Path}}").contains("can't give argument to non-function .Path"));
    assert!(err("{{range .Name}}{{end}}").contains("range can't iterate over /web"));
    assert!(err("{{lt .Name 1}}").contains("incompatible types for comparison"));
    assert!(err("{{eq .Args .Args}}").contains("non-comparable type"));
    assert!(err("{{len 3}}").contains("len of type int"));
    assert!(err("{{join .Mounts \",\"}}").contains("join wants strings"));
    assert!(err("{{truncate .Name -1}}").contains("negative count -1"));
    assert!(err("{{slice .Name 3 1}}").contains("invalid slice index: 3 > 1"));
    assert!(err("{{slice \"é\" 1}}").contains("splits a UTF-8 character"));
    assert!(err("{{not 1 2}}").contains("error calling not: wrong number of args: want 1, got 2"));
}

#[test]
fn parse_errors_say_what_and_where() {
    let cases = [
        ("{{.Name", ":1:7: unclosed action"),
        (
            "{{if .A}}x",
            ":1:2: unexpected end of template: {{if}} has no {{end}}",
        ),
        (
            "{{range .A}}x{{else}}y{{else}}z{{end}}",
            ":1:24: expected {{end}}; found {{else}}",
        ),
        ("x{{end}}", ":1:3: unexpected {{end}}"),
        ("{{else}}", ":1:2: unexpected {{else}}"),
        ("{{nope .A}}", ":1:2: function \"nope\" not defined"),
        ("{{$x}}", ":1:2: undefined variable \"$x\""),
        ("{{$x = 1}}", ":1:2: undefined variable \"$x\""),
        (
            "{{if true}}{{$x := 1}}{{end}}{{$x}}",
            ":1:31: undefined variable \"$x\"",
        ),
        ("{{break}}", ":1:2: {{break}} outside {{range}}"),
        (
            "{{range .A}}{{else}}{{continue}}{{end}}",
            ":1:22: {{continue}} outside {{range}}",
        ),
        (
            "{{template \"x\"}}",
            ":1:2: {{template}} is not supported: a --format has no named templates",
        ),
        (
            "{{.A | \"x\"}}",
            ":1:7: non executable command in pipeline stage 2",
        ),
        ("{{}}", ":1:2: missing value for command"),
        ("{{.A |}}", ":1:6: missing command after |"),
        ("{{(.A}}", ":1:5: unclosed left paren"),
        ("{{.A)}}", ":1:4: unexpected right paren"),
        ("{{\"abc}}", ":1:2: unterminated quoted string"),
        ("{{\"\\q\"}}", ":1:2: invalid escape in \"\\q\""),
        ("{{`abc}}", ":1:2: unterminated raw quoted string"),
        ("{{/* x }}", ":1:0: unclosed comment"),
        (
            "{{/* x */ .A}}",
            ":1:0: comment ends before closing delimiter",
        ),
        ("{{1x}}", ":1:2: bad number syntax: \"1x\""),
        ("{{08}}", ":1:2: bad number syntax: \"08\""),
        (
            "{{99999999999999999999}}",
            ":1:2: bad number syntax: \"99999999999999999999\"",
        ),
        ("{{.A\"x\"}}", ":1:2: bad character '\"' after \".A\""),
        (
            "{{\"a\"\"b\"}}",
            ":1:5: unexpected \"\\\"b\\\"\" in operand",
        ),
        ("{{\"a\".B}}", ":1:2: unexpected . after term \"\\\"a\\\"\""),
        ("{{nil}}", ":1:2: nil is not a command"),
        ("{{#}}", ":1:2: unrecognized character in action: '#'"),
        ("{{if}}{{end}}", ":1:4: missing value for if"),
        ("{{$a, $b := .A}}", ":1:2: too many declarations in command"),
        ("a\nb {{end}}", ":2:4: unexpected {{end}}"),
    ];
    for (template, want) in cases {
        match Template::parse(template) {
            Ok(_) => panic!("{template:?} parsed"),
            Err(e) => assert_eq!(
                e.to_string(),
                format!("template: {want}"),
                "for {template:?}"
            ),
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let parens = format!("{{{{{}.A{}}}}}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(Template::parse(&parens).is_err());
    let ifs = format!("{}{}", "{{if 1}}".repeat(10_000), "{{end}}".repeat(10_000));
    assert!(Template::parse(&ifs).is_err());
    let fine = format!("{}x{}", "{{if 1}}".repeat(50), "{{end}}".repeat(50));
    assert_eq!(render(&fine, &json!({})).ok().as_deref(), Some("x"));
}

/// Garbled formats must give an error or an output, never a panic. The fragments are the
/// language's own pieces, so most inputs get deep into the lexer and parser; a fixed seed keeps
/// the run the same every time.
#[test]
fn garbled_templates_never_panic() {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{{- ",
        " -}}",
        ".",
        ".Name",
        ".State",
        ".Args",
        ".Mounts",
        "$",
        "$x",
        "$i",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "\"",
        "\"a\"",
        "`",
        "'",
        "'a'",
        "\\",
        "if ",
        "else ",
        "end",
        "range ",
        "with ",
        "break",
        "continue",
        "index ",
        "printf ",
        "slice ",
        "json ",
        "len ",
        "eq ",
        "and ",
        "or ",
        "not ",
        "join ",
        "\"%d\"",
        "\"%-5s\"",
        "1",
        "0",
        "-",
        "1.5",
        "0x",
        "e",
        " ",
        "\n",
        "/*",
        "*/",
        ",",
        "é",
        "nil",
        "true",
        "{{/* c */}}",
        "text",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        // xorshift64: small, seeded, good enough to shuffle pieces.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let data = container();
    let mut parsed = 0;
    for round in 0..600 {
        let len = 1 + next() % 24;
        let template: String = if round % 5 == 4 {
            // Raw bytes too, made into text the way a terminal would hand them over.
            let bytes: Vec<u8> = (0..len * 3)
                .map(|_| (next() % 256).to_le_bytes()[0])
                .collect();
            format!("{{{{{}}}}}", String::from_utf8_lossy(&bytes))
        } else {
            (0..len)
                .map(|_| PIECES[usize::try_from(next() % PIECES.len() as u64).unwrap_or(0)])
                .collect()
        };
        if let Ok(t) = Template::parse(&template) {
            parsed += 1;
            let _ = t.execute(&data);
        }
    }
    // The generator must reach the evaluator often enough to mean something.
    assert!(parsed > 30, "only {parsed} garbled templates parsed");
}

#[test]
fn range_variables_follow_go() {
    // The else list sees the range's variables holding the whole (empty) value.
    assert_eq!(
        ok("{{range $i, $e := .Config.Cmd}}x{{else}}[{{$e}}]{{end}}"),
        "[<nil>]"
    );
    // `=` in a range assigns each element to a variable declared outside.
    assert_eq!(
        ok("{{$last := \"\"}}{{range $last = .Args}}{{end}}{{$last}}"),
        "daemon off;"
    );
    // break in an inner range's else leaves the outer range.
    assert_eq!(
        ok("{{range .Args}}{{.}};{{range $.Nope}}{{else}}{{break}}{{end}}{{end}}"),
        "-g;"
    );
}

/// A list's row as JSON is Go's `json.Marshal` of it, `<`, `>` and `&` escaped, as docker
/// 28.2 printed `docker images --format json` (`"Digest":"\u003cnone\u003e"`); a field of it,
/// and `inspect`'s JSON, keep them (`{{json .Digest}}` printed `"<none>"`).
#[test]
fn a_rows_own_json_escapes_html_as_dockers_list_formatters() {
    let row = json!({"Digest": "<none>", "Labels": "k=<a&b>", "Name": "v"});
    let Value::Object(map) = row.clone() else {
        unreachable!()
    };
    let docker = r#"{"Digest":"\u003cnone\u003e","Labels":"k=\u003ca\u0026b\u003e","Name":"v"}"#;
    let columns = super::Columns {
        headers: &[("Name", "NAME")],
        default: &["Name"],
    };
    let rows = [map];
    let list = |format: &str| super::list(Some(format), &columns, &rows).unwrap();
    assert_eq!(list("json"), format!("{docker}\n"));
    assert_eq!(list("{{json .}}"), format!("{docker}\n"));
    assert_eq!(list("{{json $}}"), format!("{docker}\n"));
    assert_eq!(list("{{json .Digest}}"), "\"<none>\"\n");
    assert_eq!(list("{{.Name}} {{json .Labels}}"), "v \"k=<a&b>\"\n");
    // Not a row: inspect's template keeps them.
    assert_eq!(
        of("{{json .}}", row),
        r#"{"Digest":"<none>","Labels":"k=<a&b>","Name":"v"}"#
    );
}
