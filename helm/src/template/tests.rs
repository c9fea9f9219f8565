//! The engine against what Go's text/template and Sprig print for the same input.

use super::Engine;
use crate::value::Value;
use crate::yaml::from_yaml;

fn run(src: &str, values: &str) -> String {
    let engine = Engine::default();
    let tree = engine.add("t", src).unwrap();
    let dot = Value::map([("Values".to_string(), from_yaml(values).unwrap())].into());
    engine
        .execute("t", &tree, &dot)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn control_flow_and_variables() {
    let v = "a: 1\nlist: [x, z]\nm: {b: 2, a: 1}\nempty: ''";
    assert_eq!(
        run("{{if .Values.empty}}E{{else if .Values.a}}A{{end}}", v),
        "A"
    );
    assert_eq!(
        run("{{range $i, $x := .Values.list}}{{$i}}={{$x}},{{end}}", v),
        "0=x,1=z,"
    );
    assert_eq!(
        run("{{range $k, $v := .Values.m}}{{$k}}{{$v}}{{end}}", v),
        "a1b2"
    );
    assert_eq!(
        run("{{with .Values.m}}{{.b}}{{$.Values.a}}{{end}}", v),
        "21"
    );
    assert_eq!(run("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", v), "2");
    assert_eq!(run("{{range .Values.none}}x{{else}}none{{end}}", v), "none");
    assert_eq!(
        run(
            "{{range .Values.list}}{{if eq . \"x\"}}{{continue}}{{end}}{{.}}{{end}}",
            v
        ),
        "z"
    );
}

#[test]
fn pipelines_defines_and_sprig() {
    let v = "image: {repository: repo/app, tag: ''}\nport: 8080";
    let src = r#"{{- define "img" -}}
{{ .repository }}:{{ .tag | default "v1" }}
{{- end -}}
image: {{ include "img" .Values.image | quote }}
port: {{ .Values.port }}
{{- $d := dict "a" 1 }}{{ $_ := set $d "b" 2 }}
keys: {{ keys $d | sortAlpha | join "," }}"#;
    assert_eq!(run(src, v), "image: \"repo/app:v1\"\nport: 8080\nkeys: a,b");
    assert_eq!(
        run("{{ toYaml .Values.image | nindent 2 }}", v),
        "\n  repository: repo/app\n  tag: \"\""
    );
    assert_eq!(run("{{ printf \"%s-%d\" \"a\" 3 | upper }}", v), "A-3");
    assert_eq!(run("{{ (.Values.image).repository }}", v), "repo/app");
    assert_eq!(run("{{ tpl \"{{ .Values.port }}\" . }}", v), "8080");
}

#[test]
fn errors_name_the_template_and_line() {
    let engine = Engine::default();
    let tree = engine
        .add(
            "t.yaml",
            "a\n{{ required \"image.tag is required\" .Values.x }}",
        )
        .unwrap();
    let e = engine
        .execute("t.yaml", &tree, &Value::empty_map())
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("t.yaml:2") && msg.contains("image.tag is required"),
        "{msg}"
    );
    let tree = engine.add("u", "{{ nosuchfunc 1 }}").unwrap();
    let msg = format!("{:#}", engine.execute("u", &tree, &Value::Nil).unwrap_err());
    assert!(msg.contains("nosuchfunc is not supported"), "{msg}");
}
