//! Helm charts for ferry-pack: which images a chart needs, found the way oc-mirror finds them.
//!
//! A chart ([`chart`]: a `.tgz` or a directory, subcharts included) is rendered with its
//! default values ([`render`]) by a Go text/template engine ([`template`]) that has the Sprig
//! and Helm functions charts use; each rendered object is then read at the image paths
//! ([`images`], [`jsonpath`]). No `helm` binary and no cluster are needed: `lookup` finds
//! nothing and `.Capabilities` is Kubernetes [`render::KUBE_VERSION`], as with `helm template`.
//!
//! docs/helm.md lists what the renderer covers and where it differs from Helm.

pub mod chart;
pub mod ignore;
pub mod images;
pub mod jsonpath;
pub mod render;
mod semver;
pub mod template;
pub mod value;
pub mod yaml;

pub use chart::Chart;
pub use images::{Found, DEFAULT_IMAGE_PATHS};

/// Renders `chart` (its default values, with `values` over them) and lists the images it
/// names at the default paths and `image_paths`.
pub fn chart_images(
    chart: &Chart,
    values: Option<&serde_json::Value>,
    image_paths: &[String],
) -> anyhow::Result<Vec<Found>> {
    use anyhow::Context;
    let rendered = render::render(chart, values)
        .with_context(|| format!("rendering the chart {} {}", chart.name, chart.version))?;
    images::find(&rendered, image_paths)
}
