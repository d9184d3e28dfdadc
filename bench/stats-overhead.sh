#!/bin/bash
# The cost of `berthctl stats` with many running containers: N containers (busybox `sleep`) started
# detached, then the median wall time of one Manager.ContainerStats call for all of them (busctl), of one
# `berthctl stats --no-stream` (which samples twice, 200 ms apart, for CPU %), and of a ContainerStats call
# for a single container. Runs against the bus in DBUS_SYSTEM_BUS_ADDRESS (the system bus by default) as
# root, with an image IMAGE that has `sleep` (default: tools/busybox-image, imported first).
#
#   bench/stats-overhead.sh [-n CONTAINERS] [-r RUNS] [-i IMAGE] [-b BERTHCTL]
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=100 runs=10 image='' berthctl=${BERTHCTL:-berthctl}
while getopts n:r:i:b: o; do
        case $o in
        n) n=$OPTARG ;;
        r) runs=$OPTARG ;;
        i) image=$OPTARG ;;
        b) berthctl=$OPTARG ;;
        *) exit 2 ;;
        esac
done
tmp=$(mktemp -d)
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
names=()
cleanup() {
        [ ${#names[@]} -eq 0 ] || "$berthctl" rm -f "${names[@]}" >/dev/null 2>&1 || true
        rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "$image" ]; then
        image=localhost/berth-stats-bench:latest
        "$top/tools/busybox-image" --name "$image" "$tmp/bb.tar" >/dev/null
        "$berthctl" images import "$tmp/bb.tar" >/dev/null
fi
for i in $(seq "$n"); do
        names+=("stats-bench-$i")
        "$berthctl" run -d --name "stats-bench-$i" "$image" sleep 100000 >/dev/null || die "run $i failed"
done
running=$("$berthctl" ls --json | grep -o '"Status" *: *"running"' | wc -l)
[ "$running" -ge "$n" ] || die "only $running containers run"

call() {
        busctl call org.berth.Broker1 /org/berth/Broker1 org.berth.Broker1.Manager ContainerStats ast "$@" \
                >"$tmp/out" || die "ContainerStats failed"
}
time_ns() { local t0 t1; t0=$(date +%s%N); "$@"; t1=$(date +%s%N); echo $((t1 - t0)); }
ping() { busctl call org.berth.Broker1 /org/berth/Broker1 org.freedesktop.DBus.Peer Ping >/dev/null; }
cli_stats() { "$berthctl" stats --no-stream >/dev/null; }

call 0 0
rows=$(grep -o '"CpuUsageNSec"' "$tmp/out" | wc -l)
all=$(for _ in $(seq "$runs"); do time_ns call 0 0; done | median_ms)
one=$(for _ in $(seq "$runs"); do time_ns call 1 stats-bench-1 0; done | median_ms)
base=$(for _ in $(seq "$runs"); do time_ns ping; done | median_ms)
cli=$(for _ in $(seq "$runs"); do time_ns cli_stats; done | median_ms)
echo "busctl round trip (Peer.Ping baseline):  ${base} ms"
echo "containers running:                      $running (stats rows: $rows)"
echo "ContainerStats, all ($runs runs, median): ${all} ms"
echo "ContainerStats, one container:            ${one} ms"
echo "berthctl stats --no-stream (2 samples):   ${cli} ms (includes the 200 ms between samples)"
