//! `.helmignore`: the files a chart directory leaves out when it is read or packaged, with
//! Helm's rules (`pkg/ignore`): one shell glob per line (`*`, `?`, `[...]`; `*` never crosses
//! `/`), `#` comments, a trailing `/` matches directories only, a pattern with a `/` matches
//! the path from the chart root (a leading `/` is dropped), one without matches the base name
//! at any depth. `**` is an error, as in Helm. Rules are tried in order and the first match
//! ignores. A `!` rule is Helm's, not git's: a path it does NOT match is ignored at once, one
//! it matches goes on to the next rule (so `!` never brings back what a later rule ignores).
//! Hidden files in `templates/` are always left out (Helm's default rule, tried last).

use anyhow::{bail, Result};
use regex::Regex;

/// The name of the file in a chart directory.
pub const FILE: &str = ".helmignore";

#[derive(Debug)]
struct Rule {
    negate: bool,
    dir_only: bool,
    /// Match the whole relative path (the pattern had a `/`), else the base name.
    whole_path: bool,
    glob: Regex,
}

/// The rules of one `.helmignore`, plus Helm's default.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Parses a `.helmignore` (empty text: only the default rule).
    pub fn parse(text: &str) -> Result<Rules> {
        let mut rules = Vec::new();
        for (n, line) in text
            .lines()
            .chain(std::iter::once("templates/.?*"))
            .enumerate()
        {
            let mut p = line.trim();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            if p.contains("**") {
                bail!(".helmignore line {n}: double-star (**) is not supported (as in Helm): {p}");
            }
            let negate = p.starts_with('!');
            if negate {
                p = &p[1..];
            }
            let dir_only = p.len() > 1 && p.ends_with('/');
            let p = p.trim_end_matches('/');
            let whole_path = p.contains('/');
            let p = p.trim_start_matches('/');
            if p.is_empty() {
                continue;
            }
            rules.push(Rule {
                negate,
                dir_only,
                whole_path,
                glob: glob_regex(p)?,
            });
        }
        Ok(Rules { rules })
    }

    /// Whether `path` (relative to the chart root, `/`-separated) is left out.
    pub fn ignored(&self, path: &str, is_dir: bool) -> bool {
        let path = path.trim_start_matches("./").trim_end_matches('/');
        if path.is_empty() || path == "." {
            return false;
        }
        let base = path.rsplit('/').next().unwrap_or(path);
        for r in &self.rules {
            let subject = if r.whole_path { path } else { base };
            if r.negate {
                if (r.dir_only && !is_dir) || !r.glob.is_match(subject) {
                    return true;
                }
                continue;
            }
            if r.dir_only && !is_dir {
                continue;
            }
            if r.glob.is_match(subject) {
                return true;
            }
        }
        false
    }
}

/// Go's `filepath.Match` pattern as an anchored regular expression.
fn glob_regex(p: &str) -> Result<Regex> {
    let mut re = String::from("^");
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'^') || chars.peek() == Some(&'!') {
                    chars.next();
                    re.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if c == '\\' || c == '[' {
                        re.push('\\');
                    }
                    re.push(c);
                }
                if !closed {
                    bail!(".helmignore pattern {p:?} has an unclosed [");
                }
                re.push(']');
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    re.push_str(&regex::escape(&n.to_string()));
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Ok(Regex::new(&re)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_rules() {
        // Helm's own default .helmignore (helm create), plus rooted, negated and dir rules.
        let r = Rules::parse(
            "# Patterns to ignore when building packages.\n.DS_Store\n.git/\n*.swp\n*.bak\n*.tmp\n*.orig\n*~\n.vscode/\n/ci/*.yaml\ndocs/\n",
        )
        .unwrap();
        assert!(r.ignored(".git", true));
        assert!(
            !r.ignored(".git", false),
            "a trailing / matches directories only"
        );
        assert!(r.ignored("templates/x.yaml.swp", false));
        assert!(r.ignored("sub/deep/a.bak", false));
        assert!(r.ignored("ci/test-values.yaml", false));
        assert!(!r.ignored("ci/nested/x.yaml", false), "* does not cross /");
        assert!(r.ignored("docs", true));
        assert!(!r.ignored("templates/deployment.yaml", false));
        assert!(!r.ignored("values.yaml", false));
        // Helm's default: hidden files under templates/.
        assert!(r.ignored("templates/.hidden.yaml", false));
        assert!(!r.ignored(".", true));
    }

    #[test]
    fn negation_is_helms_and_double_star_is_refused() {
        // Helm: a `!` rule ignores what it does not match, and lets a match go on.
        let r = Rules::parse("!*.yaml\nbad.yaml\n").unwrap();
        assert!(r.ignored("README.md", false));
        assert!(!r.ignored("good.yaml", false));
        assert!(r.ignored("bad.yaml", false));
        assert!(Rules::parse("**/x\n").is_err());
        assert!(Rules::parse("a[b\n").is_err());
        let r = Rules::parse("file[0-9].txt\n").unwrap();
        assert!(r.ignored("file3.txt", false) && !r.ignored("filex.txt", false));
    }
}
