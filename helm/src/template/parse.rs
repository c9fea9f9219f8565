//! The syntax tree of a Go text/template, and the parser that builds it from [`lex`] pieces.
//! `define` and `block` bodies are returned as named templates beside the main tree.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use super::lex::{self, Piece, Tok, Token};

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Output(Pipe, usize),
    If(Branches),
    With(Branches),
    Range(Range),
    Template(String, Option<Pipe>, usize),
    Break,
    Continue,
}

/// `if`/`with`: the pipeline, the body, and the `else` (an `else if` is a nested node).
#[derive(Debug, Clone)]
pub struct Branches {
    pub pipe: Pipe,
    pub then: Vec<Node>,
    pub otherwise: Vec<Node>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Range {
    pub pipe: Pipe,
    pub body: Vec<Node>,
    pub otherwise: Vec<Node>,
    pub line: usize,
}

/// `$a, $b := cmd | cmd` (`declare` empty when nothing is declared).
#[derive(Debug, Clone, Default)]
pub struct Pipe {
    pub declare: Vec<String>,
    /// `=` (assign an existing variable) rather than `:=`.
    pub assign: bool,
    pub commands: Vec<Command>,
}

/// A function or value with its arguments.
#[derive(Debug, Clone)]
pub struct Command {
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub enum Arg {
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `.a.b`: fields of the dot.
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    /// `(pipeline).a.b`.
    Sub(Box<Pipe>, Vec<String>),
}

/// A parsed template: its tree and the templates it defines.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub root: Vec<Node>,
    pub defines: BTreeMap<String, Vec<Node>>,
}

pub fn parse(src: &str) -> Result<Parsed> {
    let pieces = lex::pieces(src)?;
    let mut p = Parser {
        pieces,
        at: 0,
        defines: BTreeMap::new(),
    };
    let (root, end) = p.list()?;
    if let Some((word, line)) = end {
        bail!("line {line}: unexpected {{{{{word}}}}}");
    }
    Ok(Parsed {
        root,
        defines: p.defines,
    })
}

struct Parser {
    pieces: Vec<Piece>,
    at: usize,
    defines: BTreeMap<String, Vec<Node>>,
}

/// What ended a list: `end`, `else` (with the tokens after it) or the end of input.
type Ended = Option<(String, usize)>;

impl Parser {
    /// Nodes up to an `end` or `else` (returned, with its line) or the end of input.
    fn list(&mut self) -> Result<(Vec<Node>, Ended)> {
        let mut nodes = Vec::new();
        while self.at < self.pieces.len() {
            let piece = self.pieces[self.at].clone();
            self.at += 1;
            let (tokens, line) = match piece {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Piece::Action { tokens, line } => (tokens, line),
            };
            let keyword = match tokens.first().map(|t| &t.tok) {
                Some(Tok::Ident(w)) => w.clone(),
                None => bail!("line {line}: an empty action"),
                _ => String::new(),
            };
            match keyword.as_str() {
                "end" => return Ok((nodes, Some(("end".into(), line)))),
                "else" => {
                    self.at -= 1;
                    return Ok((nodes, Some(("else".into(), line))));
                }
                "if" => nodes.push(Node::If(self.branches(&tokens[1..], line, "if")?)),
                "with" => nodes.push(Node::With(self.branches(&tokens[1..], line, "with")?)),
                "range" => nodes.push(self.range(&tokens[1..], line)?),
                "define" | "block" => {
                    if let Some(n) = self.define(&keyword, &tokens[1..], line)? {
                        nodes.push(n);
                    }
                }
                "template" => nodes.push(template_call(&tokens[1..], line)?),
                "break" => nodes.push(Node::Break),
                "continue" => nodes.push(Node::Continue),
                _ => nodes.push(Node::Output(pipeline(&tokens, line)?, line)),
            }
        }
        Ok((nodes, None))
    }

    /// The `else` action the last list stopped at, consumed: its tokens after `else`.
    fn take_else(&mut self) -> Vec<Token> {
        let Piece::Action { tokens, .. } = &self.pieces[self.at] else {
            unreachable!("list() stops at an else action")
        };
        let rest = tokens[1..].to_vec();
        self.at += 1;
        rest
    }

    fn branches(&mut self, tokens: &[Token], line: usize, kind: &str) -> Result<Branches> {
        let pipe = pipeline(tokens, line)?;
        let (then, end) = self.list()?;
        let otherwise = match end {
            Some((w, _)) if w == "end" => vec![],
            Some(_) => {
                let rest = self.take_else();
                match rest.first().map(|t| &t.tok) {
                    Some(Tok::Ident(w)) if w == kind => {
                        let nested = self.branches(&rest[1..], line, kind)?;
                        vec![if kind == "if" {
                            Node::If(nested)
                        } else {
                            Node::With(nested)
                        }]
                    }
                    Some(_) => bail!("line {line}: {{{{else}}}} takes nothing but {kind}"),
                    None => self.until_end(line, kind)?,
                }
            }
            None => bail!("line {line}: {{{{{kind}}}}} has no {{{{end}}}}"),
        };
        Ok(Branches {
            pipe,
            then,
            otherwise,
            line,
        })
    }

    fn until_end(&mut self, line: usize, kind: &str) -> Result<Vec<Node>> {
        match self.list()? {
            (nodes, Some((w, _))) if w == "end" => Ok(nodes),
            (_, Some((_, l))) => bail!("line {l}: a second {{{{else}}}} in one {kind}"),
            (_, None) => bail!("line {line}: {{{{{kind}}}}} has no {{{{end}}}}"),
        }
    }

