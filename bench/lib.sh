# Shared by the benchmarks that drive the installed berth (sourced): their common start (die, log,
# $berthctl, require), medians and a private containerd.
# The caller defines $tmp (a scratch directory it removes at exit) before it starts containerd, and may set
# $berthctl before sourcing (otherwise BERTHCTL, or PREFIX's berthctl).

bench=$(basename "$0" .sh)
die() { printf '%s: error: %s\n' "$bench" "$*" >&2; exit 1; }
log() { printf '%s: %s\n' "$bench" "$*" >&2; }
prefix=${BERTH_PREFIX:-/usr/local}
berthctl=${berthctl:-${BERTHCTL:-$prefix/bin/berthctl}}

# require WHY_ROOT DEBIAN_PACKAGES TOOL...: root (WHY_ROOT says what needs it), every TOOL on PATH (the
# packages that have them), and berth up.
require() {
        local why=$1 packages=$2 t
        shift 2
        [ "$(id -u)" = 0 ] || die "run as root${why:+ ($why)}"
        for t; do
                command -v "$t" >/dev/null || die "'$t' not found (Debian: $packages)"
        done
        command -v "$berthctl" >/dev/null || die "$berthctl not found: run tools/dev-up first (or set BERTHCTL)"
        "$berthctl" info >/dev/null 2>&1 || die "berth is not up ('$berthctl info' fails): run tools/dev-up"
}

# The median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# The same for nanoseconds, printed as milliseconds with one decimal.
median_ms() { median | awk '{printf "%.1f", $1 / 1e6}'; }

# A containerd of its own (config, root, state and socket under $tmp/ctrd, anything there before is
# removed), so the comparison never touches a system containerd. Sets ctrd_pid and ctrd_sock; `ctr_`
# talks to it.
start_containerd() {
        rm -rf "$tmp/ctrd"
        mkdir -p "$tmp/ctrd/root" "$tmp/ctrd/state"
        ctrd_sock=$tmp/ctrd/c.sock
        cat >"$tmp/ctrd/config.toml" <<EOC
version = 2
root = "$tmp/ctrd/root"
state = "$tmp/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$ctrd_sock"
[ttrpc]
  address = "$ctrd_sock.ttrpc"
[debug]
  level = "error"
EOC
        containerd --config "$tmp/ctrd/config.toml" >>"$tmp/ctrd.log" 2>&1 &
        ctrd_pid=$!
        for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && return 0; sleep 0.1; done
        die "containerd did not start ($tmp/ctrd.log)"
}
stop_containerd() {
        if [ -z "${ctrd_pid:-}" ]; then return 0; fi
        kill "$ctrd_pid" 2>/dev/null || true
        wait "$ctrd_pid" 2>/dev/null || true
        ctrd_pid=
        # Snapshot mounts a killed containerd left behind, deepest first.
        awk -v p="$tmp/ctrd" '$5 ~ "^"p {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l || true
}
ctr_() { command ctr --address "$ctrd_sock" "$@"; }
