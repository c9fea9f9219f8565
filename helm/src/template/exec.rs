//! Executing a parsed template: the dot, variables and their scopes, pipelines, control flow,
//! and calls into [`funcs`](super::funcs). Lenient where Helm charts rely on leniency: a field
//! of a missing value is nil, and nil prints nothing (Helm strips `<no value>` too).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};

use super::funcs;
use super::parse::{self, Arg, Branches, Command, Node, Pipe, Range};
use crate::value::Value;

/// Deepest `include`/`template` nesting (Helm's limit is 1000; charts need a handful).
const MAX_DEPTH: usize = 200;

/// Named templates shared by every file of a chart and its subcharts.
#[derive(Debug, Default)]
pub struct Engine {
    defines: RefCell<BTreeMap<String, Rc<Vec<Node>>>>,
}

impl Engine {
    /// Parses `src` (named `name` in errors) and keeps its defines; returns its tree.
    pub fn add(&self, name: &str, src: &str) -> Result<Rc<Vec<Node>>> {
        let parsed = parse::parse(src).with_context(|| format!("parsing {name}"))?;
        let mut defs = self.defines.borrow_mut();
        for (k, v) in parsed.defines {
            defs.insert(k, Rc::new(v));
        }
        Ok(Rc::new(parsed.root))
    }

    fn define(&self, name: &str) -> Option<Rc<Vec<Node>>> {
        self.defines.borrow().get(name).cloned()
    }

    /// Runs `tree` with `dot` as both `.` and `$`; `name` appears in errors.
    pub fn execute(&self, name: &str, tree: &[Node], dot: &Value) -> Result<String> {
        let mut x = Exec {
            engine: self,
            vars: vec![(String::new(), dot.clone())],
            depth: 0,
            name: name.to_string(),
            line: 0,
        };
        let mut out = String::new();
        x.list(tree, dot, &mut out)
            .with_context(|| format!("{name}:{}", x.line))?;
        Ok(out)
    }
}

/// Control flow out of a list.
#[derive(PartialEq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// One execution: the variables in scope and where it is.
pub struct Exec<'e> {
    pub engine: &'e Engine,
    vars: Vec<(String, Value)>,
    depth: usize,
    name: String,
    line: usize,
}

