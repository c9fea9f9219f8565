//! The images a rendered chart names: every YAML document of every rendered file, read at
//! oc-mirror's default image paths plus the config's `imagePaths`, values split at spaces.

use anyhow::{Context, Result};

use crate::jsonpath;
use crate::render::Rendered;

/// Where oc-mirror looks for images in each rendered object.
pub const DEFAULT_IMAGE_PATHS: [&str; 4] = [
    "{.spec.template.spec.initContainers[*].image}",
    "{.spec.template.spec.containers[*].image}",
    "{.spec.initContainers[*].image}",
    "{.spec.containers[*].image}",
];

/// An image reference found, and the rendered file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub image: String,
    pub template: String,
}

/// Every image `files` name at the default paths and `extra_paths`, first occurrence kept.
pub fn find(files: &[Rendered], extra_paths: &[String]) -> Result<Vec<Found>> {
    let paths: Vec<&str> = DEFAULT_IMAGE_PATHS
        .iter()
        .copied()
        .chain(extra_paths.iter().map(String::as_str))
        .collect();
    let mut out: Vec<Found> = Vec::new();
    for f in files {
        for (n, doc) in documents(&f.text).into_iter().enumerate() {
            let value: serde_json::Value = serde_saphyr::from_str(&doc).with_context(|| {
                format!(
                    "{} renders invalid YAML (document {}):\n{doc}",
                    f.name,
                    n + 1
                )
            })?;
            for p in &paths {
                for s in jsonpath::select(p, &value)? {
                    for image in s.split(' ').filter(|i| !i.is_empty()) {
                        if !out.iter().any(|o| o.image == image) {
                            out.push(Found {
                                image: image.to_string(),
                                template: f.name.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The non-empty YAML documents of a rendered file (split at `---` lines).
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(String::new());
            continue;
        }
        let d = docs.last_mut().expect("one document at least");
        d.push_str(line);
        d.push('\n');
    }
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}
