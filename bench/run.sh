#!/usr/bin/env bash
# Side-by-side benchmark of ferry against skopeo on loopback registries (not part of CI).
#
#   bench/run.sh [--profile small|large|many|huge|wan] [--keep]
#
# Starts a source registry and three empty targets (docker-registry), seeds the profile, then
# measures in one run: pack (skopeo sync docker->dir vs ferry-pack vs a raw parallel GET of the
# same blobs to disk), verify (raw reads,
# sha256sum, blake3 on all cores vs ferry-unpack verify), push (skopeo sync dir->docker vs
# ferry-unpack push vs a raw parallel PUT of the same blobs into one repository, and vs a raw PUT
# of the same images: blobs uploaded once and mounted, instances, tags), pull (skopeo sync docker->dir from
# docker-registry vs from ferry-unpack serve), pack with --parity 10% vs without and a repair,
# and peak RSS of every ferry command. Where the time goes: the CPU seconds of each pack and
# push step and of the registry serving it, and a pack floor (the raw GET's CPU plus the hashes
# every archive needs, spread over the cores). `huge` adds a 5 GiB layer to the small set (parity is
# skipped there: disk). `wan` puts the source behind a throttling hop (50 MiB/s per
# connection, 20 ms per request) and measures pack only: skopeo vs ferry-pack with and without
# ranged parallel fetch, vs the raw GET. Prints a Markdown table of times and ratios; writes JSON to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=small
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: bench/run.sh [--profile small|large|many|huge|wan] [--keep]" >&2; exit 2 ;;
  esac
done
case "$profile" in small|large|many|huge|wan) ;; *) echo "unknown profile $profile" >&2; exit 2 ;; esac
command -v /usr/bin/time >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq time >/dev/null; }
bash scripts/setup.sh
cargo build --release --quiet --workspace --bins
bin=$PWD/target/release
jobs=$(nproc)
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
# Where the registries and archives live (tmpfs with TMPDIR=/dev/shm, else the disk's
# filesystem): the same profile times differently on each, so every result names it, and a run
# on tmpfs writes PROFILE-tmpfs.json beside the disk's PROFILE.json.
export BENCH_STORAGE BENCH_RESULT
BENCH_STORAGE=$(stat -f -c %T "$work")
BENCH_RESULT=bench/results/$profile.json
[ "$BENCH_STORAGE" != tmpfs ] || BENCH_RESULT=bench/results/$profile-tmpfs.json
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

start_registry() { # name [port]: starts it, host:port in $work/host-NAME (no subshell: pids must stay)
  local port=${2:-}
  [ -n "$port" ] || port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/reg-$1"
  printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:%s}\n' "$work/reg-$1" "$port" > "$work/$1.yml"
  docker-registry serve "$work/$1.yml" >"$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "127.0.0.1:$port" > "$work/host-$1"
}

# CPU seconds (user + system) process $1 has used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# timed NAME CMD... : runs CMD, records into $work/t-NAME its seconds, peak RSS (KiB) and CPU
# seconds (user + system), and the CPU seconds the registry with pid $watch (when set) spent
# meanwhile: where the time of a step goes.
watch=""
timed() {
  local name=$1 before=0 reg=0; shift
  [ -z "$watch" ] || before=$(cpu_of "$watch")
  /usr/bin/time -f '%e %M %U %S' -o "$work/t-$name" "$@" >"$work/out-$name" 2>"$work/err-$name" || {
    echo "FAILED: $name"; tail -20 "$work/err-$name"; exit 1; }
  [ -z "$watch" ] || reg=$(awk -v a="$before" -v b="$(cpu_of "$watch")" 'BEGIN{printf "%.2f", b - a}')
  echo "$(cat "$work/t-$name") $reg" > "$work/t-$name"
}
secs() { cut -d' ' -f1 "$work/t-$1"; }
rss_mib() { awk '{printf "%.0f", $2/1024}' "$work/t-$1"; }

# One empty target at a time, restarted on the same port with empty storage before each push.
target_pid=""
target_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t="127.0.0.1:$target_port"
fresh_target() {
  if [ -n "$target_pid" ]; then kill "$target_pid" 2>/dev/null || true; wait "$target_pid" 2>/dev/null || true; fi
  rm -rf "$work/reg-target"
  start_registry target "$target_port"
  target_pid=${pids[-1]}
}
start_registry source
src=$(cat "$work/host-source")
src_pid=${pids[-1]}
echo "== seeding profile $profile into $src"
"$bin/ferry-bench" seed "$src" "$profile" "$work/set"
unique=$(python3 -c "import json;print(json.load(open('$work/set/profile.json'))['uniqueLayerBytes'])")
vol=fat32; [ "$profile" = large ] && vol=512MiB
ssh-keygen -q -t ed25519 -N '' -f "$work/key"

