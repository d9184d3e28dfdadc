#!/bin/bash
# Exec latency, end to end: `berthctl exec NAME /bin/true` into a running container against `ctr tasks
# exec` into a running task of the same image (a private containerd), interleaved in one run; medians and
# the ratio.
#
#   bench/exec-vs-ctr.sh [-n RUNS] [-k] [-u USER]
#
# Run as root on a machine where tools/dev-up has run. The image is tools/busybox-image's (Debian's
# busybox-static); containerd runs with its own config, root, state and socket under a temp dir.
# -u USER: the berth container is USER's and USER runs berthctl (a member of group berth: polkit decides),
# started through setpriv, whose own cost is timed and printed too (ctr needs root either way).
set -euo pipefail

runs=20
keep=0
user=
while getopts "n:ku:h" o; do
        case $o in
        n) runs=$OPTARG ;;
        k) keep=1 ;;
        u) user=$OPTARG ;;
        *) sed -n '2,11p' "$0"; exit 2 ;;
        esac
done

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
image=localhost/bench-exec:latest
name=bench-exec-$$

require "containerd needs it" "containerd" containerd ctr awk sort
# as_user CMD...: CMD as $user (setpriv: no PAM session in the timed path), or as we are.
as_user() { "$@"; }
if [ -n "$user" ]; then
        command -v setpriv >/dev/null || die "'setpriv' not found (Debian: util-linux)"
        id "$user" >/dev/null 2>&1 || die "no user '$user'"
        as_user() { setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$@"; }
fi

tmp=$(mktemp -d /var/tmp/berth-bench-exec.XXXXXX)
ctrd_pid=
cleanup() {
        set +e
        "$berthctl" rm -f "$name" >/dev/null 2>&1
        if [ -n "$ctrd_pid" ]; then
                ctr_ tasks kill -s KILL "$name" >/dev/null 2>&1
                sleep 0.5
                ctr_ tasks rm -f "$name" >/dev/null 2>&1
                ctr_ containers rm "$name" >/dev/null 2>&1
        fi
        stop_containerd
        "$berthctl" images rm "$image" >/dev/null 2>&1
        if [ "$keep" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# 1. The image in berth and in a private containerd, and one running container of it in each.
"$top/tools/busybox-image" --name "$image" "$tmp/image.tar" >/dev/null
"$berthctl" images import "$tmp/image.tar" >/dev/null
as_user "$berthctl" run -d --name "$name" "$image" sleep 100000 >/dev/null
start_containerd
ctr_ images import "$tmp/image.tar" >/dev/null
ctr_ run -d "$image" "$name" sleep 100000 >/dev/null

# 2. Interleaved, one warm-up round first. Both exit with the process's status. The clock is bash's own
# (µs): $(date) would add a fork and exec of date (about 1 ms here) to each timed command, as much to
# berthctl's few milliseconds as to ctr's tens. berth's warm-up is the container's first exec (the shim
# has no spare joiner yet, services/shim/shim-spare.c): printed apart.
log "$runs runs each of /bin/true: berthctl exec${user:+ as $user}, ctr tasks exec"
: >"$tmp/berth.ns"; : >"$tmp/ctr.ns"; : >"$tmp/setpriv.ns"
for i in $(seq 0 "$runs"); do
        t0=${EPOCHREALTIME/./}; as_user "$berthctl" exec "$name" /bin/true </dev/null; t1=${EPOCHREALTIME/./}
        [ "$i" -gt 0 ] && echo $(((t1 - t0) * 1000)) >>"$tmp/berth.ns"
        [ "$i" -eq 0 ] && first=$(((t1 - t0) * 1000))
        t0=${EPOCHREALTIME/./}; ctr_ tasks exec --exec-id "e$i" "$name" /bin/true </dev/null; t1=${EPOCHREALTIME/./}
        [ "$i" -gt 0 ] && echo $(((t1 - t0) * 1000)) >>"$tmp/ctr.ns"
        if [ -n "$user" ]; then
                t0=${EPOCHREALTIME/./}; as_user /bin/true; t1=${EPOCHREALTIME/./}
                [ "$i" -gt 0 ] && echo $(((t1 - t0) * 1000)) >>"$tmp/setpriv.ns"
        fi
done
b=$(median_ms <"$tmp/berth.ns"); c=$(median_ms <"$tmp/ctr.ns")
echo "exec /bin/true into a running container, $runs runs each (median):"
echo "  berthctl exec${user:+ (as $user, through setpriv)}:  ${b} ms"
[ -n "$user" ] && echo "  (setpriv ... /bin/true alone: $(median_ms <"$tmp/setpriv.ns") ms)"
echo "  ctr tasks exec: ${c} ms"
echo "  (berth's first exec into the container, without a spare joiner: $(echo "$first" | median_ms) ms)"
awk -v b="$b" -v c="$c" 'BEGIN {printf "  ctr/berth: %.1fx\n", c / b}'
