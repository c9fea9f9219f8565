//! YAML in and out, the way Helm's `toYaml` and `fromYaml` see it: keys sorted, block style,
//! two-space indents, sequences at their key's indent (go-yaml's layout), strings quoted when a
//! YAML reader would take them for something else.

use crate::value::Value;

/// `toYaml`: block YAML ending in a newline (the caller trims it, as Helm does).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(m) if !m.borrow().is_empty() => write_map(&mut out, v, 0),
        Value::List(l) if !l.is_empty() => write_list(&mut out, v, 0),
        v => {
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, v: &Value, indent: usize) {
    let Value::Map(m) = v else { return };
    for (k, val) in m.borrow().iter() {
        out.push_str(&" ".repeat(indent));
        out.push_str(&key(k));
        out.push(':');
        write_nested(out, val, indent, false);
    }
}

fn write_list(out: &mut String, v: &Value, indent: usize) {
    let Value::List(l) = v else { return };
    for item in l.iter() {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        write_nested(out, item, indent, true);
    }
}

/// The value after `key:` or `-`: inline when a scalar or empty, else on the next lines.
fn write_nested(out: &mut String, v: &Value, indent: usize, in_list: bool) {
    match v {
        Value::Map(m) if !m.borrow().is_empty() => {
            if in_list {
                // `- a: 1` then the other keys under `a`.
                let mut inner = String::new();
                write_map(&mut inner, v, indent + 2);
                out.push(' ');
                out.push_str(inner.trim_start());
            } else {
                out.push('\n');
                write_map(out, v, indent + 2);
            }
        }
        Value::List(l) if !l.is_empty() => {
            out.push('\n');
            write_list(out, v, if in_list { indent + 2 } else { indent });
        }
        Value::Str(s) if s.contains('\n') && !s.contains(['\r', '\t']) => {
            out.push_str(&literal_block(s, indent + 2));
        }
        v => {
            out.push(' ');
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

fn literal_block(s: &str, indent: usize) -> String {
    let chomp = if s.ends_with("\n\n") || !s.ends_with('\n') {
        if s.ends_with('\n') {
            "+"
        } else {
            "-"
        }
    } else {
        ""
    };
    let pad = " ".repeat(indent);
    let mut out = format!(" |{chomp}\n");
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&pad);
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn key(k: &str) -> String {
    if plain_ok(k) {
        k.to_string()
    } else {
        serde_json::Value::String(k.to_string()).to_string()
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Nil => "null".into(),
        Value::Map(_) => "{}".into(),
        Value::List(_) => "[]".into(),
        Value::Str(s) if plain_ok(s) => s.to_string(),
        Value::Str(s) => serde_json::Value::String(s.to_string()).to_string(),
        v => v.to_json().to_string(),
    }
}

/// Whether a string can be written unquoted and read back as the same string.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.trim() != s {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    const WORDS: [&str; 12] = [
        "true", "false", "yes", "no", "on", "off", "null", "~", "y", "n", ".inf", ".nan",
    ];
    if WORDS.contains(&lower.as_str()) || s.parse::<f64>().is_ok() || looks_numeric(s) {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    !(s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.contains(['\n', '\t', '\r']))
}

/// YAML 1.1 readers take `0x1f`, `1_000`, `0o7`, `1:20` (sexagesimal) and `2024-01-01` for
/// numbers or dates.
fn looks_numeric(s: &str) -> bool {
    let t = s.trim_start_matches(['+', '-']);
    t.starts_with("0x")
        || t.starts_with("0o")
        || (t.chars().next().is_some_and(|c| c.is_ascii_digit())
            && t.chars()
                .all(|c| c.is_ascii_digit() || "_:.-eE".contains(c)))
}

/// `fromYaml`: one YAML document as values (numbers as float64, as Helm reads them).
pub fn from_yaml(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Nil);
    }
    let j: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| format!("error converting YAML to JSON: {e}"))?;
    Ok(Value::from_json(&j, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: &Value) -> serde_json::Value {
        let text = to_yaml(v);
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let v = from_yaml(
            "a: {b: [1, 'yes', '1.10', {c: d, e: [x]}], s: \"line1\\nline2\\n\"}\nk: ''\nn: null\nt: \"a: b\"\n",
        )
        .unwrap();
        assert_eq!(roundtrip(&v), v.to_json());
    }

    #[test]
    fn layout_is_go_yamls() {
        // YAML 1.1, as go-yaml v2 reads values: `y` is true.
        let v = from_yaml("b: [x, y]\na: {k: v}").unwrap();
        assert_eq!(to_yaml(&v), "a:\n  k: v\nb:\n- x\n- true\n");
    }
}