    fn range(&mut self, tokens: &[Token], line: usize) -> Result<Node> {
        let pipe = pipeline(tokens, line)?;
        let (body, end) = self.list()?;
        let otherwise = match end {
            Some((w, _)) if w == "end" => vec![],
            Some(_) => {
                if !self.take_else().is_empty() {
                    bail!("line {line}: {{{{else}}}} of a range takes nothing");
                }
                self.until_end(line, "range")?
            }
            None => bail!("line {line}: {{{{range}}}} has no {{{{end}}}}"),
        };
        Ok(Node::Range(Range {
            pipe,
            body,
            otherwise,
            line,
        }))
    }

    /// `define "name"` (stored, no node) or `block "name" pipe` (stored and called).
    fn define(&mut self, keyword: &str, tokens: &[Token], line: usize) -> Result<Option<Node>> {
        let Some(Tok::Str(name)) = tokens.first().map(|t| &t.tok) else {
            bail!("line {line}: {{{{{keyword}}}}} needs a quoted template name");
        };
        let body = self.until_end(line, keyword)?;
        self.defines.insert(name.clone(), body);
        if keyword == "define" {
            return Ok(None);
        }
        let arg = (tokens.len() > 1)
            .then(|| pipeline(&tokens[1..], line))
            .transpose()?;
        Ok(Some(Node::Template(name.clone(), arg, line)))
    }
}

fn template_call(tokens: &[Token], line: usize) -> Result<Node> {
    let Some(Tok::Str(name)) = tokens.first().map(|t| &t.tok) else {
        bail!("line {line}: {{{{template}}}} needs a quoted template name");
    };
    let arg = (tokens.len() > 1)
        .then(|| pipeline(&tokens[1..], line))
        .transpose()?;
    Ok(Node::Template(name.clone(), arg, line))
}

/// `[$a[, $b] :=|=] command [| command]...`
pub fn pipeline(tokens: &[Token], line: usize) -> Result<Pipe> {
    let mut pipe = Pipe::default();
    let mut rest = tokens;
    if let Some(at) = rest
        .iter()
        .position(|t| matches!(t.tok, Tok::Declare | Tok::Assign))
    {
        let names: Vec<&Token> = rest[..at].iter().filter(|t| t.tok != Tok::Comma).collect();
        if !names.is_empty() && names.iter().all(|t| matches!(t.tok, Tok::Var(_))) {
            pipe.declare = names
                .iter()
                .filter_map(|t| match &t.tok {
                    Tok::Var(v) => Some(v.clone()),
                    _ => None,
                })
                .collect();
            pipe.assign = rest[at].tok == Tok::Assign;
            rest = &rest[at + 1..];
        }
    }
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in rest.iter().enumerate() {
        match t.tok {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.saturating_sub(1),
            Tok::Pipe if depth == 0 => {
                pipe.commands.push(command(&rest[start..i], line)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    pipe.commands.push(command(&rest[start..], line)?);
    Ok(pipe)
}

fn command(tokens: &[Token], line: usize) -> Result<Command> {
    if tokens.is_empty() {
        bail!("line {line}: a missing command in a pipeline");
    }
    let mut args = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (arg, next) = operand(tokens, i, line)?;
        args.push(arg);
        i = next;
    }
    Ok(Command { args })
}

/// One operand at `i` with the fields chained to it; returns it and the next index.
fn operand(tokens: &[Token], i: usize, line: usize) -> Result<(Arg, usize)> {
    let mut j = i + 1;
    let arg = match &tokens[i].tok {
        Tok::Dot => Arg::Dot,
        Tok::Field(f) => {
            let mut path = vec![f.clone()];
            j = chain(tokens, j, &mut path);
            return Ok((Arg::Field(path), j));
        }
        Tok::Var(v) => {
            let mut path = vec![];
            j = chain(tokens, j, &mut path);
            return Ok((Arg::Var(v.clone(), path), j));
        }
        Tok::Open => {
            let close = matching_close(tokens, i)
                .ok_or_else(|| anyhow::anyhow!("line {line}: unclosed ("))?;
            let inner = pipeline(&tokens[i + 1..close], line)?;
            let mut path = vec![];
            j = chain(tokens, close + 1, &mut path);
            return Ok((Arg::Sub(Box::new(inner), path), j));
        }
        Tok::Str(s) => Arg::Str(s.clone()),
        Tok::Int(n) => Arg::Int(*n),
        Tok::Float(f) => Arg::Float(*f),
        Tok::Ident(w) => match w.as_str() {
            "true" => Arg::Bool(true),
            "false" => Arg::Bool(false),
            "nil" => Arg::Nil,
            _ => Arg::Func(w.clone()),
        },
        other => bail!("line {line}: unexpected {other:?}"),
    };
    Ok((arg, j))
}

/// Appends the unspaced `.field` tokens from `j` to `path`; returns the index after them.
fn chain(tokens: &[Token], mut j: usize, path: &mut Vec<String>) -> usize {
    while let Some(Token {
        tok: Tok::Field(f),
        spaced: false,
    }) = tokens.get(j)
    {
        path.push(f.clone());
        j += 1;
    }
    j
}

fn matching_close(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn else_if_chains_share_one_end() {
        let p = parse("{{if .a}}A{{else if .b}}B{{else}}C{{end}}after").unwrap();
        assert_eq!(p.root.len(), 2);
        let Node::If(b) = &p.root[0] else { panic!() };
        assert!(matches!(&b.otherwise[0], Node::If(inner) if inner.otherwise.len() == 1));
    }

    #[test]
    fn defines_are_collected() {
        let p = parse(r#"{{define "x"}}X{{end}}{{template "x" .}}"#).unwrap();
        assert!(p.defines.contains_key("x"));
        assert_eq!(p.root.len(), 1);
    }

    #[test]
    fn unbalanced_input_is_an_error_with_a_line() {
        let e = parse("a\n{{if .x}}b").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(parse("{{end}}").is_err());
    }
}
