//! Sprig's list and dict functions. `set`, `unset`, `merge` and `mergeOverwrite` change the
//! map they are given, as in Go, and charts depend on that.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};

use super::{arg, int, string, Answer};
use crate::value::{equal, Value};

pub fn call(name: &str, a: &[Value]) -> Answer {
    list_call(name, a).or_else(|| dict_call(name, a))
}

fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::List(l) => l.as_ref().clone(),
        Value::Nil => vec![],
        v => vec![v.clone()],
    }
}

fn list_call(name: &str, a: &[Value]) -> Answer {
    let l = || items(&arg(a, 0));
    Some(Ok(match name {
        "list" => Value::list(a.to_vec()),
        "append" | "mustAppend" | "push" | "mustPush" => {
            let mut v = l();
            v.push(arg(a, 1));
            Value::list(v)
        }
        "prepend" | "mustPrepend" => {
            let mut v = vec![arg(a, 1)];
            v.extend(l());
            Value::list(v)
        }
        "concat" => Value::list(a.iter().flat_map(items).collect()),
        "first" | "mustFirst" => l().first().cloned().unwrap_or_default(),
        "last" | "mustLast" => l().last().cloned().unwrap_or_default(),
        "rest" | "mustRest" => Value::list(l().into_iter().skip(1).collect()),
        "initial" | "mustInitial" => {
            let mut v = l();
            v.pop();
            Value::list(v)
        }
        "reverse" | "mustReverse" => Value::list(l().into_iter().rev().collect()),
        "uniq" | "mustUniq" => {
            let mut out: Vec<Value> = Vec::new();
            for v in l() {
                if !out.iter().any(|o| equal(o, &v)) {
                    out.push(v);
                }
            }
            Value::list(out)
        }
        "compact" | "mustCompact" => Value::list(l().into_iter().filter(Value::truthy).collect()),
        "without" | "mustWithout" => Value::list(
            l().into_iter()
                .filter(|v| !a[1..].iter().any(|w| equal(v, w)))
                .collect(),
        ),
        "has" | "mustHas" => Value::Bool(items(&arg(a, 1)).iter().any(|v| equal(v, &arg(a, 0)))),
        "sortAlpha" => {
            let mut v: Vec<String> = l().iter().map(super::strval).collect();
            v.sort();
            Value::list(v.into_iter().map(Value::str).collect())
        }
        "until" => Value::list(
            (0..int(&arg(a, 0)).clamp(0, 1 << 16))
                .map(Value::Int)
                .collect(),
        ),
        "slice" => return Some(slice(a)),
        _ => return None,
    }))
}

fn slice(a: &[Value]) -> Result<Value> {
    let v = items(&arg(a, 0));
    let from = a.get(1).map_or(0, int).clamp(0, v.len() as i64) as usize;
    let to = a
        .get(2)
        .map_or(v.len() as i64, int)
        .clamp(from as i64, v.len() as i64) as usize;
    Ok(Value::list(v[from..to].to_vec()))
}

fn dict_call(name: &str, a: &[Value]) -> Answer {
    let key = |i: usize| string(&arg(a, i));
    Some(Ok(match name {
        "dict" => Value::map(
            a.chunks(2)
                .map(|kv| {
                    (
                        super::strval(&kv[0]),
                        kv.get(1).cloned().unwrap_or_default(),
                    )
                })
                .collect(),
        ),
        "get" => match arg(a, 0).field(&key(1)) {
            Value::Nil => Value::str(""),
            v => v,
        },
        "set" | "unset" => return Some(set(name, a)),
        "hasKey" => Value::Bool(match arg(a, 0) {
            Value::Map(m) => m.borrow().contains_key(&key(1)),
            _ => false,
        }),
        "keys" => Value::list(
            a.iter()
                .flat_map(|d| entries(d).into_keys())
                .map(Value::str)
                .collect(),
        ),
        "values" => Value::list(entries(&arg(a, 0)).into_values().collect()),
        "pick" | "omit" => {
            let names: Vec<String> = a[1.min(a.len())..].iter().map(string).collect();
            let keep = name == "pick";
            Value::map(
                entries(&arg(a, 0))
                    .into_iter()
                    .filter(|(k, _)| names.contains(k) == keep)
                    .collect(),
            )
        }
        "pluck" => Value::list(
            a.iter()
                .skip(1)
                .filter_map(|d| match d.field(&key(0)) {
                    Value::Nil => None,
                    v => Some(v),
                })
                .collect(),
        ),
        "dig" => dig(a),
        "merge" | "mustMerge" | "mergeOverwrite" | "mustMergeOverwrite" => {
            let overwrite = name.ends_with("Overwrite");
            let dst = arg(a, 0);
            for src in a.iter().skip(1) {
                merge_into(&dst, src, overwrite);
            }
            dst
        }
        "deepCopy" | "mustDeepCopy" => arg(a, 0).deep_copy(),
        _ => return None,
    }))
}

