#!/usr/bin/env bash
# Catalog benchmark (issue 5): parse + filter a large synthetic file-based catalog with ferry,
# side by side with `tar -x` of the same configs directory. Writes bench/results/catalog.json.
#   bash bench/catalog.sh [PACKAGES] [BUNDLES]      (default 500 packages, 20000 bundles)
# Use TMPDIR=/dev/shm to keep the disk out of it.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=${1:-500}
bundles=${2:-20000}
cargo build --release -q -p ferry-bench
bin=target/release/ferry-bench
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-catbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
gen=$($bin catalog-gen "$work/src/configs" "$pkgs" "$bundles")
echo "catalog: $gen"
bytes=$(du -sb "$work/src/configs" | cut -f1)
(cd "$work/src" && tar cf "$work/configs.tar" configs)
measure() { # label cmd...: prints "label wall_s rss_kb" from GNU time, best of 3 walls
  local label=$1; shift
  local best="" rss=""
  for _ in 1 2 3; do
    rm -rf "$work/x" && mkdir -p "$work/x"
    /usr/bin/time -o "$work/time" -f "%e %M" "$@" >/dev/null 2>&1
    local out w r
    out=$(tail -1 "$work/time")
    w=${out% *}
    r=${out#* }
    if [ -z "$best" ] || awk "BEGIN{exit !($w < $best)}"; then best=$w; fi
    rss=$r
  done
  echo "$label $best $rss"
}
read -r _ tar_s tar_kb < <(measure tar tar xf "$work/configs.tar" -C "$work/x")
read -r _ heads_s heads_kb < <(measure heads $bin catalog-filter "$work/src/configs")
read -r _ full_s full_kb < <(measure full $bin catalog-filter "$work/src/configs" full)
mkdir -p bench/results
cat > bench/results/catalog.json <<JSON
{
  "machine": "$(nproc) cores, $(uname -m)",
  "packages": $pkgs, "bundles": $bundles, "configs_bytes": $bytes,
  "tar_x": {"seconds": $tar_s, "peak_rss_kb": $tar_kb},
  "ferry_parse_filter_heads": {"seconds": $heads_s, "peak_rss_kb": $heads_kb},
  "ferry_parse_filter_full": {"seconds": $full_s, "peak_rss_kb": $full_kb},
  "ratio_heads_to_tar": $(awk "BEGIN{printf \"%.2f\", $heads_s/$tar_s}")
}
JSON
cat bench/results/catalog.json
