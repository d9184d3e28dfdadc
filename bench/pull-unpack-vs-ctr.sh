#!/bin/bash
# Pull + unpack: `berthctl images pull` (fetch, then overlay snapshots, pipelined) against containerd's
# `ctr images pull --plain-http` (fetch + unpack into its overlayfs snapshotter), same realistic
# multi-layer image (bench/make-layers.py: many small files and a few big ones), gzip and zstd
# variants, same local registry; plus the unpack throughput of berth alone (blobs already present)
# against a plain `tar -xzf` / `zstd -dc | tar -x` of the same layers into a temp dir.
#
#   bench/pull-unpack-vs-ctr.sh [-n RUNS] [-s SCALE] [-c "gzip zstd"] [-k]
#
# Run as root where tools/dev-up has run. Installs nothing. Starts its own docker-registry and its own
# containerd (config, root, state, socket under a temp dir) and stops both at exit. Caches are cleared
# before every run: berth with `images rm` + `content gc` (blobs and snapshots), containerd by
# restarting it on a fresh root.
set -euo pipefail

runs=3
scale=1.0
compressions="gzip zstd"
keep=0
while getopts "n:s:c:kh" o; do
        case $o in
        n) runs=$OPTARG ;;
        s) scale=$OPTARG ;;
        c) compressions=$OPTARG ;;
        k) keep=1 ;;
        *) sed -n '2,14p' "$0"; exit 2 ;;
        esac
done

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

require "images rm / content gc are admin-only; containerd and tar -x as root" "docker-registry skopeo containerd curl python3 zstd" docker-registry skopeo containerd ctr curl python3 awk sort tar zstd gzip

tmp=$(mktemp -d /var/tmp/berth-bench-unpack.XXXXXX)
reg_pid= ctrd_pid=
refs=()
cleanup() {
        set +e  # a killed child's exit status must not end the cleanup half-way
        stop_containerd
        [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
        for r in "${refs[@]}"; do "$berthctl" images rm "$r" >/dev/null 2>&1 || true; done
        "$berthctl" content gc >/dev/null 2>&1 || true
        if [ "$keep" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }


# 1. The images: the same layers, once per compression.
declare -A meta
for c in $compressions; do
        log "building the $c image (scale $scale)"
        meta[$c]=$(python3 "$top/bench/make-layers.py" "$tmp/img" --compression "$c" --scale "$scale" --tag "$c")
done

# 2. The registry.
port=$(free_port)
mkdir -p "$tmp/registry"
cat >"$tmp/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $tmp/registry}, redirect: {disable: true}}
http: {addr: 127.0.0.1:$port, secret: bench}
EOF
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/v2/" >/dev/null || die "docker-registry did not start ($tmp/registry.log)"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$tmp/policy.json"
for c in $compressions; do
        skopeo --policy "$tmp/policy.json" copy --quiet --preserve-digests --dest-tls-verify=false \
                "oci:$tmp/img/layout:$c" "docker://127.0.0.1:$port/bench-unpack:$c"
done

berth_clear() {
        "$berthctl" images rm "$1" >/dev/null 2>&1 || true
        "$berthctl" content gc >/dev/null
}

results=()
for c in $compressions; do
        ref="127.0.0.1:$port/bench-unpack:$c"
        refs+=("$ref")
        m=${meta[$c]}
        ubytes=$(json "$m" 'd["uncompressed_bytes"]')
        cbytes=$(json "$m" 'd["compressed_bytes"]')
        files=$(json "$m" 'd["files"]')
        mapfile -t layer_files < <(json "$m" '"\n".join(l["file"] for l in d["layers"])')
        log "$c: $(json "$m" 'len(d["layers"])') layers, $cbytes bytes compressed, $ubytes uncompressed, $files files"

        bt=() ct=() ut=() tt=()
        for i in $(seq "$runs"); do
                # berth: pull + unpack from scratch.
                berth_clear "$ref"
                t0=$(now)
                "$berthctl" --quiet images pull "$ref" >/dev/null
                t1=$(now)
                bt+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")
                # berth: unpack alone (blobs present, snapshots removed).
                "$berthctl" images rm "$ref" >/dev/null
                "$berthctl" content gc >/dev/null  # removes the snapshots, and the blobs…
                "$berthctl" --quiet images pull --no-unpack "$ref" >/dev/null  # …so fetch them again
                t0=$(now)
                "$berthctl" --quiet images pull "$ref" >/dev/null
                t1=$(now)
                ut+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")

                # containerd: pull + unpack on a fresh root.
                stop_containerd
                start_containerd
                t0=$(now)
                ctr_ images pull --plain-http "$ref" >/dev/null
                t1=$(now)
                ct+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")

                # plain tar -x of the same layers, one after the other, into an empty dir (page cache
                # warm for both: the blobs were just written).
                rm -rf "$tmp/x"
                mkdir "$tmp/x"
                sync
                t0=$(now)
                for f in "${layer_files[@]}"; do
                        case $f in
                        *.tar.gz) tar -xzf "$f" -C "$tmp/x" ;;
                        *.tar.zst) zstd -q -dc "$f" | tar -x -C "$tmp/x" ;;
                        *) tar -xf "$f" -C "$tmp/x" ;;
                        esac
                done
                sync -f "$tmp/x"
                t1=$(now)
                tt+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")
                log "$c run $i: berth ${bt[-1]}s (unpack only ${ut[-1]}s), ctr ${ct[-1]}s, tar -x ${tt[-1]}s"
        done
        rm -rf "$tmp/x"
        # The variants share diff_ids, hence chain ids: leave nothing for the next one to reuse.
        berth_clear "$ref"
        bm=$(printf '%s\n' "${bt[@]}" | median)
        cm=$(printf '%s\n' "${ct[@]}" | median)
        um=$(printf '%s\n' "${ut[@]}" | median)
        tm=$(printf '%s\n' "${tt[@]}" | median)
        results+=("$(awk -v c="$c" -v b="$bm" -v t="$cm" -v u="$um" -v x="$tm" -v U="$ubytes" -v C="$cbytes" -v F="$files" -v r="$ref" 'BEGIN {
                printf "image: %s (%.1f MB compressed, %.1f MB uncompressed, %d files), %s, medians of '"$runs"' runs\n", r, C/1e6, U/1e6, F, c
                printf "  berthctl images pull (fetch+unpack)     %7.3f s\n", b
                printf "  ctr images pull --plain-http            %7.3f s\n", t
                printf "  ratio berth/ctr (time)                  %7.3f\n", b/t
                printf "  berth unpack only (blobs present)       %7.3f s  %7.1f MB/s uncompressed\n", u, U/u/1e6
                printf "  tar -x of the same layers               %7.3f s  %7.1f MB/s uncompressed\n", x, U/x/1e6
                printf "  ratio berth unpack/tar (time)           %7.3f\n", u/x
        }')")
done
printf '%s\n' "${results[@]}"
