#!/usr/bin/env bash
# The main job end to end on one machine: two loopback registries stand for the connected and
# the disconnected side; a directory stands for the removable media.
#   source registry --ferry-pack--> media --ferry-unpack verify/push--> target registry
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --workspace --bins --quiet
bin=target/release
work=$(mktemp -d /tmp/ferry-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start_registry() { # name: starts it, host:port in $work/host-NAME (no subshell: pids must stay)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/$1"
  cat > "$work/$1.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/$1}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YAML
  docker-registry serve "$work/$1.yml" >"$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "127.0.0.1:$port" > "$work/host-$1"
}

start_registry source
start_registry target
src=$(cat "$work/host-source")
dst=$(cat "$work/host-target")
echo "== source registry $src, target registry $dst, work dir $work"

echo "== seeding the source with fixture images (shared layers, multi-arch, a 2.5 MiB layer, a real manifest list)"
$bin/ferry-seed "$src" ../shared/realdata > "$work/imageset.yaml"
cat "$work/imageset.yaml"

echo "== signing key"
ssh-keygen -q -t ed25519 -N '' -C ferry-demo -f "$work/ferry.key"

echo "== ferry-pack (1 MiB volumes, so the big layer is split)"
$bin/ferry-pack --config "$work/imageset.yaml" --to "$work/media" --sign-key "$work/ferry.key" --volume-size 1MiB
ls -l "$work/media"

echo "== ferry-unpack verify (offline)"
$bin/ferry-unpack verify "$work/media" --trust "$work/ferry.key.pub"

echo "== the same signature, checked without ferry"
echo "ferry $(cat "$work/ferry.key.pub")" > "$work/allowed_signers"
ssh-keygen -Y verify -f "$work/allowed_signers" -I ferry -n ferry-index \
  -s "$work/media/ferry-index.json.sig" < "$work/media/ferry-index.json"

echo "== ferry-unpack push"
$bin/ferry-unpack push "$work/media" --trust "$work/ferry.key.pub" --to "$dst/mirror"

echo "== skopeo compares source and target"
grep -- '- name:' "$work/imageset.yaml" | sed 's/.*name: //' | while read -r ref; do
  repo=${ref#"$src"/}
  a=$(skopeo inspect --raw --tls-verify=false "docker://$ref" | sha256sum | cut -c1-16)
  b=$(skopeo inspect --raw --tls-verify=false "docker://$dst/mirror/$repo" | sha256sum | cut -c1-16)
  [ "$a" = "$b" ] && echo "same  $a  $repo" || { echo "DIFFERENT $repo"; exit 1; }
done

echo "== OpenShift: seeding three real-shaped release payloads (183 components each), an update graph, gpg-signed"
echo "   release signatures, and an operator catalog index image built from a real file-based catalog"
$bin/ferry-seed "$src" --release "$work/ocp" ../shared/realdata
sigport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/ocp" "$sigport" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$sigport/" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== ferry-pack the channel range and the filtered catalog (graph from a saved file; OpenPGP release"
echo "   signatures verified against the pinned keyring, sigstore signatures against the pinned cosign key)"
$bin/ferry-pack --config "$work/ocp/imageset.yaml" --to "$work/media-ocp" --sign-key "$work/ferry.key" \
  --graph-file "$work/ocp/graph-amd64.json" --signature-url "http://127.0.0.1:$sigport/sigs" \
  --release-keyring "$work/ocp/release-keys.asc" --sigstore-key "$work/ocp/cosign.pub" --volume-size 16MiB

echo "== ferry-unpack verify"
$bin/ferry-unpack verify "$work/media-ocp" --trust "$work/ferry.key.pub"

echo "== ferry-unpack push, with the cluster manifests"
$bin/ferry-unpack push "$work/media-ocp" --trust "$work/ferry.key.pub" --to "$dst/ocp" --manifests-dir "$work/cluster" -q | grep -v '^pushed '
echo "== the ImageDigestMirrorSet"
cat "$work/cluster/"idms-*.yaml
echo "== the CatalogSource"
cat "$work/cluster/"cs-*.yaml
echo "== the release's sigstore signature, in the mirror where a 4.21+ node looks, checked as a node checks it"
digest=$(grep -m1 'image:' "$work/cluster/releases.txt" | sed 's/.*@//')
rel="ocp/openshift-release-dev/ocp-release"
skopeo inspect --raw --tls-verify=false "docker://$dst/$rel:sha256-${digest#sha256:}.sig" | head -c 400; echo " ..."
python3 tests/sigstore_check.py "$dst" "$rel" "$digest" "$work/ocp/cosign.pub" "$dst/ocp" "$src"
echo "== a release signature ConfigMap"
head -c 600 "$(ls "$work/cluster/release-signatures/"* | head -1)"; echo " ..."
echo "== the installer, extracted from the media and pinned to the mirrored release (oc adm release extract --command)"
$bin/ferry-unpack extract "$work/media-ocp" --trust "$work/ferry.key.pub" --release 4.15.2 \
  --command openshift-install --to "$work/bin" --mirror "$dst/ocp"
echo "   the release image the installer now holds:"
grep -a -o "$dst/ocp/openshift-release-dev/ocp-release@sha256:[0-9a-f]*" "$work/bin/openshift-install" | head -1
echo "== install-config-mirrors.yaml (merge into install-config.yaml)"
cat "$work/cluster/install-config-mirrors.yaml"
echo "== done (media left in $work/media and $work/media-ocp, cluster manifests in $work/cluster, installer in $work/bin)"