impl Exec<'_> {
    fn list(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<Flow> {
        for n in nodes {
            let flow = self.node(n, dot, out)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn node(&mut self, n: &Node, dot: &Value, out: &mut String) -> Result<Flow> {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Output(p, line) => {
                self.line = *line;
                let v = self.pipe(p, dot)?;
                if p.declare.is_empty() {
                    out.push_str(&v.display());
                }
            }
            Node::If(b) => return self.branch(b, dot, out, false),
            Node::With(b) => return self.branch(b, dot, out, true),
            Node::Range(r) => return self.range(r, dot, out),
            Node::Template(name, arg, line) => {
                self.line = *line;
                let arg = match arg {
                    Some(p) => self.pipe(p, dot)?,
                    None => Value::Nil,
                };
                out.push_str(&self.include(name, &arg)?);
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn branch(&mut self, b: &Branches, dot: &Value, out: &mut String, with: bool) -> Result<Flow> {
        self.line = b.line;
        let mark = self.vars.len();
        let v = self.pipe(&b.pipe, dot)?;
        let flow = if v.truthy() {
            let inner = if with { v } else { dot.clone() };
            self.list(&b.then, &inner, out)?
        } else {
            self.list(&b.otherwise, dot, out)?
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn range(&mut self, r: &Range, dot: &Value, out: &mut String) -> Result<Flow> {
        self.line = r.line;
        let mark = self.vars.len();
        let bare = Pipe {
            declare: vec![],
            assign: false,
            commands: r.pipe.commands.clone(),
        };
        let items: Vec<(Value, Value)> = match self.pipe(&bare, dot)? {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Map(m) => m
                .borrow()
                .iter()
                .map(|(k, v)| (Value::str(k.as_str()), v.clone()))
                .collect(),
            Value::Int(n) => (0..n.max(0))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            Value::Nil => vec![],
            other => bail!("range can't iterate over {}", other.kind()),
        };
        if items.is_empty() {
            return self.list(&r.otherwise, dot, out);
        }
        for (k, v) in items {
            match r.pipe.declare.as_slice() {
                [] => {}
                [one] => self.vars.push((one.clone(), v.clone())),
                [a, b, ..] => {
                    self.vars.push((a.clone(), k));
                    self.vars.push((b.clone(), v.clone()));
                }
            }
            let flow = self.list(&r.body, &v, out)?;
            self.vars.truncate(mark);
            if flow == Flow::Break {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    /// Renders the named template with `dot` (`include`, `template`).
    pub fn include(&mut self, name: &str, dot: &Value) -> Result<String> {
        let tree = self
            .engine
            .define(name)
            .ok_or_else(|| anyhow!("no template named {name:?}"))?;
        self.nested(&tree, dot)
    }

    /// Runs `tree` with a fresh scope where `$` is `dot`.
    pub fn nested(&mut self, tree: &[Node], dot: &Value) -> Result<String> {
        if self.depth >= MAX_DEPTH {
            bail!("templates nest deeper than {MAX_DEPTH} (a template that includes itself?)");
        }
        let saved = std::mem::replace(&mut self.vars, vec![(String::new(), dot.clone())]);
        let line = self.line;
        self.depth += 1;
        let mut out = String::new();
        let r = self.list(tree, dot, &mut out);
        self.depth -= 1;
        self.vars = saved;
        self.line = line;
        r.map(|_| out)
    }

    pub fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value> {
        let mut last: Option<Value> = None;
        for c in &p.commands {
            last = Some(self.command(c, dot, last)?);
        }
        let v = last.unwrap_or_default();
        for name in &p.declare {
            if p.assign {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| anyhow!("undefined variable ${name}"))?;
                slot.1 = v.clone();
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn command(&mut self, c: &Command, dot: &Value, last: Option<Value>) -> Result<Value> {
        let (first, rest) = c.args.split_first().expect("commands have an operand");
        match first {
            Arg::Func(name) => self.call(name, rest, dot, last),
            Arg::Field(path) if !rest.is_empty() || last.is_some() => {
                let (method, receiver) = path.split_last().expect("a field path");
                let recv = fields(dot.clone(), receiver);
                let mut args = self.args(rest, dot)?;
                args.extend(last);
                method_call(&recv, method, &args)
            }
            _ if !rest.is_empty() || last.is_some() => {
                bail!("{first:?} is not a function: it takes no arguments")
            }
            _ => self.arg(first, dot),
        }
    }

    fn call(
        &mut self,
        name: &str,
        rest: &[Arg],
        dot: &Value,
        last: Option<Value>,
    ) -> Result<Value> {
        if name == "and" || name == "or" {
            let want = name == "or";
            let mut v = Value::Nil;
            for a in rest {
                v = self.arg(a, dot)?;
                if v.truthy() == want {
                    return Ok(v);
                }
            }
            return Ok(last.unwrap_or(v));
        }
        let mut args = self.args(rest, dot)?;
        args.extend(last);
        funcs::call(self, name, args).with_context(|| format!("calling {name}"))
    }

    fn args(&mut self, args: &[Arg], dot: &Value) -> Result<Vec<Value>> {
        args.iter().map(|a| self.arg(a, dot)).collect()
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value> {
        Ok(match a {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Str(s) => Value::str(s.as_str()),
            Arg::Field(path) => fields(dot.clone(), path),
            Arg::Var(name, path) => fields(self.var(name)?, path),
            Arg::Func(name) => self.call(name, &[], dot, None)?,
            Arg::Sub(p, path) => {
                let v = self.pipe(p, dot)?;
                fields(v, path)
            }
        })
    }

    fn var(&self, name: &str) -> Result<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("undefined variable ${name}"))
    }

    /// The template this execution started in, for errors.
    pub fn template_name(&self) -> &str {
        &self.name
    }
}

fn fields(mut v: Value, path: &[String]) -> Value {
    for f in path {
        v = v.field(f);
    }
    v
}

/// The methods charts call on Helm's objects: `.Capabilities.APIVersions.Has`, `.Files.Get`.
fn method_call(recv: &Value, method: &str, args: &[Value]) -> Result<Value> {
    match (recv, method, args) {
        (Value::List(l), "Has", [x]) => {
            Ok(Value::Bool(l.iter().any(|v| crate::value::equal(v, x))))
        }
        (Value::Map(_), "Get", [Value::Str(name)]) => Ok(match recv.field(name) {
            Value::Nil => Value::str(""),
            v => v,
        }),
        (Value::Nil, _, _) => Ok(Value::Nil),
        _ => bail!(
            "method {method} with {} arguments is not supported here",
            args.len()
        ),
    }
}
