//! `semverCompare`: Masterminds/semver constraints (`>=1.4.0-0`, `~1.2`, `^2`, `1.x`, `a, b`,
//! `a || b`) checked with the `semver` crate. Versions may have a `v` and may be partial.

use anyhow::{anyhow, Result};

use crate::value::Value;

pub fn compare(constraint: &str, version: &str) -> Result<Value> {
    let v = version_of(version).ok_or_else(|| anyhow!("{version:?} is not a version"))?;
    for alternative in constraint.split("||") {
        let req = requirement(alternative)?;
        if req.matches(&v) || (!v.pre.is_empty() && matches_ignoring_pre(&req, &v)) {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

/// Masterminds lets a constraint with a prerelease (`>=1.4.0-0`) admit prereleases of any
/// version; the `semver` crate only of the same major.minor.patch.
fn matches_ignoring_pre(req: &semver::VersionReq, v: &semver::Version) -> bool {
    let any_pre = req.comparators.iter().any(|c| !c.pre.is_empty());
    let mut plain = v.clone();
    plain.pre = semver::Prerelease::EMPTY;
    any_pre && req.matches(&plain)
}

fn requirement(text: &str) -> Result<semver::VersionReq> {
    // Masterminds separates ANDs by commas or spaces; `semver` wants commas.
    let mut parts: Vec<String> = Vec::new();
    for token in text.split([',', ' ']).filter(|t| !t.is_empty()) {
        let op_only = token.chars().all(|c| "<>=!~^".contains(c));
        match parts.last_mut() {
            Some(last) if last.chars().all(|c| "<>=!~^".contains(c)) => last.push_str(token),
            _ if op_only => parts.push(token.to_string()),
            _ => parts.push(token.trim_start_matches('v').to_string()),
        }
    }
    let parts: Vec<String> = parts
        .into_iter()
        .map(|p| {
            let op_len = p.chars().take_while(|c| "<>=!~^".contains(*c)).count();
            let (op, ver) = p.split_at(op_len);
            format!("{op}{}", padded(ver.trim_start_matches('v')))
        })
        .collect();
    semver::VersionReq::parse(&parts.join(", "))
        .map_err(|e| anyhow!("{text:?} is not a version constraint: {e}"))
}

/// `1.19-0` → `1.19.0-0` (the `semver` crate wants all three numbers before a prerelease).
fn padded(v: &str) -> String {
    match v.find(['-', '+']) {
        Some(i) => {
            let (core, rest) = v.split_at(i);
            let mut nums: Vec<&str> = core.split('.').collect();
            while nums.len() < 3 {
                nums.push("0");
            }
            format!("{}{rest}", nums.join("."))
        }
        None => v.to_string(),
    }
}

/// `v1.2` → 1.2.0; `1.2.3-rc.1+b` as it is.
fn version_of(text: &str) -> Option<semver::Version> {
    let t = text.trim().trim_start_matches('v');
    if let Ok(v) = semver::Version::parse(t) {
        return Some(v);
    }
    let (core, rest) = match t.find(['-', '+']) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let mut nums: Vec<&str> = core.split('.').collect();
    while nums.len() < 3 {
        nums.push("0");
    }
    semver::Version::parse(&format!("{}{rest}", nums.join("."))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yes(c: &str, v: &str) -> bool {
        matches!(compare(c, v).unwrap(), Value::Bool(true))
    }

    #[test]
    fn constraints_charts_write() {
        assert!(yes(">=1.4.0-0", "1.12.1"));
        assert!(yes(">=1.4.0-0", "v1.5.0-rc.1"));
        assert!(!yes(">=1.4.0-0", "1.3.9"));
        assert!(yes(">= 1.19-0", "v1.20.0"));
        assert!(yes("<1.19 || >=1.25", "1.30"));
        assert!(!yes(">=1.16, <1.19", "1.20.0"));
    }
}