fn entries(v: &Value) -> BTreeMap<String, Value> {
    match v {
        Value::Map(m) => m.borrow().clone(),
        _ => BTreeMap::new(),
    }
}

fn set(name: &str, a: &[Value]) -> Result<Value> {
    let d = arg(a, 0);
    let Value::Map(m) = &d else {
        return Err(anyhow!("{name} needs a dict, not {}", d.kind()));
    };
    if name == "set" {
        m.borrow_mut().insert(string(&arg(a, 1)), arg(a, 2));
    } else {
        m.borrow_mut().remove(&string(&arg(a, 1)));
    }
    Ok(d)
}

/// `dig "a" "b" default dict`.
fn dig(a: &[Value]) -> Value {
    if a.len() < 2 {
        return Value::Nil;
    }
    let (dict, rest) = a.split_last().expect("two or more");
    let (default, keys) = rest.split_last().expect("one or more");
    let mut v = dict.clone();
    for k in keys {
        v = v.field(&string(k));
        if matches!(v, Value::Nil) {
            return default.clone();
        }
    }
    v
}

/// mergo's rules: maps merge key by key; without `overwrite` a value is filled only where the
/// destination's is empty; with it, a non-empty source value replaces the destination's.
fn merge_into(dst: &Value, src: &Value, overwrite: bool) {
    let (Value::Map(d), Value::Map(s)) = (dst, src) else {
        return;
    };
    if std::rc::Rc::ptr_eq(d, s) {
        return;
    }
    for (k, sv) in s.borrow().iter() {
        let current = d.borrow().get(k).cloned();
        match current {
            Some(dv @ Value::Map(_)) if matches!(sv, Value::Map(_)) => {
                merge_into(&dv, sv, overwrite)
            }
            Some(dv) if !(sv.truthy() && (overwrite || !dv.truthy())) => {}
            _ => {
                d.borrow_mut().insert(k.clone(), sv.deep_copy());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, Value)]) -> Value {
        Value::map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn set_changes_the_map_every_holder_sees() {
        let d = m(&[]);
        call("set", &[d.clone(), Value::str("k"), Value::Int(1)])
            .unwrap()
            .unwrap();
        assert_eq!(d.field("k").display(), "1");
    }

    #[test]
    fn merge_keeps_and_overwrite_replaces() {
        let dst = m(&[("a", Value::Int(1)), ("n", m(&[("x", Value::Int(1))]))]);
        let src = m(&[
            ("a", Value::Int(2)),
            ("b", Value::Int(3)),
            ("n", m(&[("y", Value::Int(2))])),
        ]);
        call("merge", &[dst.clone(), src.clone()]).unwrap().unwrap();
        assert_eq!(dst.field("a").display(), "1");
        assert_eq!(dst.field("b").display(), "3");
        assert_eq!(dst.field("n").display(), "map[x:1 y:2]");
        call("mergeOverwrite", &[dst.clone(), src])
            .unwrap()
            .unwrap();
        assert_eq!(dst.field("a").display(), "2");
    }
}
