//! Splitting a template into text and actions (`{{ }}`, with `{{-`/`-}}` trimming and
//! `{{/* */}}` comments), and an action into tokens.

use anyhow::{bail, Result};

/// A piece of a template: text, or an action's tokens with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Action { tokens: Vec<Token>, line: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `.Name` (a field of what precedes it, or of the dot).
    Field(String),
    Dot,
    /// `$name` (`$` alone is the root).
    Var(String),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Open,
    Close,
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// A token and whether space came before it (`$x.a` chains a field, `$x .a` passes two).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub spaced: bool,
}

/// Splits `src` into pieces, applying trim markers and dropping comments.
pub fn pieces(src: &str) -> Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        let inner_start = start + 2;
        let trim_left = rest[inner_start..].starts_with("- ")
            || rest[inner_start..].starts_with("-\n")
            || rest[inner_start..].starts_with("-\t");
        if trim_next {
            text = text.trim_start();
        }
        if trim_left {
            text = text.trim_end();
        }
        push_text(&mut out, text);
        line += rest[..start].matches('\n').count();
        let body_from = inner_start + usize::from(trim_left);
        let Some(end) = find_close(&rest[body_from..]) else {
            bail!("line {line}: an action is not closed with }}}}");
        };
        let mut body = &rest[body_from..body_from + end];
        trim_next = body.ends_with(" -") || body.ends_with("\n-") || body.ends_with("\t-");
        if trim_next {
            body = &body[..body.len() - 1];
        }
        let trimmed = body.trim();
        if !(trimmed.starts_with("/*") && trimmed.ends_with("*/")) {
            let tokens = tokens(body).map_err(|e| anyhow::anyhow!("line {line}: {e}"))?;
            out.push(Piece::Action { tokens, line });
        }
        line += rest[start..body_from + end + 2].matches('\n').count();
        rest = &rest[body_from + end + 2..];
    }
    push_text(&mut out, if trim_next { rest.trim_start() } else { rest });
    Ok(out)
}

fn push_text(out: &mut Vec<Piece>, text: &str) {
    if !text.is_empty() {
        out.push(Piece::Text(text.to_string()));
    }
}

/// Where `}}` closes an action, skipping strings and comments.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = skip_quoted(b, i, b'"')?,
            b'`' => i = skip_quoted(b, i, b'`')?,
            b'/' if b.get(i + 1) == Some(&b'*') => i = s[i + 2..].find("*/")? + i + 4,
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn skip_quoted(b: &[u8], start: usize, q: u8) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\\' && q == b'"' {
            i += 2;
            continue;
        }
        if b[i] == q {
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// Tokens of one action's body.
pub fn tokens(body: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut spaced = true;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            spaced = true;
            i += 1;
            continue;
        }
        let (tok, next) = token_at(&chars, i)?;
        out.push(Token { tok, spaced });
        spaced = false;
        i = next;
    }
    Ok(out)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn token_at(chars: &[char], i: usize) -> Result<(Tok, usize)> {
    let word_end = |from: usize| {
        let mut j = from;
        while j < chars.len() && is_ident(chars[j]) {
            j += 1;
        }
        j
    };
    let text = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    Ok(match chars[i] {
        '(' => (Tok::Open, i + 1),
        ')' => (Tok::Close, i + 1),
        '|' => (Tok::Pipe, i + 1),
        ',' => (Tok::Comma, i + 1),
        ':' if chars.get(i + 1) == Some(&'=') => (Tok::Declare, i + 2),
        '=' => (Tok::Assign, i + 1),
        '.' if chars
            .get(i + 1)
            .is_some_and(|c| is_ident(*c) && !c.is_ascii_digit()) =>
        {
            let j = word_end(i + 1);
            (Tok::Field(text(i + 1, j)), j)
        }
        '.' => (Tok::Dot, i + 1),
        '$' => {
            let j = word_end(i + 1);
            (Tok::Var(text(i + 1, j)), j)
        }
        '"' => quoted(chars, i)?,
        '`' => {
            let end = chars[i + 1..]
                .iter()
                .position(|c| *c == '`')
                .ok_or_else(|| anyhow::anyhow!("a raw string is not closed"))?;
            (Tok::Str(text(i + 1, i + 1 + end)), i + end + 2)
        }
        '\'' => {
            let c = *chars.get(i + 1).unwrap_or(&'\0');
            (Tok::Int(c as i64), i + 3)
        }
        c if c.is_ascii_digit()
            || ((c == '-' || c == '+') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
        {
            number(chars, i)?
        }
        c if is_ident(c) => {
            let j = word_end(i);
            (Tok::Ident(text(i, j)), j)
        }
        c => bail!("unexpected {c:?} in an action"),
    })
}

fn quoted(chars: &[char], i: usize) -> Result<(Tok, usize)> {
    let mut s = String::new();
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '"' => return Ok((Tok::Str(s), j + 1)),
            '\\' => {
                j += 1;
                match chars.get(j) {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('\\') => s.push('\\'),
                    Some('"') => s.push('"'),
                    Some('\'') => s.push('\''),
                    Some(c) => bail!("unknown escape \\{c} in a string"),
                    None => break,
                }
            }
            c => s.push(c),
        }
        j += 1;
    }
    bail!("a string is not closed")
}

fn number(chars: &[char], i: usize) -> Result<(Tok, usize)> {
    let mut j = i + 1;
    while j < chars.len()
        && (chars[j].is_ascii_alphanumeric() || chars[j] == '.' || chars[j] == '_')
    {
        j += 1;
    }
    let text: String = chars[i..j].iter().filter(|c| **c != '_').collect();
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.trim_start_matches('+')),
    };
    let int = if let Some(h) = digits.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else {
        digits.parse::<i64>().ok()
    };
    if let Some(n) = int {
        return Ok((Tok::Int(if neg { -n } else { n }), j));
    }
    match text.parse::<f64>() {
        Ok(f) => Ok((Tok::Float(f), j)),
        Err(_) => bail!("bad number {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_drops_comments() {
        let p = pieces("a  {{- /* c */ -}}  b {{ .X -}}\n c").unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], Piece::Text("a".into()));
        assert_eq!(p[1], Piece::Text("b ".into()));
        assert_eq!(p[3], Piece::Text("c".into()));
    }

    #[test]
    fn tokens_know_chains_from_arguments() {
        let t = tokens(r#"$x.a .b "s\n" -1 (f).c"#).unwrap();
        let kinds: Vec<_> = t.iter().map(|t| (t.tok.clone(), t.spaced)).collect();
        assert_eq!(kinds[0], (Tok::Var("x".into()), true));
        assert_eq!(kinds[1], (Tok::Field("a".into()), false));
        assert_eq!(kinds[2], (Tok::Field("b".into()), true));
        assert_eq!(kinds[3], (Tok::Str("s\n".into()), true));
        assert_eq!(kinds[4], (Tok::Int(-1), true));
        assert_eq!(kinds[8], (Tok::Field("c".into()), false));
    }
}