# step NAME K CMD...: the K-th timed run of a step; $work/t-NAME keeps its fastest run so far.
step() {
  local name=$1 k=$2; shift 2
  timed "$name" "$@"
  if [ "$k" -gt 1 ] && awk -v a="$(cut -d' ' -f1 "$work/t-$name")" -v b="$(cut -d' ' -f1 "$work/t-$name.best")" 'BEGIN{exit !(b <= a)}'; then
    cp "$work/t-$name.best" "$work/t-$name"
  else
    cp "$work/t-$name" "$work/t-$name.best"
  fi
}

# best NAME CMD...: runs a step $runs times (running $prep before each) and keeps the fastest.
# Three by default (BENCH_RUNS): on a 2-core VM one run of a multi-GiB step can be 30% off.
runs=${BENCH_RUNS:-3}
prep=true
best() {
  local name=$1 k; shift
  for k in $(seq "$runs"); do
    $prep
    step "$name" "$k" "$@"
  done
}

if [ "$profile" = wan ]; then
  exec 3< <("$bin/ferry-bench" throttle "$src" 50 20)
  read -r wan <&3
  pids+=($(pgrep -f "ferry-bench throttle $src" | head -1))
  echo "== pack through a WAN-like hop ($wan: 50 MiB/s per connection, 20 ms per request; each $runs times)"
  sed "s/$src/$wan/" "$work/set/isc.yaml" > "$work/set/isc-wan.yaml"
  sed "s/$src/$wan/" "$work/set/sync.yaml" > "$work/set/sync-wan.yaml"
  clean_out() { rm -rf "$out_dir"; sync; }  # sync: no run pays for the last one's write-back
  prep=clean_out
  out_dir="$work/skopeo-dir"
  best skopeo-pack skopeo sync --all --retry-times 0 --src yaml --dest dir "$work/set/sync-wan.yaml" "$work/skopeo-dir"
  out_dir="$work/ferry"
  best ferry-pack "$bin/ferry-pack" --config "$work/set/isc-wan.yaml" --to "$work/ferry" --sign-key "$work/key" -q
  best ferry-pack-1 "$bin/ferry-pack" --config "$work/set/isc-wan.yaml" --to "$work/ferry" --sign-key "$work/key" -q --blob-connections 1
  out_dir="$work/raw-get"
  best raw-get "$bin/ferry-bench" get-raw "$wan" "$profile" "$work/raw-get" 8
  python3 - "$work" "$unique" <<'PY'
import json, os, sys, time
work, unique = sys.argv[1], int(sys.argv[2])
t = lambda n: float(open(f"{work}/t-{n}").read().split()[0])
r = {n: t(n) for n in ["skopeo-pack", "ferry-pack", "ferry-pack-1", "raw-get"]}
print(f"\n### pack over a WAN-like hop — profile `wan` ({unique/2**20:.0f} MiB of unique layers; 50 MiB/s per connection, 20 ms per request; {os.cpu_count()} cores; storage: {os.environ['BENCH_STORAGE']})\n")
print("| step | s | skopeo ÷ this | this ÷ raw GET |\n|---|---:|---:|---:|")
names = {"skopeo-pack": "skopeo sync docker→dir", "raw-get": "raw parallel GET, one stream per blob (no checks)",
         "ferry-pack-1": "ferry-pack --blob-connections 1", "ferry-pack": "ferry-pack (4 connections per large blob)"}
for n in ["skopeo-pack", "raw-get", "ferry-pack-1", "ferry-pack"]:
    print(f"| {names[n]} | {r[n]:.2f} | {r['skopeo-pack']/r[n]:.2f} | {r[n]/r['raw-get']:.2f} |")
out = {"profile": "wan", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cores": os.cpu_count(),
       "storage": os.environ["BENCH_STORAGE"],
       "uniqueLayerBytes": unique, "perConnectionMiBps": 50, "latencyMs": 20, "seconds": r,
       "ratios": {"skopeo/ferry": r["skopeo-pack"] / r["ferry-pack"], "ferry/raw-get": r["ferry-pack"] / r["raw-get"],
                  "one connection/four": r["ferry-pack-1"] / r["ferry-pack"]}}
