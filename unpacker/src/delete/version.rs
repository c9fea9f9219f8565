//! Versions as a delete config compares them (release versions, bundle versions): dotted
//! numbers, compared numerically.

/// A version as numbers (`4.15.3` → [4, 15, 3]); a part that is not a number (a pre-release
/// suffix) counts as 0.
pub fn version(v: &str) -> Vec<u64> {
    v.split(['.', '-', '+'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(version("4.15.10") > version("4.15.9"));
        assert!(version("4.15.0") >= version("4.15.0"));
        assert!(version("0.10.0") > version("0.9.1"));
    }
}
