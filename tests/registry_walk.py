#!/usr/bin/env python3
"""An independent walk over a registry's read API, sharing no code with ferry: the catalog
(page by page), every repository's tags (page by page), every manifest by tag and then by
digest, every child of an index, every config and layer by digest; each body's sha256 checked
against its digest, and Docker-Content-Digest against the bytes. Prints one JSON line of
counts; exits 1 naming the first problem.

usage: registry_walk.py BASE_URL [USER:PASSWORD] [CA_FILE]
"""

import base64
import hashlib
import json
import ssl
import sys
import urllib.request

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
INDEXES = ("application/vnd.oci.image.index.v1+json",
           "application/vnd.docker.distribution.manifest.list.v2+json")


class Walker:
    def __init__(self, base, creds=None, ca=None):
        self.base = base.rstrip("/")
        self.headers = {}
        if creds:
            self.headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
        self.context = ssl.create_default_context(cafile=ca) if ca else None
        self.counts = {"repositories": 0, "tags": 0, "manifests": 0, "blobs": 0, "bytes": 0}
        self.seen = set()

    def get(self, path, accept=None):
        headers = dict(self.headers)
        if accept:
            headers["Accept"] = accept
        req = urllib.request.Request(self.base + path, headers=headers)
        with urllib.request.urlopen(req, context=self.context, timeout=60) as r:
            return r.read(), r.headers

    def pages(self, path, key):
        out = []
        while path:
            body, headers = self.get(path)
            out.extend(json.loads(body).get(key) or [])
            link = headers.get("Link")
            path = link.split(";")[0].strip("<> ") if link and 'rel="next"' in link else None
        return out

    def check(self, what, digest, body):
        got = "sha256:" + hashlib.sha256(body).hexdigest()
        if got != digest:
            raise SystemExit(f"{what}: body has digest {got}, not {digest}")

    def manifest(self, repo, reference):
        body, headers = self.get(f"/v2/{repo}/manifests/{reference}", ACCEPT)
        digest = headers.get("Docker-Content-Digest")
        self.check(f"manifest {repo}:{reference}", digest, body)
        if reference.startswith("sha256:") and digest != reference:
            raise SystemExit(f"manifest {repo}@{reference} came back as {digest}")
        return digest, json.loads(body), headers.get("Content-Type", "").split(";")[0]

    def walk(self, repo, digest):
        if (repo, digest) in self.seen:
            return
        self.seen.add((repo, digest))
        _, doc, media_type = self.manifest(repo, digest)
        self.counts["manifests"] += 1
        if media_type in INDEXES or "manifests" in doc:
            for child in doc.get("manifests", []):
                self.walk(repo, child["digest"])
            return
        for d in [doc["config"]] + doc.get("layers", []):
            body, _ = self.get(f"/v2/{repo}/blobs/{d['digest']}")
            self.check(f"blob {repo}@{d['digest']}", d["digest"], body)
            if len(body) != d["size"]:
                raise SystemExit(f"blob {repo}@{d['digest']} is {len(body)} bytes, not {d['size']}")
            self.counts["blobs"] += 1
            self.counts["bytes"] += len(body)

    def run(self):
        for repo in self.pages("/v2/_catalog?n=2", "repositories"):
            self.counts["repositories"] += 1
            for tag in self.pages(f"/v2/{repo}/tags/list?n=2", "tags"):
                self.counts["tags"] += 1
                digest, _, _ = self.manifest(repo, tag)
                self.walk(repo, digest)
        return self.counts


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    creds = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
    ca = sys.argv[3] if len(sys.argv) > 3 else None
    print(json.dumps(Walker(sys.argv[1], creds, ca).run()))


if __name__ == "__main__":
    main()
