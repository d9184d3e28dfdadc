#!/bin/bash
# The bare engine against bare runc: `berth-runspec run` and `runc run` of the same prepared bundle
# (busybox-static rootfs, /bin/true, the spec berth's supervisor writes: 6 namespaces, podman's caps,
# masked/read-only paths, rlimits, a cgroup), N runs each, interleaved; prints medians and the ratio.
#   bench/engine-vs-runc.sh [-n RUNS]        (root; needs build/services/supervisor/berth-runspec)
set -euo pipefail
runs=20
while getopts n: o; do case $o in n) runs=$OPTARG ;; *) exit 2 ;; esac; done
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runspec=${BERTH_BUILD_DIR:-$top/build}/services/supervisor/berth-runspec
[ -x "$runspec" ] || { echo "build berth-runspec first (ninja -C build)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

PYTHONPATH=$top/tests/integration /usr/bin/python3 - "$tmp" <<'PY'
import json, sys
from pathlib import Path
sys.argv += []
import test_engine as t
from berthtest.images import busybox_rootfs_layer
out = Path(sys.argv[1])
t.materialize(busybox_rootfs_layer(), out / "rootfs")
spec = t.default_spec(out / "rootfs", ["/bin/true"])
for name in ("berth", "runc"):
    s = json.loads(json.dumps(spec))
    s["linux"]["cgroupsPath"] = f"/berth-bench/{name}"
    (out / name).mkdir()
    (out / name / "config.json").write_text(json.dumps(s))
PY

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f", m / 1e6}'; }
: > "$tmp/berth.ns"; : > "$tmp/runc.ns"; : > "$tmp/create.ns"; : > "$tmp/run.ns"
for i in $(seq "$runs"); do
        t0=$(now); BERTH_RUNSPEC_TIMING=1 "$runspec" run "$tmp/berth" </dev/null 2>"$tmp/timing"; t1=$(now)
        echo $((t1 - t0)) >> "$tmp/berth.ns"
        # engine_create() alone (spec loaded → init waiting at START), and START → exit reaped
        awk '/timing spec-loaded/ {a=$4} /timing created/ {b=$4} /timing exited/ {c=$4}
             END {print (b - a) * 1000 > "/dev/stderr"; print (c - b) * 1000}' "$tmp/timing" \
                2>>"$tmp/create.ns" >>"$tmp/run.ns"
        t0=$(now); runc run --bundle "$tmp/runc" "berth-bench-$$-$i" </dev/null; t1=$(now)
        echo $((t1 - t0)) >> "$tmp/runc.ns"
done
rmdir /sys/fs/cgroup/*/berth-bench 2>/dev/null || true
b=$(median < "$tmp/berth.ns"); r=$(median < "$tmp/runc.ns")
echo "runs: $runs each, /bin/true, same bundle"
echo "berth-runspec run: median ${b} ms"
echo "runc run:          median ${r} ms"
echo "  of which berth engine_create(): median $(median < "$tmp/create.ns") ms, start → exit reaped: median $(median < "$tmp/run.ns") ms"
echo "  (the rest is berth-runspec's own start: two dynamic-linker start-ups, see bench/README.md)"
awk -v b="$b" -v r="$r" 'BEGIN {printf "ratio berth/runc: %.2f\n", b / r}'
