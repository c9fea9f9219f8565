//! The OCI image layout files carried in the volumes, so that the extracted `v2/` tree is a
//! valid OCI image layout that skopeo or crane can read when ferry is not at hand.

use serde::Serialize;

use crate::Digest;

pub const OCI_LAYOUT_PATH: &str = "v2/oci-layout";
pub const OCI_INDEX_PATH: &str = "v2/index.json";
/// The named files a volume may hold besides blobs.
pub const LAYOUT_FILES: [&str; 2] = [OCI_LAYOUT_PATH, OCI_INDEX_PATH];
/// The annotation naming a reference in an OCI layout's index.json.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Contents of `v2/oci-layout`.
pub fn oci_layout_bytes() -> Vec<u8> {
    br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()
}

/// One reference in `v2/index.json`.
#[derive(Debug, Clone)]
pub struct LayoutRef {
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// Contents of `v2/index.json`: one descriptor per reference, in the given order.
pub fn index_json_bytes(refs: &[LayoutRef]) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Desc<'a> {
        media_type: &'a str,
        digest: &'a Digest,
        size: u64,
        annotations: std::collections::BTreeMap<&'static str, &'a str>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct IndexJson<'a> {
        schema_version: u32,
        media_type: &'static str,
        manifests: Vec<Desc<'a>>,
    }
    let doc = IndexJson {
        schema_version: 2,
        media_type: crate::manifest::OCI_INDEX,
        manifests: refs
            .iter()
            .map(|r| Desc {
                media_type: &r.media_type,
                digest: &r.digest,
                size: r.size,
                annotations: [(REF_NAME, r.name.as_str())].into_iter().collect(),
            })
            .collect(),
    };
    let mut v = serde_json::to_vec_pretty(&doc).expect("serializes");
    v.push(b'\n');
    v
}
