#!/bin/bash
# Networking cost: `redis-benchmark -q -n N -t set,get` against Debian's redis-server in a berth container
# through a published port (CNI bridge + portmap DNAT on 127.0.0.1), against the same redis-server run on
# the host; ratios. Then the time the default bridge network adds to `berthctl run --rm IMG true` over
# `--net none` (medians of interleaved runs).
#
#   bench/net-redis.sh [-n REQUESTS] [-r RUNS]
#
# Run as root on a machine where tools/dev-up has run (packages redis-server, redis-tools).
# containerd's `ctr run --cni` is not compared: it needs a CNI config of its own in /etc/cni/net.d and
# a `ctr` built with CNI support, which Debian's is not set up for here.
set -euo pipefail

requests=100000
runs=15
while getopts "n:r:h" o; do
        case $o in
        n) requests=$OPTARG ;;
        r) runs=$OPTARG ;;
        *) sed -n '2,11p' "$0"; exit 2 ;;
        esac
done

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
redis_img=localhost/bench-redis:latest
bb_img=localhost/bench-net:latest
name=bench-redis

require "" "redis-server redis-tools" redis-server redis-cli redis-benchmark python3 awk sort

tmp=$(mktemp -d /tmp/berth-net-bench.XXXXXX)
host_pid=
cleanup() {
        "$berthctl" rm -f "$name" >/dev/null 2>&1 || true
        [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ping() {
        for _ in $(seq 300); do
                [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ] && return 0
                sleep 0.1
        done
        die "redis on port $1 did not answer"
}
# "SET: 51234.56 requests per second, p50=…" → 51234.56
rps() { awk -v t="$1" -F'[: ]+' '$1 == t {print $2}'; }

"$top/tools/redis-image" --name "$redis_img" "$tmp/redis.tar" >/dev/null
"$top/tools/busybox-image" --name "$bb_img" "$tmp/bb.tar" >/dev/null
"$berthctl" images import "$tmp/redis.tar" >/dev/null
"$berthctl" images import "$tmp/bb.tar" >/dev/null
"$berthctl" rm -f "$name" >/dev/null 2>&1 || true

# 1. redis through the published port vs on the host.
cport=$(free_port)
"$berthctl" run -d --name "$name" -p "$cport:6379" "$redis_img" >/dev/null
wait_ping "$cport"
hport=$(free_port)
redis-server --port "$hport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
host_pid=$!
wait_ping "$hport"

declare -A res
for round in 1 2; do
        for where in container host; do
                port=$cport
                [ $where = host ] && port=$hport
                out=$(redis-benchmark -h 127.0.0.1 -p "$port" -q -n "$requests" -t set,get 2>/dev/null | tr '\r' '\n')
                res[$where-set-$round]=$(rps SET <<<"$out")
                res[$where-get-$round]=$(rps GET <<<"$out")
        done
done
for op in set get; do
        c=$(printf '%s\n' "${res[container-$op-1]}" "${res[container-$op-2]}" | sort -g | tail -1)
        h=$(printf '%s\n' "${res[host-$op-1]}" "${res[host-$op-2]}" | sort -g | tail -1)
        printf '%-4s container (published port) %10.0f req/s   host %10.0f req/s   ratio %.2f\n' \
                "${op^^}" "$c" "$h" "$(awk -v a="$c" -v b="$h" 'BEGIN {print a / b}')"
done
"$berthctl" rm -f "$name" >/dev/null

# 2. What the bridge network adds to `run --rm … true`.
: >"$tmp/bridge"
: >"$tmp/none"
"$berthctl" run --rm "$bb_img" true # warm-up: the network exists, the plugins are in the page cache
for _ in $(seq "$runs"); do
        for mode in bridge none; do
                s=$(date +%s%N)
                "$berthctl" run --rm --net "$mode" "$bb_img" true
                e=$(date +%s%N)
                echo $((e - s)) >>"$tmp/$mode"
        done
done
b=$(median_ms <"$tmp/bridge")
n=$(median_ms <"$tmp/none")
printf 'run --rm true: --net bridge %s ms, --net none %s ms (median of %s): the bridge adds %s ms\n' \
        "$b" "$n" "$runs" "$(awk -v a="$b" -v b="$n" 'BEGIN {printf "%.1f", a - b}')"
