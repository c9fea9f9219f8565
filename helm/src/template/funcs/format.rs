//! Go's `fmt.Sprintf` verbs that templates use (`%s %d %v %q %t %f %g %e %x %X %o %c %%`, with
//! flags `-`, `0`, `+`, ` `, width and precision), and `strconv.Quote`.

use anyhow::Result;

use super::{int, strval};
use crate::value::{go_float, Value};

pub fn printf(fmt: &str, args: &[Value]) -> Result<String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if "-+0 #".contains(f) {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let width = number(&mut chars);
        let precision = if chars.peek() == Some(&'.') {
            chars.next();
            Some(number(&mut chars).unwrap_or(0))
        } else {
            None
        };
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(v) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let body = verb_text(verb, v, precision, &flags);
        out.push_str(&pad(&body, width, &flags));
    }
    let extra: Vec<String> = args
        .map(|v| format!("{}={}", kind_name(v), strval(v)))
        .collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    Ok(out)
}

fn number(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        chars.next();
    }
    n
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "string",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Bool(_) => "bool",
        _ => "interface {}",
    }
}

fn verb_text(verb: char, v: &Value, precision: Option<usize>, flags: &str) -> String {
    let sign = |s: String, nonneg: bool| {
        if nonneg && flags.contains('+') {
            format!("+{s}")
        } else if nonneg && flags.contains(' ') {
            format!(" {s}")
        } else {
            s
        }
    };
    match (verb, v) {
        ('s' | 'v', Value::Str(s)) => match precision {
            Some(p) => s.chars().take(p).collect(),
            None => s.to_string(),
        },
        ('v' | 's', Value::Nil) => "<nil>".into(),
        ('v', v) => strval(v),
        ('d', Value::Int(_) | Value::Bool(_)) => sign(int(v).to_string(), int(v) >= 0),
        ('d', Value::Float(f)) => format!("%!d(float64={})", go_float(*f)),
        ('q', Value::Str(s)) => go_quote(s),
        ('t', Value::Bool(b)) => b.to_string(),
        ('f' | 'F', v) if v.as_f64().is_some() => {
            let f = v.as_f64().unwrap_or(0.0);
            sign(format!("{:.*}", precision.unwrap_or(6), f), f >= 0.0)
        }
        ('e', v) if v.as_f64().is_some() => {
            let f = v.as_f64().unwrap_or(0.0);
            let s = format!("{:.*e}", precision.unwrap_or(6), f);
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        ('g', v) if v.as_f64().is_some() => go_float(v.as_f64().unwrap_or(0.0)),
        ('x', Value::Int(i)) => format!("{i:x}"),
        ('X', Value::Int(i)) => format!("{i:X}"),
        ('o', Value::Int(i)) => format!("{i:o}"),
        ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
        ('c', Value::Int(i)) => char::from_u32(*i as u32)
            .map(String::from)
            .unwrap_or_default(),
        (verb, v) => format!("%!{verb}({}={})", kind_name(v), strval(v)),
    }
}

fn pad(s: &str, width: Option<usize>, flags: &str) -> String {
    let Some(w) = width else {
        return s.to_string();
    };
    let n = s.chars().count();
    if n >= w {
        return s.to_string();
    }
    let fill = w - n;
    if flags.contains('-') {
        format!("{s}{}", " ".repeat(fill))
    } else if flags.contains('0')
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == '.')
    {
        match s.strip_prefix('-') {
            Some(rest) => format!("-{}{rest}", "0".repeat(fill)),
            None => format!("{}{s}", "0".repeat(fill)),
        }
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

/// Go's `strconv.Quote`: double quotes, `\"`, `\\`, `\n`-style escapes, `\x`/`\u` for the rest.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_as_go_prints_them() {
        let s = Value::str;
        let r = printf("%s/%s:%s", &[s("a"), s("b"), s("c")]).unwrap();
        assert_eq!(r, "a/b:c");
        assert_eq!(
            printf("%d-%05d|%-4s|", &[Value::Int(7), Value::Int(42), s("x")]).unwrap(),
            "7-00042|x   |"
        );
        assert_eq!(
            printf("%v %v", &[Value::Float(8080.0), Value::Bool(true)]).unwrap(),
            "8080 true"
        );
        assert_eq!(printf("%q", &[s("a\"b")]).unwrap(), "\"a\\\"b\"");
        assert_eq!(printf("%.2f%%", &[Value::Float(1.5)]).unwrap(), "1.50%");
        assert_eq!(printf("%s", &[]).unwrap(), "%!s(MISSING)");
    }
}
