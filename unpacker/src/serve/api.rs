//! The read-only distribution API over a [`Store`]: `/v2/`, manifests by tag and digest (the
//! exact stored bytes and media type, never rewritten), blobs (with `Range`), `_catalog` and
//! `tags/list` (paginated), the referrers API, and `405 UNSUPPORTED` for every write.

use ferry_format::Digest;
use serde_json::{json, Value};

use super::http::{parse_range, Body, Range, Request, ResponseHead};
use super::store::{Miss, Store};

/// What to send.
pub struct Reply<'a> {
    pub head: ResponseHead,
    pub body: Body<'a>,
    /// Why it is an error, for the log (the media named when a blob is corrupt).
    pub note: Option<String>,
}

impl<'a> Reply<'a> {
    fn bytes(status: u16, content_type: &str, bytes: Vec<u8>) -> Reply<'a> {
        Reply {
            head: ResponseHead::new(status, bytes.len() as u64)
                .header("Content-Type", content_type),
            body: Body::bytes(bytes),
            note: None,
        }
    }

    fn json(status: u16, v: &Value) -> Reply<'a> {
        Reply::bytes(
            status,
            "application/json",
            serde_json::to_vec(v).expect("json"),
        )
    }

    /// A distribution-spec error body.
    pub fn error(status: u16, code: &str, message: &str) -> Reply<'a> {
        Reply::json(
            status,
            &json!({"errors": [{"code": code, "message": message}]}),
        )
    }

    fn miss(miss: Miss, code: &str, what: &str) -> Reply<'a> {
        match miss {
            Miss::Unknown => Reply::error(404, code, &format!("{what} unknown")),
            Miss::Corrupt(why) => {
                let mut r = Reply::error(
                    500,
                    "UNKNOWN",
                    &format!("{what}: the media holds corrupt bytes for it; it is not served"),
                );
                r.note = Some(why);
                r
            }
        }
    }
}

/// A request target under `/v2/`.
#[derive(Debug, PartialEq, Eq)]
enum Route<'p> {
    Base,
    Catalog,
    Tags(&'p str),
    Manifest(&'p str, &'p str),
    Blob(&'p str, &'p str),
    Referrers(&'p str, &'p str),
    Other,
}

fn route<'p>(path: &'p str) -> Route<'p> {
    let Some(rest) = path.strip_prefix("/v2") else {
        return Route::Other;
    };
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Route::Base;
    }
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Route::Tags(name);
    }
    type Make<'p> = fn(&'p str, &'p str) -> Route<'p>;
    let routes: [(&str, Make<'p>); 3] = [
        ("/manifests/", Route::Manifest),
        ("/blobs/", Route::Blob),
        ("/referrers/", Route::Referrers),
    ];
    for (sep, make) in routes {
        if let Some((name, reference)) = rest.rsplit_once(sep) {
            if !name.is_empty() && !reference.is_empty() && !reference.contains('/') {
                return make(name, reference);
            }
        }
    }
    Route::Other
}

/// Answers one (authorized) request.
pub fn handle<'a>(store: &'a Store, req: &Request) -> Reply<'a> {
    if req.method != "GET" && req.method != "HEAD" {
        return Reply::error(
            405,
            "UNSUPPORTED",
            "ferry-unpack serve is read-only: push with ferry-unpack push to a registry that accepts writes",
        );
    }
    match route(req.path()) {
        Route::Base => Reply::json(200, &json!({})),
        Route::Catalog => catalog(store, req),
        Route::Tags(name) => tags(store, name, req),
        Route::Manifest(name, reference) => manifest(store, name, reference),
        Route::Blob(name, digest) => blob(store, name, digest, req),
        Route::Referrers(name, digest) => referrers(store, name, digest, req),
        Route::Other => Reply::error(404, "NOT_FOUND", "not a distribution API path"),
    }
}

fn manifest<'a>(store: &'a Store, name: &str, reference: &str) -> Reply<'a> {
    match store.manifest(name, reference) {
        Ok(m) => {
            let mut r = Reply::bytes(200, &m.media_type, m.bytes);
            r.head = r.head.header("Docker-Content-Digest", m.digest.to_string());
            r
        }
        Err(miss) => Reply::miss(
            miss,
            "MANIFEST_UNKNOWN",
            &format!("manifest {name}:{reference}"),
        ),
    }
}