os.makedirs("bench/results", exist_ok=True)
json.dump(out, open(os.environ["BENCH_RESULT"], "w"), indent=2)
print(f"\n(JSON: {os.environ['BENCH_RESULT']})")
PY
  exit 0
fi

echo "== pack (each tool $runs times, the fastest run counts; ferry-pack and the raw GET in turn)"
clean_out() { rm -rf "$out_dir"; sync; }  # sync: no run pays for the last one's write-back
prep=clean_out
out_dir="$work/skopeo-dir"
best skopeo-pack skopeo sync --all --retry-times 0 --src yaml --dest dir "$work/set/sync.yaml" "$work/skopeo-dir"
# A ceiling and ferry's step are timed in turn (ferry, ceiling, ferry, ceiling, ...), each
# keeping its fastest run, so that the machine drifting over the minutes of a bench hits both
# alike: their ratio is the goal.
for k in $(seq "$runs"); do
  out_dir="$work/ferry"; clean_out
  watch=$src_pid step ferry-pack "$k" "$bin/ferry-pack" --config "$work/set/isc.yaml" --to "$work/ferry" --sign-key "$work/key" --volume-size "$vol" -q
  out_dir="$work/raw-get"; clean_out
  watch=$src_pid step raw-get "$k" "$bin/ferry-bench" get-raw "$src" "$profile" "$work/raw-get" 8
done
rm -rf "$work/raw-get"
skopeo_bytes=$(du -sb "$work/skopeo-dir" | cut -f1)
ferry_bytes=$(du -sb "$work/ferry" | cut -f1)
carried=$(python3 -c "import json;i=json.load(open('$work/ferry/ferry-index.json'));print(sum(b['size'] for b in i['blobs'] if not b.get('base')))")
index_bytes=$(stat -c %s "$work/ferry/ferry-index.json")

pvol=32MiB; [ "$profile" = large ] && pvol=256MiB
np_bytes=0; par_bytes=0; par_counts=0/0
if [ "$profile" != huge ]; then
echo "== parity: ferry-pack with --parity 10% vs without, same volumes; then one volume lost and repaired"
out_dir="$work/ferry-np"
best pack-no-parity "$bin/ferry-pack" --config "$work/set/isc.yaml" --to "$work/ferry-np" --sign-key "$work/key" --volume-size "$pvol" -q
out_dir="$work/ferry-par"
best pack-parity "$bin/ferry-pack" --config "$work/set/isc.yaml" --to "$work/ferry-par" --sign-key "$work/key" --volume-size "$pvol" --parity 10% -q
np_bytes=$(du -sb "$work/ferry-np" | cut -f1)
par_bytes=$(du -sb "$work/ferry-par" | cut -f1)
par_counts=$(python3 -c "import json;i=json.load(open('$work/ferry-par/ferry-index.json'));print(f\"{len(i['volumes'])}/{len(i['parity']['volumes'])}\")")
cp -r "$work/ferry-par" "$work/ferry-lost"
rm "$work/ferry-lost/ferry-vol-0001.tar"
timed ferry-repair "$bin/ferry-unpack" repair "$work/ferry-lost" --trust "$work/key.pub" --out "$work/rebuilt"
cmp "$work/rebuilt/ferry-vol-0001.tar" "$work/ferry-par/ferry-vol-0001.tar"
rm -rf "$work/ferry-np" "$work/ferry-lost" "$work/rebuilt"
fi

echo "== verify"
vols=("$work"/ferry/ferry-vol-*.tar)
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && dropped=yes || dropped=no
timed read-first sh -c 'cat "$@" > /dev/null' cat "${vols[@]}"
timed read-again sh -c 'cat "$@" > /dev/null' cat "${vols[@]}"
timed sha256sum sha256sum "${vols[@]}"
timed blake3-all "$bin/ferry-bench" hash "$jobs" "${vols[@]}"
"$bin/ferry-bench" hash-cost "${vols[@]}" > "$work/hash-cost.json"
timed ferry-verify "$bin/ferry-unpack" verify "$work/ferry" --trust "$work/key.pub"
timed ferry-verify-sha "$bin/ferry-unpack" verify "$work/ferry" --trust "$work/key.pub" --sha256

