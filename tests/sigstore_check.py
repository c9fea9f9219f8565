#!/usr/bin/env python3
"""An independent check of cosign signatures in a registry, the way a cluster node checks them
(containers/image with a `sigstoreSigned` policy and sigstore attachments enabled). It shares
no code with ferry: plain HTTP to the registry, Python's `cryptography` for the signature.

For an image pulled through a mirror by digest:
  1. the signature manifest is the tag `sha256-<hex>.sig` in the mirrored repository;
  2. a layer of type application/vnd.dev.cosign.simplesigning.v1+json, whose blob has the
     layer's digest, is a payload with critical.type "cosign container image signature" and
     critical.image.docker-manifest-digest equal to the image's digest;
  3. its critical.identity.docker-reference, compared by repository (matchRepoDigestOrExact for
     an image referenced by digest), equals the mirrored repository remapped from the mirror
     prefix to the source prefix (remapIdentity);
  4. the base64 signature in the layer annotation dev.cosignproject.cosign/signature verifies
     over the payload bytes under the public key (ECDSA P-256 with SHA-256, or ed25519).
Exit 0 when some layer passes all four, else 1 with the reasons.

usage: sigstore_check.py REGISTRY MIRROR_REPOSITORY DIGEST KEY.pub MIRROR_PREFIX SOURCE_PREFIX
"""

import base64
import hashlib
import json
import sys
import urllib.error
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
ANNOTATION = "dev.cosignproject.cosign/signature"
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


def get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def field(obj, name):
    """A JSON field matched without regard to case, as Go's decoder does."""
    if not isinstance(obj, dict):
        return None
    for k, v in obj.items():
        if k.lower() == name.lower():
            return v
    return None


def repository_of(reference):
    name = reference.split("@")[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def verify(key, payload, signature):
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        else:
            return False
        return True
    except InvalidSignature:
        return False


def check(registry, repository, digest, key_path, mirror_prefix, source_prefix):
    key = serialization.load_pem_public_key(open(key_path, "rb").read())
    base = f"http://{registry}/v2/{repository}"
    if get(f"{base}/manifests/{digest}", ACCEPT + ", application/vnd.oci.image.index.v1+json") is None:
        return [f"the image {repository}@{digest} is not in the mirror"]
    tag = "sha256-" + digest.split(":", 1)[1] + ".sig"
    raw = get(f"{base}/manifests/{tag}", ACCEPT)
    if raw is None:
        return [f"no signature: {repository}:{tag} does not exist"]
    mirrored = f"{registry}/{repository}"
    if not mirrored.startswith(mirror_prefix):
        return [f"{mirrored} is not under the mirror prefix {mirror_prefix}"]
    identity = source_prefix + mirrored[len(mirror_prefix):]
    problems = []
    for n, layer in enumerate(json.loads(raw).get("layers", [])):
        what = f"layer {n}"
        if layer.get("mediaType") != SIMPLE_SIGNING:
            problems.append(f"{what}: media type {layer.get('mediaType')}")
            continue
        sig = (layer.get("annotations") or {}).get(ANNOTATION)
        if not sig:
            problems.append(f"{what}: no {ANNOTATION} annotation")
            continue
        payload = get(f"{base}/blobs/{layer['digest']}")
        if payload is None or "sha256:" + hashlib.sha256(payload).hexdigest() != layer["digest"]:
            problems.append(f"{what}: payload blob missing or not its digest")
            continue
        critical = field(json.loads(payload), "critical")
        if field(critical, "type") != "cosign container image signature":
            problems.append(f"{what}: critical.type is {field(critical, 'type')!r}")
            continue
        claimed = field(field(critical, "image"), "docker-manifest-digest")
        if claimed != digest:
            problems.append(f"{what}: payload names {claimed}, not {digest}")
            continue
        signed_for = repository_of(field(field(critical, "identity"), "docker-reference") or "")
        if signed_for != identity:
            problems.append(f"{what}: signed for {signed_for}, the image is {identity}")
            continue
        if not verify(key, payload, base64.b64decode(sig)):
            problems.append(f"{what}: the signature does not verify under {key_path}")
            continue
        return []
    return problems or ["the signature manifest has no layers"]


def main():
    if len(sys.argv) != 7:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    problems = check(*sys.argv[1:])
    if problems:
        print("REJECTED: " + "; ".join(problems))
        sys.exit(1)
    print("ACCEPTED")


if __name__ == "__main__":
    main()