fn blob<'a>(store: &'a Store, name: &str, digest: &str, req: &Request) -> Reply<'a> {
    let Ok(d) = digest.parse::<Digest>() else {
        return Reply::error(
            400,
            "DIGEST_INVALID",
            &format!("{digest:?} is not a sha256 digest"),
        );
    };
    let what = format!("blob {name}@{d}");
    let located = match store.blob(name, &d) {
        Ok(l) => l,
        Err(miss) => return Reply::miss(miss, "BLOB_UNKNOWN", &what),
    };
    let size = located.blob.size;
    let range = match parse_range(req.header("range"), size) {
        Range::Whole => None,
        Range::Part(start, end) => Some((start, end)),
        Range::Unsatisfiable => {
            let mut r = Reply::error(416, "RANGE_INVALID", &format!("{what} has {size} bytes"));
            r.head = r.head.header("Content-Range", format!("bytes */{size}"));
            return r;
        }
    };
    let (status, (start, end)) = match range {
        Some(r) => (206, r),
        None => (200, (0, size)),
    };
    // The blob was checked whole before: its bytes go out as they are on the media.
    let runs = match located.runs(start, end) {
        Ok(r) => r,
        Err(e) => return Reply::miss(e.into(), "BLOB_UNKNOWN", &what),
    };
    let length = end - start;
    let mut head = ResponseHead::new(status, length)
        .header("Content-Type", "application/octet-stream")
        .header("Docker-Content-Digest", d.to_string())
        .header("Accept-Ranges", "bytes");
    if let Some((start, end)) = range {
        head = head.header("Content-Range", format!("bytes {start}-{}/{size}", end - 1));
    }
    Reply {
        head,
        body: Body::Runs(runs),
        note: None,
    }
}

fn referrers<'a>(store: &'a Store, name: &str, digest: &str, req: &Request) -> Reply<'a> {
    let Ok(d) = digest.parse::<Digest>() else {
        return Reply::error(
            400,
            "DIGEST_INVALID",
            &format!("{digest:?} is not a sha256 digest"),
        );
    };
    let filter = req.query("artifactType");
    match store.referrers(name, &d, filter.as_deref()) {
        Ok(index) => {
            let mut r = Reply::json(200, &index);
            r.head.headers.retain(|(k, _)| k != "Content-Type");
            r.head = r
                .head
                .header("Content-Type", ferry_format::manifest::OCI_INDEX);
            if filter.is_some() {
                r.head = r.head.header("OCI-Filters-Applied", "artifactType");
            }
            r
        }
        Err(miss) => Reply::miss(miss, "NAME_UNKNOWN", &format!("repository {name}")),
    }
}

fn catalog<'a>(store: &'a Store, req: &Request) -> Reply<'a> {
    let names: Vec<&String> = store.repositories.keys().collect();
    let (page, next) = paginate(&names, req);
    let mut r = Reply::json(200, &json!({"repositories": page}));
    if let Some(last) = next {
        r.head = r.head.header(
            "Link",
            format!("</v2/_catalog?last={last}&n={}>; rel=\"next\"", page.len()),
        );
    }
    r
}

fn tags<'a>(store: &'a Store, name: &str, req: &Request) -> Reply<'a> {
    let Some(repo) = store.repositories.get(name) else {
        return Reply::error(404, "NAME_UNKNOWN", &format!("repository {name} unknown"));
    };
    let tags: Vec<&String> = repo.tags.keys().collect();
    let (page, next) = paginate(&tags, req);
    let mut r = Reply::json(200, &json!({"name": name, "tags": page}));
    if let Some(last) = next {
        r.head = r.head.header(
            "Link",
            format!(
                "</v2/{name}/tags/list?last={last}&n={}>; rel=\"next\"",
                page.len()
            ),
        );
    }
    r
}

/// The page after `last` of at most `n` names (sorted), and the last name when more follow.
fn paginate<'s>(names: &[&'s String], req: &Request) -> (Vec<&'s String>, Option<String>) {
    let start = match req.query("last") {
        Some(last) => names.partition_point(|n| n.as_str() <= last.as_str()),
        None => 0,
    };
    let n = req
        .query("n")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(usize::MAX);
    let page: Vec<&String> = names[start..].iter().take(n).copied().collect();
    let more = start + page.len() < names.len();
    let last = more.then(|| page.last().map(|s| s.to_string())).flatten();
    (page, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/v2/"), Route::Base);
        assert_eq!(route("/v2"), Route::Base);
        assert_eq!(route("/v2/_catalog"), Route::Catalog);
        assert_eq!(route("/v2/a/b/tags/list"), Route::Tags("a/b"));
        assert_eq!(
            route("/v2/ns/org/app/manifests/1.0"),
            Route::Manifest("ns/org/app", "1.0")
        );
        assert_eq!(
            route("/v2/a/blobs/sha256:00"),
            Route::Blob("a", "sha256:00")
        );
        assert_eq!(
            route("/v2/a/referrers/sha256:00"),
            Route::Referrers("a", "sha256:00")
        );
        // A repository may be named like a route word.
        assert_eq!(
            route("/v2/blobs/manifests/x"),
            Route::Manifest("blobs", "x")
        );
        assert_eq!(route("/v2/a/blobs/uploads/"), Route::Other);
        assert_eq!(route("/etc/passwd"), Route::Other);
    }
}
