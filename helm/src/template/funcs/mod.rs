//! The functions templates call: Go's builtins, the Sprig functions charts use, and Helm's own
//! (`include`, `tpl`, `required`, `toYaml`, `fromYaml`, `lookup`). Each group answers `None`
//! for a name it does not know; a name no group knows is an error that says so.
//!
//! Functions that make secrets or read the clock (`genCA`, `randAlphaNum`, `now`) return fixed
//! placeholders: a chart is rendered here only to find the images it names.

mod collections;
mod format;
mod strings;

use anyhow::{anyhow, bail, Result};

use super::exec::Exec;
use crate::value::{equal, Value};

pub use format::{go_quote, printf};

/// What a call returns: `None` when the group does not know the name.
type Answer = Option<Result<Value>>;

pub fn call(x: &mut Exec, name: &str, args: Vec<Value>) -> Result<Value> {
    let answer = builtin(name, &args)
        .or_else(|| helm(x, name, &args))
        .or_else(|| strings::call(name, &args))
        .or_else(|| collections::call(name, &args))
        .or_else(|| convert(name, &args))
        .or_else(|| math(name, &args))
        .or_else(|| placeholder(name, &args));
    answer.unwrap_or_else(|| {
        bail!("the function {name} is not supported by ferry's chart renderer (docs/helm.md lists what is)")
    })
}

/// The `i`th argument, or nil.
fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or_default()
}

/// Sprig's `strval`: strings as they are, anything else as `%v` (nil is `<nil>`).
pub fn strval(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".into(),
        v => v.display(),
    }
}

/// A string parameter: nil is the empty string.
fn string(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        v => v.display(),
    }
}

/// Sprig's `toInt64`.
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => s
            .trim()
            .parse::<i64>()
            .or_else(|_| s.trim().parse::<f64>().map(|f| f as i64))
            .unwrap_or(0),
        _ => 0,
    }
}

fn float(v: &Value) -> f64 {
    match v {
        Value::Str(s) => s.trim().parse().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        v => v.as_f64().unwrap_or(0.0),
    }
}

fn builtin(name: &str, a: &[Value]) -> Answer {
    Some(Ok(match name {
        "not" => Value::Bool(!arg(a, 0).truthy()),
        "eq" => Value::Bool(a.iter().skip(1).any(|b| equal(&arg(a, 0), b))),
        "ne" => Value::Bool(!equal(&arg(a, 0), &arg(a, 1))),
        "lt" | "le" | "gt" | "ge" => return Some(compare(name, &arg(a, 0), &arg(a, 1))),
        "len" => Value::Int(match arg(a, 0) {
            Value::Str(s) => s.len() as i64,
            Value::List(l) => l.len() as i64,
            Value::Map(m) => m.borrow().len() as i64,
            Value::Nil => 0,
            v => return Some(Err(anyhow!("len of {}", v.kind()))),
        }),
        "index" => return Some(index(a)),
        "print" => Value::str(sprint(a)),
        "println" => Value::str(format!(
            "{}\n",
            a.iter().map(strval).collect::<Vec<_>>().join(" ")
        )),
        "printf" => return Some(printf(&string(&arg(a, 0)), &a[1.min(a.len())..]).map(Value::str)),
        "default" => match a.get(1) {
            Some(v) if v.truthy() => v.clone(),
            _ => arg(a, 0),
        },
        "empty" => Value::Bool(!arg(a, 0).truthy()),
        "coalesce" => a.iter().find(|v| v.truthy()).cloned().unwrap_or_default(),
        "ternary" => {
            if arg(a, 2).truthy() {
                arg(a, 0)
            } else {
                arg(a, 1)
            }
        }
        "fail" => return Some(Err(anyhow!("the chart failed: {}", string(&arg(a, 0))))),
        _ => return None,
    }))
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(a: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_));
        if i > 0 && !is_str(v) && !is_str(&a[i - 1]) {
            out.push(' ');
        }
        out.push_str(&strval(v));
    }
    out
}

fn compare(name: &str, x: &Value, y: &Value) -> Result<Value> {
    let ord = match (x, y) {
        (Value::Str(p), Value::Str(q)) => p.cmp(q),
        _ => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(std::cmp::Ordering::Equal),
            _ => bail!("cannot compare {} with {}", x.kind(), y.kind()),
        },
    };
    use std::cmp::Ordering::*;
    Ok(Value::Bool(match name {
        "lt" => ord == Less,
        "le" => ord != Greater,
        "gt" => ord == Greater,
        _ => ord != Less,
    }))
}

fn index(a: &[Value]) -> Result<Value> {
    let mut v = arg(a, 0);
    for k in a.iter().skip(1) {
        v = match (&v, k) {
            (Value::Map(_), k) => v.field(&string(k)),
            (Value::List(l), k) => {
                let i = int(k);
                l.get(usize::try_from(i).unwrap_or(usize::MAX))
                    .cloned()
                    .ok_or_else(|| anyhow!("index {i} out of range"))?
            }
            (Value::Nil, _) => Value::Nil,
            (v, _) => bail!("cannot index {}", v.kind()),
        };
    }
    Ok(v)
}

