#!/bin/bash
# Container start latency, end to end: `berthctl run --rm IMG /bin/true` against `ctr run --rm` (a private
# containerd) and bare `runc run` of a prepared bundle of the same image, interleaved in one run; medians
# and ratios. Then N containers started one after another and left running (`run -d … sleep`): the time
# per container must not grow (first-10 vs last-10 medians), with the shims' RSS and the supervisor's RSS
# once all run.
#
#   bench/run-vs-ctr.sh [-n RUNS] [-c CONTAINERS] [-k]
#
# Run as root on a machine where tools/dev-up has run. The image is tools/busybox-image's (Debian's
# busybox-static); containerd runs with its own config, root, state and socket under a temp dir.
set -euo pipefail

runs=20
count=100
keep=0
while getopts "n:c:kh" o; do
        case $o in
        n) runs=$OPTARG ;;
        c) count=$OPTARG ;;
        k) keep=1 ;;
        *) sed -n '2,11p' "$0"; exit 2 ;;
        esac
done

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
image=localhost/bench-run:latest

require "containerd and runc need it" "containerd runc" containerd ctr runc python3 awk sort

tmp=$(mktemp -d /var/tmp/berth-bench-run.XXXXXX)
ctrd_pid=
cleanup() {
        set +e
        "$berthctl" ls -a --json 2>/dev/null | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["Name"].startswith("bench-seq-"):
        print(c["Name"])' | xargs -r "$berthctl" rm -f >/dev/null 2>&1
        stop_containerd
        runc delete -f "bench-runc-$$" >/dev/null 2>&1
        "$berthctl" images rm "$image" >/dev/null 2>&1
        if [ "$keep" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

now() { date +%s%N; }

# 1. The image, in berth and in a private containerd; a runc bundle of its root file system.
"$top/tools/busybox-image" --name "$image" "$tmp/image.tar" >/dev/null
"$berthctl" images import "$tmp/image.tar" >/dev/null

start_containerd
ctr_ images import "$tmp/image.tar" >/dev/null

mkdir -p "$tmp/bundle/rootfs"
python3 - "$tmp/image.tar" "$tmp/bundle/rootfs" <<'PY'
import io, json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    blob = lambda d: t.extractfile("blobs/sha256/" + d.split(":")[1]).read()
    index = json.loads(t.extractfile("index.json").read())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as l:
            l.extractall(sys.argv[2])
PY
(cd "$tmp/bundle" && runc spec)
python3 - "$tmp/bundle/config.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["process"]["terminal"] = False
s["process"]["args"] = ["/bin/true"]
json.dump(s, open(sys.argv[1], "w"))
PY

# 2. One container at a time, the three interleaved; one warm-up round first.
log "$runs runs each of /bin/true: berthctl run --rm, ctr run --rm, runc run"
: >"$tmp/berth.ns"; : >"$tmp/ctr.ns"; : >"$tmp/runc.ns"
for i in $(seq 0 "$runs"); do
        # --net none: ctr run (no --cni) gives its container a new namespace with loopback only, as this does.
        t0=$(now); "$berthctl" run --rm --net none "$image" /bin/true </dev/null; t1=$(now)
        [ "$i" -gt 0 ] && echo $((t1 - t0)) >>"$tmp/berth.ns"
        t0=$(now); ctr_ run --rm "$image" "bench-ctr-$$-$i" /bin/true </dev/null; t1=$(now)
        [ "$i" -gt 0 ] && echo $((t1 - t0)) >>"$tmp/ctr.ns"
        t0=$(now); runc run --bundle "$tmp/bundle" "bench-runc-$$" </dev/null; t1=$(now)
        [ "$i" -gt 0 ] && echo $((t1 - t0)) >>"$tmp/runc.ns"
done
b=$(median_ms <"$tmp/berth.ns"); c=$(median_ms <"$tmp/ctr.ns"); r=$(median_ms <"$tmp/runc.ns")
echo "run --rm /bin/true, $runs runs each (median):"
echo "  berthctl run --rm: ${b} ms"
echo "  ctr run --rm:      ${c} ms"
echo "  runc run:          ${r} ms"
awk -v b="$b" -v c="$c" -v r="$r" 'BEGIN {printf "  ctr/berth: %.1fx   berth/runc: %.2f\n", c / b, b / r}'
# Issue 8's goal, judged on this run's own figures: at least 10x faster than ctr, at most half of runc.
awk -v b="$b" -v c="$c" -v r="$r" 'BEGIN {printf "  goal (ctr/berth >= 10, berth/runc <= 0.5): %s, %s\n",
        (c / b >= 10) ? "met" : "not met", (b / r <= 0.5) ? "met" : "not met"}'

# 3. N containers one after another, all left running.
log "$count containers started one after another (run -d … sleep 1000)"
: >"$tmp/seq.ns"
for i in $(seq 1 "$count"); do
        t0=$(now); "$berthctl" run -d --net none --name "bench-seq-$i" "$image" sleep 1000 >/dev/null </dev/null; t1=$(now)
        echo $((t1 - t0)) >>"$tmp/seq.ns"
done
first=$(head -10 "$tmp/seq.ns" | median_ms); last=$(tail -10 "$tmp/seq.ns" | median_ms)
echo "$count containers one after another (run -d): first 10 median ${first} ms, last 10 median ${last} ms"
shims=$(pgrep -x berth-shim | xargs -r -n1 sh -c 'awk "/^VmRSS/ {print \$2}" /proc/$0/status' | sort -n)
n=$(echo "$shims" | grep -c . || true)
echo "berth-shim RSS with $n running: median $(echo "$shims" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') KiB, max $(echo "$shims" | tail -1) KiB"
sup=$(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetConnectionUnixProcessID s org.berth.Supervisor1 | awk '{print $2}')
echo "berth-supervisor RSS with $n running: $(awk '/^VmRSS/ {print $2, $3}' /proc/"$sup"/status)"
