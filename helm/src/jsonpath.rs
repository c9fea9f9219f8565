//! The Kubernetes JSONPath subset image paths are written in (`{.spec.containers[*].image}`):
//! fields (`.name`, `['name']`), `[*]` and `.*`, indexes (`[0]`, `[-1]`), and `..name`
//! (recursive descent). Several `{...}` in one template each add their results; missing keys
//! give nothing, as oc-mirror's `AllowMissingKeys(true)`.

use anyhow::{bail, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    All,
    Index(i64),
    Descend(String),
}

/// The string values (numbers and bools printed) `template` selects from `doc`.
pub fn select(template: &str, doc: &Value) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| anyhow::anyhow!("{template}: a {{ is not closed"))?;
        let steps =
            steps(&rest[open + 1..close]).map_err(|e| anyhow::anyhow!("{template}: {e}"))?;
        let mut found = Vec::new();
        walk(doc, &steps, &mut found);
        out.extend(found.into_iter().filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }));
        rest = &rest[close + 1..];
    }
    Ok(out)
}

fn steps(path: &str) -> Result<Vec<Step>> {
    let p: Vec<char> = path.trim().chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    if p.first() == Some(&'$') {
        i = 1;
    }
    while i < p.len() {
        match p[i] {
            '.' if p.get(i + 1) == Some(&'.') => {
                let (name, next) = ident(&p, i + 2);
                out.push(Step::Descend(name));
                i = next;
            }
            '.' if p.get(i + 1) == Some(&'*') => {
                out.push(Step::All);
                i += 2;
            }
            '.' => {
                let (name, next) = ident(&p, i + 1);
                if !name.is_empty() {
                    out.push(Step::Field(name));
                }
                i = next;
            }
            '[' => {
                let close = p[i..].iter().position(|c| *c == ']').map(|c| i + c);
                let Some(close) = close else {
                    bail!("a [ is not closed")
                };
                let inner: String = p[i + 1..close].iter().collect();
                let inner = inner.trim();
                out.push(if inner == "*" {
                    Step::All
                } else if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\''))
                {
                    Step::Field(q.to_string())
                } else if let Ok(n) = inner.parse() {
                    Step::Index(n)
                } else {
                    bail!("[{inner}] is not supported (fields, [*] and [N] are)");
                });
                i = close + 1;
            }
            c => bail!("unexpected {c:?}"),
        }
    }
    Ok(out)
}

fn ident(p: &[char], from: usize) -> (String, usize) {
    let mut j = from;
    while j < p.len() && p[j] != '.' && p[j] != '[' {
        j += 1;
    }
    (p[from..j].iter().collect(), j)
}

fn walk<'v>(v: &'v Value, steps: &[Step], out: &mut Vec<&'v Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(v);
        return;
    };
    match step {
        Step::Field(name) => {
            if let Some(x) = v.get(name) {
                walk(x, rest, out);
            }
        }
        Step::All => match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, rest, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, rest, out)),
            _ => {}
        },
        Step::Index(n) => {
            if let Value::Array(a) = v {
                let i = if *n < 0 { a.len() as i64 + n } else { *n };
                if let Some(x) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
                    walk(x, rest, out);
                }
            }
        }
        Step::Descend(name) => {
            if let Some(x) = v.get(name) {
                walk(x, rest, out);
            }
            match v {
                Value::Array(a) => a.iter().for_each(|x| walk(x, steps, out)),
                Value::Object(o) => o.values().for_each(|x| walk(x, steps, out)),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_what_kubectl_would() {
        let doc = serde_json::json!({"spec": {"template": {"spec": {"containers": [
            {"image": "a:1", "env": [{"value": "x"}, {"value": "y"}]}, {"image": "b:2"}]}}}});
        let s = |t| select(t, &doc).unwrap();
        assert_eq!(
            s("{.spec.template.spec.containers[*].image}"),
            ["a:1", "b:2"]
        );
        assert_eq!(
            s("{.spec.template.spec.containers[*].env[*].value}"),
            ["x", "y"]
        );
        assert_eq!(s("{.spec.template.spec.containers[-1].image}"), ["b:2"]);
        assert_eq!(s("{..image}"), ["a:1", "b:2"]);
        assert!(s("{.spec.initContainers[*].image}").is_empty());
        assert!(select("{.a[?(@.x)]}", &doc).is_err());
    }
}