/// Helm's functions, which need the engine.
fn helm(x: &mut Exec, name: &str, a: &[Value]) -> Answer {
    Some(match name {
        "include" => x.include(&string(&arg(a, 0)), &arg(a, 1)).map(Value::str),
        "tpl" => {
            let text = string(&arg(a, 0));
            let name = format!("{} (tpl)", x.template_name());
            x.engine
                .add(&name, &text)
                .and_then(|tree| x.nested(&tree, &arg(a, 1)))
                .map(Value::str)
        }
        "required" => match arg(a, 1) {
            Value::Nil => Err(anyhow!("{}", string(&arg(a, 0)))),
            Value::Str(s) if s.is_empty() => Err(anyhow!("{}", string(&arg(a, 0)))),
            v => Ok(v),
        },
        // No cluster to look in: what `helm template` returns too.
        "lookup" => Ok(Value::empty_map()),
        _ => return None,
    })
}

fn convert(name: &str, a: &[Value]) -> Answer {
    let v = arg(a, 0);
    Some(Ok(match name {
        "int" | "int64" | "atoi" => Value::Int(int(&v)),
        "float64" => Value::Float(float(&v)),
        "toString" => Value::str(strval(&v)),
        "toStrings" => Value::list(match v {
            Value::List(l) => l.iter().map(|x| Value::str(strval(x))).collect(),
            v => vec![Value::str(strval(&v))],
        }),
        "kindOf" => Value::str(v.kind()),
        "kindIs" => Value::Bool(arg(a, 1).kind() == string(&v)),
        "typeOf" => Value::str(type_of(&v)),
        "typeIs" => Value::Bool(type_of(&arg(a, 1)) == string(&v)),
        "toJson" | "mustToJson" => Value::str(v.to_json().to_string()),
        "toPrettyJson" | "mustToPrettyJson" => {
            Value::str(serde_json::to_string_pretty(&v.to_json()).unwrap_or_default())
        }
        "fromJson" | "mustFromJson" => match serde_json::from_str(&string(&v)) {
            Ok(j) => Value::from_json(&j, true),
            Err(_) if name == "fromJson" => Value::empty_map(),
            Err(e) => return Some(Err(anyhow!("fromJson: {e}"))),
        },
        "toYaml" | "mustToYaml" => Value::str(crate::yaml::to_yaml(&v).trim_end_matches('\n')),
        "fromYaml" => crate::yaml::from_yaml(&string(&v))
            .unwrap_or_else(|e| Value::map([("Error".to_string(), Value::str(e))].into())),
        "fromYamlArray" => match crate::yaml::from_yaml(&string(&v)) {
            Ok(l @ Value::List(_)) => l,
            Ok(Value::Nil) => Value::list(vec![]),
            Ok(_) => Value::list(vec![Value::str("error: not a list")]),
            Err(e) => Value::list(vec![Value::str(e)]),
        },
        "semverCompare" => return Some(crate::semver::compare(&string(&v), &string(&arg(a, 1)))),
        _ => return None,
    }))
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "<nil>",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        v => v.kind(),
    }
}

fn math(name: &str, a: &[Value]) -> Answer {
    let ints: Vec<i64> = a.iter().map(int).collect();
    let floats: Vec<f64> = a.iter().map(float).collect();
    let first = ints.first().copied().unwrap_or(0);
    Some(Ok(match name {
        "add" => Value::Int(ints.iter().sum()),
        "add1" => Value::Int(first + 1),
        "sub" => Value::Int(first - ints.get(1).copied().unwrap_or(0)),
        "mul" => Value::Int(ints.iter().product()),
        "div" | "mod" => {
            let d = ints.get(1).copied().unwrap_or(0);
            if d == 0 {
                return Some(Err(anyhow!("{name} by zero")));
            }
            Value::Int(if name == "div" { first / d } else { first % d })
        }
        "max" => Value::Int(ints.iter().copied().max().unwrap_or(0)),
        "min" => Value::Int(ints.iter().copied().min().unwrap_or(0)),
        "addf" => Value::Float(floats.iter().sum()),
        "mulf" => Value::Float(floats.iter().product()),
        "subf" => Value::Float(
            floats
                .iter()
                .skip(1)
                .fold(floats.first().copied().unwrap_or(0.0), |x, y| x - y),
        ),
        "divf" => Value::Float(
            floats
                .iter()
                .skip(1)
                .fold(floats.first().copied().unwrap_or(0.0), |x, y| x / y),
        ),
        "floor" => Value::Float(floats.first().copied().unwrap_or(0.0).floor()),
        "ceil" => Value::Float(floats.first().copied().unwrap_or(0.0).ceil()),
        "round" => Value::Float(floats.first().copied().unwrap_or(0.0).round()),
        _ => return None,
    }))
}

/// Secrets, randomness and time: fixed stand-ins (see the module docs).
fn placeholder(name: &str, a: &[Value]) -> Answer {
    const PEM: &str = "-----BEGIN FERRY PLACEHOLDER-----\n-----END FERRY PLACEHOLDER-----";
    let n = usize::try_from(int(&arg(a, 0))).unwrap_or(0).min(4096);
    Some(Ok(match name {
        "randAlphaNum" | "randAlpha" | "randAscii" => Value::str("x".repeat(n)),
        "randNumeric" => Value::str("0".repeat(n)),
        "uuidv4" => Value::str("00000000-0000-4000-8000-000000000000"),
        "now" => Value::str("1970-01-01T00:00:00Z"),
        "date" | "dateInZone" | "htmlDate" => Value::str("1970-01-01"),
        "genCA" | "genSelfSignedCert" | "genSignedCert" | "genCAWithKey" => Value::map(
            [
                ("Cert".to_string(), Value::str(PEM)),
                ("Key".to_string(), Value::str(PEM)),
            ]
            .into(),
        ),
        "genPrivateKey" | "derivePassword" | "htpasswd" | "encryptAES" => Value::str(PEM),
        _ => return None,
    }))
}