echo "== push (into an empty registry; each $runs times, the fastest run counts; ferry and the raw PUTs in turn)"
prep=fresh_target
best skopeo-push skopeo sync --all --retry-times 0 --src dir --dest docker --dest-tls-verify=false "$work/skopeo-dir" "$t/skopeo"
for k in $(seq "$runs"); do
  fresh_target
  watch=$target_pid step ferry-push "$k" "$bin/ferry-unpack" push "$work/ferry" --trust "$work/key.pub" --to "$t/ferry" -q
  fresh_target
  watch=$target_pid step raw-put "$k" "$bin/ferry-bench" put-raw "$work/skopeo-dir" "$t/raw" 8
  fresh_target
  watch=$target_pid step raw-put-images "$k" "$bin/ferry-bench" put-raw-images "$work/skopeo-dir" "$t/raw" 8
done

echo "== serve (skopeo sync docker->dir of every image: from docker-registry after a push, and from ferry-unpack serve; each $runs times)"
fresh_target
"$bin/ferry-unpack" push "$work/ferry" --trust "$work/key.pub" --to "$t/ferry" -q >/dev/null
serve_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/time -f '%e %M' -o "$work/t-serve-process" "$bin/ferry-unpack" serve "$work/ferry" --trust "$work/key.pub" \
  --listen "127.0.0.1:$serve_port" --namespace ferry -q 2>"$work/serve.log" &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$serve_port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
sync_yaml() { # HOST FILE: every image of the archive (tags, or digests for untagged ones) under ferry/
  python3 - "$work/ferry/ferry-index.json" "$1" > "$2" <<'PY2'
import json, sys
index, host = json.load(open(sys.argv[1])), sys.argv[2]
repos = {}
for i in index["images"]:
    repos.setdefault("ferry/" + i["repository"], set()).update(i["tags"] or [i["digest"]])
print(f"{host}:\n  tls-verify: false\n  images:")
for r, refs in sorted(repos.items()):
    print(f"    {r}: [{', '.join(sorted(refs))}]")
PY2
}
sync_yaml "$t" "$work/pull-registry.yaml"
sync_yaml "127.0.0.1:$serve_port" "$work/pull-serve.yaml"
clean_pull() { rm -rf "$work/pulled"; }
prep=clean_pull
best registry-pull skopeo sync --all --retry-times 0 --src yaml --dest dir "$work/pull-registry.yaml" "$work/pulled"
best serve-pull skopeo sync --all --retry-times 0 --src yaml --dest dir "$work/pull-serve.yaml" "$work/pulled"
pkill -TERM -P "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
awk '{print $1, $2}' "$work/t-serve-process" > "$work/t-ferry-serve"

python3 - "$work" "$profile" "$unique" "$skopeo_bytes" "$ferry_bytes" "$carried" "$index_bytes" "$dropped" "$np_bytes" "$par_bytes" "$pvol" "$par_counts" <<'PY'
import json, sys, os, time, platform
work, profile, unique, skopeo_bytes, ferry_bytes, carried, index_bytes, dropped, np_bytes, par_bytes, pvol, par_counts = sys.argv[1:]
data_vols, parity_vols = map(int, par_counts.split("/"))
unique, skopeo_bytes, ferry_bytes, carried, index_bytes, np_bytes, par_bytes = map(int, (unique, skopeo_bytes, ferry_bytes, carried, index_bytes, np_bytes, par_bytes))
def t(name):
    s, rss = open(f"{work}/t-{name}").read().split()[:2]
    return float(s), int(rss) // 1024
names = ["skopeo-pack", "ferry-pack", "raw-get", "read-first", "read-again", "sha256sum", "blake3-all",
         "ferry-verify", "ferry-verify-sha", "skopeo-push", "ferry-push", "raw-put", "raw-put-images",
         "registry-pull", "serve-pull", "ferry-serve", "pack-no-parity", "pack-parity", "ferry-repair"]
