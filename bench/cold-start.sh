#!/bin/bash
# Cold against warm `berthctl info`: the first call after all four services have exited (idle exit,
# or never started) pays for four bus activations; a warm call finds them running.
#
# Run as root on a machine where tools/dev-up has run (it stops and restarts the installed services,
# so hold the stack lock on shared machines):  bench/cold-start.sh [-n RUNS]
set -euo pipefail

runs=7
while getopts n: o; do
        case $o in
        n) runs=$OPTARG ;;
        *) echo "usage: $0 [-n RUNS]" >&2; exit 2 ;;
        esac
done

berthctl=${BERTH_PREFIX:-/usr/local}/bin/berthctl
names=(org.berth.Broker1 org.berth.Fetcher1 org.berth.Unpacker1 org.berth.Supervisor1)

name_pid() {
        busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                GetConnectionUnixProcessID s "$1" 2>/dev/null | awk '{print $2}'
}

stop_all() {
        local n pid
        for n in "${names[@]}"; do
                pid=$(name_pid "$n")
                [ -n "$pid" ] || continue
                kill -TERM "$pid"
                while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        done
        for n in "${names[@]}"; do
                while [ -n "$(name_pid "$n")" ]; do sleep 0.05; done
        done
}

# Wall time of one `berthctl info`, in milliseconds.
time_info() {
        local t0 t1
        t0=$(date +%s%N)
        "$berthctl" --no-ask-password info >/dev/null
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000))
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

cold=() warm=()
for _ in $(seq "$runs"); do
        stop_all
        cold+=("$(time_info)")
        warm+=("$(time_info)")
done

c=$(printf '%s\n' "${cold[@]}" | median)
w=$(printf '%s\n' "${warm[@]}" | median)
printf 'berthctl info, median of %d runs (µs → ms):\n' "$runs"
printf '  cold (all four services exited): %8.1f ms   runs: %s\n' "$(echo "$c / 1000" | bc -l)" "${cold[*]}"
printf '  warm (all four running):         %8.1f ms   runs: %s\n' "$(echo "$w / 1000" | bc -l)" "${warm[*]}"
printf '  cold / warm:                     %8.1f\n' "$(echo "$c / $w" | bc -l)"
