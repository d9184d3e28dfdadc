#!/bin/bash
# Pull throughput: `berthctl images pull` against containerd's `ctr content fetch`, same image, same
# local registry (Debian's docker-registry on 127.0.0.1, plain HTTP), with two ceilings: single-core
# SHA-256 (`openssl speed`) and a raw loopback download of the same blobs (`curl`).
#
#   bench/pull-vs-ctr.sh [-n RUNS] [-l LAYERS] [-s MIB_PER_LAYER] [-k]
#
# berth pulls with --no-unpack (fetch only), the same work as `ctr content fetch`.
#
# Run as root on a machine where tools/dev-up has run (berth up, berthctl installed). Installs
# nothing. Starts its own docker-registry and its own containerd (private config, root, state and
# socket under a temp dir), and stops both at exit. Both content stores are emptied before every
# run: berth with `images rm` + `content gc`, containerd by restarting it on a fresh root.
set -euo pipefail

runs=3
layers=4
size_mib=30
keep=0
while getopts "n:l:s:kh" o; do
        case $o in
        n) runs=$OPTARG ;;
        l) layers=$OPTARG ;;
        s) size_mib=$OPTARG ;;
        k) keep=1 ;;
        *) sed -n '2,12p' "$0"; exit 2 ;;
        esac
done

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

require "berth's images rm / content gc are admin-only; containerd needs root" "docker-registry skopeo containerd openssl curl python3" docker-registry skopeo containerd ctr openssl curl python3 awk sort

tmp=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
reg_pid= ctrd_pid=
cleanup() {
        set +e
        stop_containerd
        [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
        if [ -n "${ref:-}" ]; then
                "$berthctl" images rm "$ref" >/dev/null 2>&1 || true
                "$berthctl" content gc >/dev/null 2>&1 || true
        fi
        if [ "$keep" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Names an earlier, interrupted run may have left (the image is deterministic: same blobs).
{ "$berthctl" images ls -q 2>/dev/null | grep -E '^127\.0\.0\.1:[0-9]+/bench:latest$' || true; } |
        while read -r old; do "$berthctl" images rm "$old" >/dev/null || true; done

# 1. The image.
log "building ${layers} x ${size_mib} MiB gzip layers of random data"
meta=$(python3 "$top/bench/make-image.py" "$tmp" --layers "$layers" --size-mib "$size_mib")
total_bytes=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["total_bytes"])' "$meta")
mapfile -t blobs < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["config"]); [print(l["digest"]) for l in d["layers"]]' "$meta")

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
echo '{"auths":{}}' >"$tmp/auth.json"
skopeo --policy "$tmp/policy.json" copy --quiet --preserve-digests --authfile "$tmp/auth.json" \
        --dest-tls-verify=false "oci:$tmp/layout:latest" "docker://127.0.0.1:$port/bench:latest" ||
        die "skopeo could not push the image"
ref="127.0.0.1:$port/bench:latest"

# 3. A private containerd (bench/lib.sh), started on a fresh root for every run.

berth_clear() {
        "$berthctl" images rm "$ref" >/dev/null 2>&1 || true
        "$berthctl" content gc >/dev/null || die "berthctl content gc failed"
        for d in "${blobs[@]}"; do
                [ ! -e "/var/lib/berth/content/blobs/sha256/${d#sha256:}" ] ||
                        die "blob $d still in berth's store after images rm + content gc"
        done
}

# 4. The runs.
declare -a t_berth t_ctr t_curl
for i in $(seq "$runs"); do
        berth_clear
        sync
        t0=$(now)
        "$berthctl" --no-ask-password --quiet images pull --no-unpack "$ref" >"$tmp/berth.out" 2>&1 ||
                { cat "$tmp/berth.out" >&2; die "berthctl images pull failed"; }
        t1=$(now)
        t_berth+=("$(awk "BEGIN{print $t1-$t0}")")

        start_containerd
        sync
        t0=$(now)
        ctr_ -n bench content fetch --plain-http "$ref" >"$tmp/ctr.out" 2>&1 ||
                { cat "$tmp/ctr.out" >&2; die "ctr content fetch failed"; }
        t1=$(now)
        t_ctr+=("$(awk "BEGIN{print $t1-$t0}")")
        stop_containerd

        urls=()
        for d in "${blobs[@]}"; do urls+=(-o /dev/null "http://127.0.0.1:$port/v2/bench/blobs/$d"); done
        t0=$(now)
        curl -fsS --parallel --parallel-max 3 "${urls[@]}" 2>"$tmp/curl.err" || { cat "$tmp/curl.err" >&2; die "curl download failed"; }
        t1=$(now)
        t_curl+=("$(awk "BEGIN{print $t1-$t0}")")
        log "run $i: berth ${t_berth[-1]} s, ctr ${t_ctr[-1]} s, curl ${t_curl[-1]} s"
done

mb=$(awk "BEGIN{print $total_bytes/1e6}")
m_berth=$(printf '%s\n' "${t_berth[@]}" | median)
m_ctr=$(printf '%s\n' "${t_ctr[@]}" | median)
m_curl=$(printf '%s\n' "${t_curl[@]}" | median)
sha=$(openssl speed -seconds 2 -evp sha256 2>/dev/null | awk '$1=="sha256" {v=$NF; sub("k","",v); print v/1000}')

printf '\nimage: %s (%d layers, %.1f MB), %d runs, medians\n' "$ref" "$layers" "$mb" "$runs"
printf '  %-34s %8.3f s  %8.1f MB/s\n' "berthctl images pull" "$m_berth" "$(awk "BEGIN{print $mb/$m_berth}")"
printf '  %-34s %8.3f s  %8.1f MB/s\n' "ctr content fetch --plain-http" "$m_ctr" "$(awk "BEGIN{print $mb/$m_ctr}")"
printf '  %-34s %8.3f\n' "ratio berth/ctr (time)" "$(awk "BEGIN{print $m_berth/$m_ctr}")"
printf 'ceilings:\n'
printf '  %-34s %8.3f s  %8.1f MB/s\n' "curl, loopback, 3 parallel" "$m_curl" "$(awk "BEGIN{print $mb/$m_curl}")"
printf '  %-34s %19.1f MB/s\n' "openssl sha256, one core (16 KiB)" "$sha"