r = {n: t(n) for n in names if os.path.exists(f"{work}/t-{n}")}
parity = "pack-parity" in r
limit = max(r["read-again"][0], r["blake3-all"][0])
rows = [
  ("pack", "skopeo sync docker→dir", r["skopeo-pack"][0], "ferry-pack", r["ferry-pack"][0], r["skopeo-pack"][0] / r["ferry-pack"][0], "≥ 3× faster"),
  ("pack ceiling", "raw parallel GET to disk (no checks)", r["raw-get"][0], "ferry-pack", r["ferry-pack"][0], r["ferry-pack"][0] / r["raw-get"][0], "≤ 1.3× the ceiling"),
  ("verify", "limit: max(read again, blake3 on all cores)", limit, "ferry-unpack verify", r["ferry-verify"][0], r["ferry-verify"][0] / limit, "≤ 1.25× the limit"),
  ("verify --sha256", "sha256sum (one core)", r["sha256sum"][0], "ferry-unpack verify --sha256", r["ferry-verify-sha"][0], r["ferry-verify-sha"][0] / r["sha256sum"][0], "(for reference)"),
  ("push", "skopeo sync dir→docker", r["skopeo-push"][0], "ferry-unpack push", r["ferry-push"][0], r["skopeo-push"][0] / r["ferry-push"][0], "≥ 3× faster"),
  ("push ceiling", "raw parallel PUT (no checks)", r["raw-put"][0], "ferry-unpack push", r["ferry-push"][0], r["ferry-push"][0] / r["raw-put"][0], "≤ 1.2× the ceiling"),
  ("push, same images", "raw PUT of the images: blobs once + mounts, instances, tags", r["raw-put-images"][0], "ferry-unpack push", r["ferry-push"][0], r["ferry-push"][0] / r["raw-put-images"][0], "(what ferry adds)"),
  ("pull (skopeo sync)", "from docker-registry", r["registry-pull"][0], "from ferry-unpack serve", r["serve-pull"][0], r["registry-pull"][0] / r["serve-pull"][0], "≥ 1.0× the registry"),
]
# Where the pack's time goes: on few cores, ferry-pack, its hashing and the source registry
# share the CPU, so the least it can take is the raw GET's CPU (its own and the registry's) plus
# the hashes every ferry archive needs — sha256 (the content address) and blake3 of every blob,
# blake3 of every part of a blob split over volumes, blake3 of every volume — spread over the
# cores, and never less than the raw GET itself.
def cpu(name):
    f = open(f"{work}/t-{name}").read().split()
    return float(f[2]) + float(f[3]), float(f[4])
cores = os.cpu_count()
accounted = ["raw-get", "ferry-pack", "raw-put", "raw-put-images", "ferry-push"]
hc = json.load(open(f"{work}/hash-cost.json"))
index = json.load(open(f"{work}/ferry/ferry-index.json"))
split_bytes = sum(b["size"] for b in index["blobs"] if len(b.get("parts") or []) > 1)
hashes = hc["sha256Seconds"] + hc["blake3Seconds"] * (2 + split_bytes / hc["bytes"])
floor = max(r["raw-get"][0], (sum(cpu("raw-get")) + hashes) / cores)
rows.insert(2, ("pack floor", f"raw GET's CPU + the archive's hashes, over {cores} cores", floor, "ferry-pack", r["ferry-pack"][0], r["ferry-pack"][0] / floor, "(what ferry adds)"))
if parity:
    rows.append((f"pack, {pvol} volumes", "ferry-pack, no parity", r["pack-no-parity"][0], "ferry-pack --parity 10%", r["pack-parity"][0], r["pack-parity"][0] / r["pack-no-parity"][0], "(the cost of parity)"))
print(f"\n### ferry vs skopeo — profile `{profile}` ({unique/2**20:.0f} MiB of unique layers; {cores} cores; storage: {os.environ['BENCH_STORAGE']}; caches dropped before first read: {dropped})\n")
print("| step | peer | peer s | ferry | ferry s | ratio | goal |")
print("|---|---|---:|---|---:|---:|---|")
for step, peer, ps, ferry, fs, ratio, goal in rows:
    print(f"| {step} | {peer} | {ps:.2f} | {ferry} | {fs:.2f} | {ratio:.2f} | {goal} |")
print(f"\n| bytes | value |\n|---|---:|\n| unique layer bytes (seeded) | {unique} |\n| skopeo dir | {skopeo_bytes} ({skopeo_bytes/unique:.2f}×) |\n| ferry archive (volumes + index + sig) | {ferry_bytes} ({ferry_bytes/unique:.3f}×) |\n| ferry carried blob bytes (layers + configs + manifests) | {carried} |\n| ferry index | {index_bytes} |")
if parity: print(f"\n| parity ({pvol} volumes) | value |\n|---|---:|\n| archive without parity, bytes | {np_bytes} |\n| archive with --parity 10%, bytes | {par_bytes} ({par_bytes/np_bytes:.3f}×) |\n| data volumes / parity volumes | {data_vols} / {parity_vols} |\n| repair of one lost volume (--out), s | {r['ferry-repair'][0]:.2f} |")
print(f"\n| raw reads | s |\n|---|---:|\n| cat, first | {r['read-first'][0]:.2f} |\n| cat, again | {r['read-again'][0]:.2f} |\n| sha256sum | {r['sha256sum'][0]:.2f} |\n| blake3, all cores | {r['blake3-all'][0]:.2f} |")
print(f"\n| where the time goes (fastest runs) | wall s | own CPU s | registry CPU s | all CPU ÷ {cores} cores, s |\n|---|---:|---:|---:|---:|")
for n in accounted:
    own, reg = cpu(n)
    print(f"| {n} | {r[n][0]:.2f} | {own:.2f} | {reg:.2f} | {(own + reg) / cores:.2f} |")
