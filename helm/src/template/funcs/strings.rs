//! Sprig's string functions. Arguments come in Sprig's order, so that a piped value is the
//! string (`.x | trimSuffix "-"` calls `trimSuffix "-" .x`).

use anyhow::anyhow;
use base64::Engine as _;
use sha2::Digest as _;

use super::{arg, format::go_quote, int, string, strval, Answer};
use crate::value::Value;

pub fn call(name: &str, a: &[Value]) -> Answer {
    let s = |i: usize| string(&arg(a, i));
    let last = || string(a.last().unwrap_or(&Value::Nil));
    Some(Ok(Value::str(match name {
        "quote" => quoted(a, go_quote),
        "squote" => quoted(a, |s| format!("'{s}'")),
        "upper" => s(0).to_uppercase(),
        "lower" => s(0).to_lowercase(),
        "title" => title(&s(0)),
        "trim" => s(0).trim().to_string(),
        "trimAll" => s(1).trim_matches(|c| s(0).contains(c)).to_string(),
        "trimSuffix" => s(1)
            .strip_suffix(&s(0))
            .map_or_else(|| s(1), str::to_string),
        "trimPrefix" => s(1)
            .strip_prefix(&s(0))
            .map_or_else(|| s(1), str::to_string),
        "trunc" => trunc(int(&arg(a, 0)), &s(1)),
        "replace" => s(2).replace(&s(0), &s(1)),
        "contains" => return Some(Ok(Value::Bool(s(1).contains(&s(0))))),
        "hasPrefix" => return Some(Ok(Value::Bool(s(1).starts_with(&s(0))))),
        "hasSuffix" => return Some(Ok(Value::Bool(s(1).ends_with(&s(0))))),
        "split" => return Some(Ok(split_map(&s(0), &s(1)))),
        "splitList" => return Some(Ok(Value::list(s(1).split(&s(0)).map(Value::str).collect()))),
        "join" => join(&s(0), &arg(a, 1)),
        "cat" => a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(strval)
            .collect::<Vec<_>>()
            .join(" "),
        "nospace" => s(0).chars().filter(|c| !c.is_whitespace()).collect(),
        "repeat" => s(1).repeat(usize::try_from(int(&arg(a, 0))).unwrap_or(0).min(1 << 20)),
        "substr" => substr(int(&arg(a, 0)), int(&arg(a, 1)), &s(2)),
        "indent" => indent(int(&arg(a, 0)), &last()),
        "nindent" => format!("\n{}", indent(int(&arg(a, 0)), &last())),
        "b64enc" => base64::engine::general_purpose::STANDARD.encode(s(0)),
        "b64dec" => match base64::engine::general_purpose::STANDARD.decode(s(0)) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => e.to_string(),
        },
        "sha256sum" => hex::encode(sha2::Sha256::digest(s(0).as_bytes())),
        "kebabcase" => words(&s(0)).join("-"),
        "snakecase" => words(&s(0)).join("_"),
        "regexMatch" | "regexReplaceAll" | "regexReplaceAllLiteral" | "regexFind" => {
            return Some(regex_call(name, &s(0), &s(1), &s(2)))
        }
        _ => return None,
    })))
}

fn quoted(a: &[Value], q: impl Fn(&str) -> String) -> String {
    a.iter()
        .filter(|v| !matches!(v, Value::Nil))
        .map(|v| q(&strval(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

fn trunc(n: i64, s: &str) -> String {
    let len = s.len() as i64;
    let cut = |i: i64| {
        let mut i = i as usize;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    if n < 0 && len + n > 0 {
        s[cut(len + n)..].to_string()
    } else if n >= 0 && len > n {
        s[..cut(n)].to_string()
    } else {
        s.to_string()
    }
}

fn substr(start: i64, end: i64, s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let start = start.clamp(0, n) as usize;
    let end = if end < 0 || end > n { n } else { end } as usize;
    if start >= end {
        return String::new();
    }
    chars[start..end].iter().collect()
}

fn split_map(sep: &str, s: &str) -> Value {
    Value::map(
        s.split(sep)
            .enumerate()
            .map(|(i, p)| (format!("_{i}"), Value::str(p)))
            .collect(),
    )
}

fn join(sep: &str, v: &Value) -> String {
    match v {
        Value::List(l) => l
            .iter()
            .filter(|x| !matches!(x, Value::Nil))
            .map(strval)
            .collect::<Vec<_>>()
            .join(sep),
        Value::Nil => String::new(),
        v => strval(v),
    }
}

pub fn indent(n: i64, s: &str) -> String {
    let pad = " ".repeat(usize::try_from(n).unwrap_or(0).min(1024));
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if (c.is_uppercase() || !c.is_alphanumeric()) && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn regex_call(name: &str, re: &str, s: &str, repl: &str) -> anyhow::Result<Value> {
    let r = regex::Regex::new(re).map_err(|e| anyhow!("{name}: {e}"))?;
    Ok(match name {
        "regexMatch" => Value::Bool(r.is_match(s)),
        "regexFind" => Value::str(r.find(s).map_or("", |m| m.as_str())),
        "regexReplaceAllLiteral" => Value::str(r.replace_all(s, regex::NoExpand(repl)).as_ref()),
        _ => Value::str(r.replace_all(s, repl).as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, args: &[Value]) -> String {
        call(name, args).unwrap().unwrap().display()
    }

    #[test]
    fn sprig_argument_order() {
        let s = Value::str;
        assert_eq!(run("trimSuffix", &[s("-"), s("abc-")]), "abc");
        assert_eq!(run("trunc", &[Value::Int(3), s("abcdef")]), "abc");
        assert_eq!(run("trunc", &[Value::Int(-2), s("abcdef")]), "ef");
        assert_eq!(run("replace", &[s("."), s("-"), s("a.b")]), "a-b");
        assert_eq!(run("indent", &[Value::Int(2), s("a\nb")]), "  a\n  b");
        assert_eq!(run("quote", &[s("a\"b"), Value::Nil]), "\"a\\\"b\"");
        assert_eq!(
            run("regexReplaceAll", &[s("a(b)"), s("xab"), s("<$1>")]),
            "x<b>"
        );
    }
}