print(f"| hashes of the archive, one core: sha256 {hc['sha256Seconds']:.2f} s, blake3 {hc['blake3Seconds']:.2f} s × (blobs, volumes, {split_bytes / hc['bytes']:.2f} in split blobs' parts) | | {hashes:.2f} | | {hashes / cores:.2f} |")
print("\n| ferry command | peak RSS MiB |\n|---|---:|")
for n in [n for n in ["ferry-pack", "pack-no-parity", "pack-parity", "ferry-repair", "ferry-verify", "ferry-verify-sha", "ferry-push", "ferry-serve"] if n in r]:
    print(f"| {n} | {r[n][1]} |")
out = {"profile": profile, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cores": cores,
       "storage": os.environ["BENCH_STORAGE"],
       "cachesDropped": dropped == "yes", "uniqueLayerBytes": unique, "skopeoDirBytes": skopeo_bytes,
       "ferryArchiveBytes": ferry_bytes, "ferryCarriedBytes": carried, "indexBytes": index_bytes,
       "parityVolumeSize": pvol, "noParityBytes": np_bytes, "parity10Bytes": par_bytes,
       "parity10Volumes": {"data": data_vols, "parity": parity_vols},
       "seconds": {k: v[0] for k, v in r.items()}, "peakRssMiB": {k: v[1] for k, v in r.items()},
       "cpuSeconds": {n: dict(zip(("own", "registry"), cpu(n))) for n in accounted},
       "hashCostSeconds": {"sha256": hc["sha256Seconds"], "blake3": hc["blake3Seconds"], "bytes": hc["bytes"],
                           "splitBlobBytes": split_bytes, "archiveHashes": hashes},
       "ratios": {row[0]: row[5] for row in rows}}
os.makedirs("bench/results", exist_ok=True)
path = os.environ["BENCH_RESULT"]
json.dump(out, open(path, "w"), indent=2)
print(f"\n(JSON: {path})")
PY
if [ "$profile" = many ]; then
  echo; echo "| index scaling | plan s | save s | load+validate s |"; echo "|---|---:|---:|---:|"
  for n in 10000 100000; do
    "$bin/ferry-bench" index "$n" | python3 -c "import json,sys;d=json.load(sys.stdin);print(f\"| {d['blobs']} blobs | {d['planSeconds']:.3f} | {d['saveSeconds']:.3f} | {d['loadValidateSeconds']:.3f} |\")"
  done
  # Catalog scale through ferry's own write_archive (every blob in memory: nothing to fetch).
  timed scale "$bin/ferry-bench" scale 5000 200000 "$work/scale" "$work/key"
  python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
d = json.loads(open(f"{work}/out-scale").read())
secs, rss = open(f"{work}/t-scale").read().split()[:2]
p = d["phases"]
print(f"\n| catalog scale: {d['counts']['images']} images, {d['counts']['blobs']} blobs | value |\n|---|---:|")
print(f"| layout + in-memory objects written, s | {p['layout']:.2f} |\n| index built, written, signed, s | {p['index']:.2f} |")
print(f"| volumes synced and hashed, s | {p['volumes']:.2f} |\n| index bytes | {d['indexBytes']} |")
print(f"| peak RSS of the whole process (synthetic plan included), MiB | {int(rss)//1024} |")
print(f"| of which the synthetic plan alone (RSS before writing), MiB | {d['rssWithPlanMiB']} |")
json.dump({"counts": d["counts"], "phases": p, "indexBytes": d["indexBytes"], "peakRssMiB": int(rss)//1024,
           "rssWithPlanMiB": d["rssWithPlanMiB"]},
          open("bench/results/catalog-scale.json", "w"), indent=2)
PY
fi
