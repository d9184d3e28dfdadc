"""Issue: `berthctl images pull` (fetch only, like `ctr images pull` without unpack), images/content
management, against real registries (Debian's docker-registry), a token server, and a small hostile
registry (berthtest.fakeregistry) for the faults a real registry will not produce.

Every byte count is measured by CountingProxy (berthtest.proxy), a TCP proxy on 127.0.0.1 between berth
and the registry: it counts the bytes the registry sends and records each HTTP request (and its Range
header). It can also hold blob responses at a gate, so that a pull lasts exactly as long as a test
needs to kill, cancel or join it. Tests wait on events -- the broker's Transfer signals
(berthtest.events), the proxy's gate, a pty's output -- never on sleeps or timings.
"""
import hashlib
import json
import os
import pty
import re
import signal
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.cli import inspect
from berthtest.events import TransferEvents
from berthtest.fakeregistry import FakeRegistry, RoutingProxy, SameHostRealm
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.fixtures import TEST_USER, TEST_PASSWORD, require_tools
from berthtest.images import ImageBuilder, File, Dir, random_file_layer, MEDIA_TYPES
from berthtest.registry import Registry
from berthtest.inotify import wait_file_size
from berthtest.store import (assert_blob_committed, blob_file, have_blob, hexof, ingest_data_file,
                             ingest_data_size, ingest_entries_for, sha256_file)
from berthtest.tokenserver import TokenServer
from berthtest.stack import berthctl, busctl, name_pid

BROKER = "org.berth.Broker1"
BROKER_PATH = "/org/berth/Broker1"
MANAGER = "org.berth.Broker1.Manager"
TRANSFER = "org.berth.Broker1.Transfer"

MiB = 1024 * 1024
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


# ================================================================================================
# helpers: CLI output, the broker's lists
# ================================================================================================

def one_error_line(p, command="images pull"):
    """A failed berthctl: non-zero exit, exactly one stderr line `berthctl: <command>: ...`."""
    assert p.returncode != 0, f"expected failure, got success:\n{p.stdout}\n{p.stderr}"
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{p.stderr}"
    assert lines[0].startswith(f"berthctl: {command}: "), lines[0]
    return lines[0]


def pull(ref, *opts, user=None, timeout=240, env=None):
    return berthctl("images", "pull", *opts, ref, user=user, timeout=timeout, env=env)


def pulled(p, ref=None):
    """Digest from the last stdout line `<reference>: <digest>` of a successful pull."""
    assert p.returncode == 0, f"pull failed ({p.returncode}):\nstdout: {p.stdout}\nstderr: {p.stderr}"
    last = p.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"(\S+): (sha256:[0-9a-f]{64})", last.strip())
    assert m, f"last line is not '<reference>: <digest>': {last!r}"
    if ref is not None:
        assert m.group(1) == ref, f"printed reference {m.group(1)!r}, expected {ref!r}"
    return m.group(2)


def bus_json(*args, user=None):
    p = busctl("--json=short", *args, user=user)
    assert p.returncode == 0, f"busctl {args} failed: {p.stderr}"
    return json.loads(p.stdout)


def bus_images():
    """ListImages as {reference: (digest, media_type, size, platforms)}."""
    data = bus_json("call", BROKER, BROKER_PATH, MANAGER, "ListImages")["data"][0]
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in data}


def bus_content():
    """ListContent as {digest: (size, mtime, [references])}."""
    data = bus_json("call", BROKER, BROKER_PATH, MANAGER, "ListContent")["data"][0]
    return {r[0]: (r[1], r[2], r[3]) for r in data}


def _first(d, *keys):
    for k in keys:
        if isinstance(d, dict) and k in d and d[k] not in (None, ""):
            return d[k]
    return None


def cli_images():
    """`berthctl images ls --json` as {reference: digest} (tolerant about the exact key names)."""
    p = berthctl("images", "ls", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    if isinstance(doc, dict):
        doc = _first(doc, "images", "data") or []
    out = {}
    for item in doc:
        ref = _first(item, "reference", "name", "ref")
        dig = _first(item, "digest", "target_digest", "targetDigest")
        if dig is None and isinstance(item.get("target"), dict):
            dig = item["target"].get("digest")
        out[ref] = dig
    return out


def all_digests_in(obj):
    """Every sha256 digest mentioned anywhere in a JSON document."""
    return set(DIGEST_RE.findall(json.dumps(obj)))


def registry_manifest_digest(reg, repo_tag):
    """The digest of the manifest the registry serves, as an independent client computes it."""
    raw = reg.inspect_raw(repo_tag)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def rm_images(*refs):
    for r in refs:
        berthctl("images", "rm", r)


# ================================================================================================
# helpers: images
# ================================================================================================

def unique_entries(size=8192, name=None):
    """A small layer whose content nobody else uses (so no test sees another test's blobs)."""
    name = name or uuid.uuid4().hex
    return [Dir("data"), File(f"data/{name}", os.urandom(size))]


def build(tmp_path, nlayers=1, media="oci", compression="gzip", size=8192, tag="latest", sub="layout"):
    b = ImageBuilder(tmp_path / sub, media_types=media)
    layers = [b.add_layer(unique_entries(size), compression=compression) for _ in range(nlayers)]
    img = b.add_image(layers, cmd=["/bin/sh"], tag=tag)
    return b, img


def image_blobs(img):
    return [img.manifest, img.config] + list(img.layers)


def login(registry_host, user, password, as_user=None):
    return stack.run([str(stack.BERTHCTL), "--no-ask-password", "login", "-u", user, "--password-stdin",
                      registry_host], user=as_user, input=password + "\n", timeout=120)


# ================================================================================================
# basic pulls
# ================================================================================================

def test_pull_by_tag_plain_loopback_registry(registry, tmp_path):
    b, img = build(tmp_path, nlayers=2)
    registry.push(b.layout_dir, "latest", "test/bytag:v1")
    ref = f"{registry.host}/test/bytag:v1"
    digest = pulled(pull(ref), ref)
    # One digest, three witnesses: what we built, what the registry serves, what berth reports.
    assert digest == img.manifest.digest
    assert digest == registry_manifest_digest(registry, "test/bytag:v1")
    assert cli_images().get(ref) == digest
    assert bus_images()[ref][0] == digest
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


def test_pull_by_digest(registry, tmp_path):
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/bydigest:v1")
    ref = f"{registry.host}/test/bydigest@{img.manifest.digest}"
    digest = pulled(pull(ref))
    assert digest == img.manifest.digest
    assert bus_images()[ref][0] == img.manifest.digest
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


def test_pull_no_unpack_is_fetch_only(registry, tmp_path):
    """--no-unpack (PullImage flag bit 1) fetches like `ctr content fetch`; a later plain pull
    unpacks without fetching again."""
    b, img = build(tmp_path, nlayers=2)
    registry.push(b.layout_dir, "latest", "test/nounpack:v1")
    ref = f"{registry.host}/test/nounpack:v1"
    assert pulled(pull(ref, "--no-unpack")) == img.manifest.digest
    for d in image_blobs(img):
        assert_blob_committed(d)
    plats = inspect(ref)["platforms"]
    assert [p["unpacked"] for p in plats] == [False], plats
    assert pulled(pull(ref)) == img.manifest.digest
    assert [p["unpacked"] for p in inspect(ref)["platforms"]] == [True]
    rm_images(ref)


def test_pull_inspect_shows_what_was_built(registry, tmp_path):
    b, img = build(tmp_path, nlayers=2)
    registry.push(b.layout_dir, "latest", "test/inspect:v1")
    ref = f"{registry.host}/test/inspect:v1"
    pulled(pull(ref))
    doc = inspect(ref)
    seen = all_digests_in(doc)
    assert img.manifest.digest in seen and img.config.digest in seen
    for l in img.layers:
        assert l.digest in seen, f"layer {l.digest} not in inspect output"
        assert l.diff_id in seen, f"diff_id {l.diff_id} not in inspect output"
    assert "/bin/sh" in json.dumps(doc)  # the image config's Cmd
    rm_images(ref)


def test_images_ls_size_and_platform(registry, tmp_path):
    b, img = build(tmp_path, nlayers=2, size=100000)
    registry.push(b.layout_dir, "latest", "test/lssize:v1")
    ref = f"{registry.host}/test/lssize:v1"
    pulled(pull(ref))
    digest, mt, size, platforms = bus_images()[ref]
    assert mt == MEDIA_TYPES["oci"]["manifest"]
    assert size == sum(d.size for d in image_blobs(img))
    if os.uname().machine == "x86_64":
        assert platforms == "linux/amd64"
    rm_images(ref)


# ================================================================================================
# references
# ================================================================================================

def test_short_name_is_normalised_to_docker_io(registry, berth_config, tmp_path):
    """`busybox` means docker.io/library/busybox:latest; docker.io is mirrored to the local
    registry (mirrors-resolve so the tag resolves there too), so no Internet is needed."""
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "library/busybox:latest")
    berth_config.registry(registry.host, plain_http=True)
    berth_config.registry("docker.io", mirrors=[f"http://{registry.host}"], mirrors_resolve=True)
    # The store is shared: records of other names (localhost/busybox, …) may be there already.
    p = pull("busybox")
    digest = pulled(p, "docker.io/library/busybox:latest")
    assert digest == img.manifest.digest
    assert bus_images()["docker.io/library/busybox:latest"][0] == digest
    # The same image under other spellings is the same name.
    for spelling in ("library/busybox", "docker.io/library/busybox:latest", "docker.io/busybox"):
        assert pulled(pull(spelling), "docker.io/library/busybox:latest") == digest
    names = set(bus_images())
    assert [r for r in names if r.startswith("docker.io/") and "busybox" in r] == ["docker.io/library/busybox:latest"]
    assert not {"busybox", "library/busybox", "docker.io/busybox", "busybox:latest"} & names
    rm_images("docker.io/library/busybox:latest")


@pytest.mark.parametrize("bad", [
    "Upper/Case",                       # uppercase repository
    "127.0.0.1:5000/a//b",              # empty path component
    "repo:tag:extra",                   # two tags
    "repo@sha256:1234",                 # short digest
    "repo@md5:" + "0" * 32,             # unsupported algorithm
    "repo:" + "t" * 129,                # tag longer than 128
    "_leading/underscore",              # invalid first character
    "repo:tag with space",
    "",
])
def test_malformed_reference_one_clear_error(bad):
    before = set(bus_images())
    p = pull(bad)
    line = one_error_line(p)
    assert "reference" in line.lower() or "invalid" in line.lower(), line
    assert p.stdout.strip() == ""
    assert set(bus_images()) == before


def test_unknown_repository_404(registry):
    ref = f"{registry.host}/no/such-repo:latest"
    line = one_error_line(pull(ref))
    assert "no/such-repo" in line and ("not found" in line.lower() or "unknown" in line.lower()), line
    assert ref not in bus_images()


def test_unknown_tag_404(registry, tmp_path):
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/tag404:v1")
    line = one_error_line(pull(f"{registry.host}/test/tag404:nope"))
    assert "nope" in line and ("not found" in line.lower() or "unknown" in line.lower()), line


def test_unknown_digest_404(registry, tmp_path):
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/dig404:v1")
    missing = "sha256:" + hashlib.sha256(b"nothing").hexdigest()
    line = one_error_line(pull(f"{registry.host}/test/dig404@{missing}"))
    assert ("not found" in line.lower() or "unknown" in line.lower()), line
    assert not have_blob(missing)


# ================================================================================================
# formats: Docker schema 2, OCI, compressions, multi-arch
# ================================================================================================

@pytest.mark.parametrize("compressions", [("gzip",), ("gzip", "none")], ids=["gzip", "gzip+uncompressed"])
def test_docker_schema2_image(registry, tmp_path, compressions):
    """Docker schema 2: layer types ...rootfs.diff.tar.gzip and (uncompressed) ...rootfs.diff.tar."""
    b = ImageBuilder(tmp_path / "layout", media_types="docker")
    layers = [b.add_layer(unique_entries(), compression=c) for c in compressions]
    img = b.add_image(layers, tag="latest")
    registry.push(b.layout_dir, "latest", "test/docker:v1")
    assert json.loads(registry.inspect_raw("test/docker:v1"))["mediaType"] == MEDIA_TYPES["docker"]["manifest"]
    ref = f"{registry.host}/test/docker:v1"
    assert pulled(pull(ref)) == img.manifest.digest
    assert bus_images()[ref][1] == MEDIA_TYPES["docker"]["manifest"]
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


def test_oci_image_gzip_zstd_uncompressed_layers(registry, tmp_path):
    require_tools("zstd")
    b = ImageBuilder(tmp_path / "layout")
    layers = [b.add_layer(unique_entries(50000), compression=c) for c in ("gzip", "zstd", "none")]
    img = b.add_image(layers, tag="latest")
    registry.push(b.layout_dir, "latest", "test/compress:v1")
    ref = f"{registry.host}/test/compress:v1"
    assert pulled(pull(ref)) == img.manifest.digest
    assert bus_images()[ref][1] == MEDIA_TYPES["oci"]["manifest"]
    for d in image_blobs(img):
        assert_blob_committed(d)
    # Fetch only: the blobs are the compressed bytes as served, no unpacking.
    assert blob_file(layers[1].digest).read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd magic
    assert blob_file(layers[0].digest).read_bytes()[:2] == b"\x1f\x8b"          # gzip magic
    rm_images(ref)


def _multi_arch(tmp_path, media):
    b = ImageBuilder(tmp_path / "layout", media_types=media)
    per = {plat: [b.add_layer(unique_entries())] for plat in ("linux/amd64", "linux/arm64/v8", "linux/s390x")}
    idx = b.multi_arch_index(per, tag="multi")
    return b, idx, {f"{i.platform['os']}/{i.platform['architecture']}": i for i in idx.images}


@pytest.fixture(params=["oci", "docker"])
def multi_arch(request, registry, tmp_path):
    media = request.param
    b, idx, by_plat = _multi_arch(tmp_path, media)
    repo = f"test/multi-{media}-{uuid.uuid4().hex[:8]}"
    registry.push_all(b.layout_dir, "multi", f"{repo}:v1")
    ref = f"{registry.host}/{repo}:v1"
    yield ref, idx, by_plat, media
    rm_images(ref)


def test_multi_arch_default_platform_is_this_machine(multi_arch):
    if os.uname().machine != "x86_64":
        pytest.skip("expects an amd64 machine")
    ref, idx, by_plat, media = multi_arch
    digest = pulled(pull(ref))
    assert digest == idx.descriptor.digest  # the name points at the index
    assert bus_images()[ref][1] == MEDIA_TYPES[media]["index"]
    assert bus_images()[ref][3] == "linux/amd64"
    amd, arm = by_plat["linux/amd64"], by_plat["linux/arm64"]
    for d in image_blobs(amd):
        assert_blob_committed(d)
    for d in [arm.manifest, arm.config] + arm.layers:
        assert not have_blob(d.digest), f"arm64 blob {d.digest} fetched for a linux/amd64 pull"


def test_multi_arch_platform_option(multi_arch):
    ref, idx, by_plat, media = multi_arch
    pulled(pull(ref, "--platform", "linux/arm64"))
    arm, s390 = by_plat["linux/arm64"], by_plat["linux/s390x"]
    for d in image_blobs(arm):
        assert_blob_committed(d)
    for d in image_blobs(s390):
        assert not have_blob(d.digest)
    assert "linux/arm64" in bus_images()[ref][3]
    assert arm.manifest.digest in all_digests_in(inspect(ref))


def test_multi_arch_all_platforms(multi_arch):
    ref, idx, by_plat, media = multi_arch
    pulled(pull(ref, "--all-platforms"))
    for img in by_plat.values():
        for d in image_blobs(img):
            assert_blob_committed(d)
    plats = set(bus_images()[ref][3].split(","))
    assert {"linux/amd64", "linux/arm64/v8", "linux/s390x"} <= plats or \
        {"linux/amd64", "linux/arm64", "linux/s390x"} <= plats, plats


def test_multi_arch_missing_platform_lists_available(multi_arch):
    ref, idx, by_plat, media = multi_arch
    line = one_error_line(pull(ref, "--platform", "linux/riscv64"))
    assert "linux/riscv64" in line, line
    for avail in ("linux/amd64", "linux/arm64", "linux/s390x"):
        assert avail in line, f"{avail} not listed as available: {line}"
    assert ref not in bus_images()
    for img in by_plat.values():
        for d in img.layers:
            assert not have_blob(d.digest)


def test_platform_and_all_platforms_are_exclusive(registry):
    p = pull(f"{registry.host}/x/y:z", "--platform", "linux/amd64", "--all-platforms")
    line = one_error_line(p)
    assert "--platform" in line and "--all-platforms" in line, line


def test_unknown_manifest_media_type_clear_error(fake_registry):
    fr = fake_registry()
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example.thing+json"}).encode()
    fr.add_manifest("odd/type", "v1", body, "application/vnd.example.thing+json")
    line = one_error_line(pull(f"{fr.host}/odd/type:v1"))
    assert "application/vnd.example.thing+json" in line or "media type" in line.lower(), line
    assert f"{fr.host}/odd/type:v1" not in bus_images()


# ================================================================================================
# TLS
# ================================================================================================

def test_tls_registry_with_ca_in_certs_d(tls_registry, berth_config, tmp_path):
    b, img = build(tmp_path)
    tls_registry.push(b.layout_dir, "latest", "test/tls:v1")
    berth_config.install_certs(tls_registry)
    ref = f"{tls_registry.host}/test/tls:v1"
    assert pulled(pull(ref)) == img.manifest.digest
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


def test_tls_registry_without_ca_fails_cleanly(tls_registry, berth_config, tmp_path):
    b, img = build(tmp_path)
    tls_registry.push(b.layout_dir, "latest", "test/tlsnoca:v1")
    line = one_error_line(pull(f"{tls_registry.host}/test/tlsnoca:v1"))
    assert re.search(r"tls|ssl|certificate", line, re.I), line
    for d in image_blobs(img):
        assert not have_blob(d.digest)


def test_tls_skip_verify(tls_registry, berth_config, tmp_path):
    b, img = build(tmp_path)
    tls_registry.push(b.layout_dir, "latest", "test/tlsskip:v1")
    berth_config.registry(tls_registry.host, skip_verify=True)
    ref = f"{tls_registry.host}/test/tlsskip:v1"
    assert pulled(pull(ref)) == img.manifest.digest
    rm_images(ref)


def test_client_cert_registry(berth_config, tmp_path):
    require_tools("docker-registry", "skopeo")
    with Registry(tls=True, client_auth=True) as reg:
        b, img = build(tmp_path)
        reg.push(b.layout_dir, "latest", "test/mtls:v1")
        ref = f"{reg.host}/test/mtls:v1"
        # CA only: the registry refuses the handshake.
        berth_config.install_certs(reg, ca=True, client=False)
        line = one_error_line(pull(ref))
        assert re.search(r"tls|ssl|certificate|handshake", line, re.I), line
        assert not have_blob(img.config.digest)
        # With the client certificate.
        berth_config.install_certs(reg, ca=True, client=True)
        assert pulled(pull(ref)) == img.manifest.digest
        for d in image_blobs(img):
            assert_blob_committed(d)
        rm_images(ref)


# ================================================================================================
# authentication
# ================================================================================================

def test_basic_auth_login_pull_logout(basic_auth_registry, berth_config, logins, tmp_path):
    reg = basic_auth_registry
    # Credentials go over plain http only to a registry the admin configured so (issue 12, f10).
    berth_config.registry(reg.host, plain_http=True)
    b, img = build(tmp_path)
    reg.push(b.layout_dir, "latest", "test/basic:v1")
    ref = f"{reg.host}/test/basic:v1"

    line = one_error_line(pull(ref))
    assert re.search(r"auth|unauthori[sz]ed|denied|credentials", line, re.I), line
    assert not have_blob(img.config.digest)

    p = login(reg.host, TEST_USER, "wrong-password")
    assert p.returncode != 0, "login with a wrong password succeeded"
    one_error_line(p, "login")

    logins.append(reg.host)
    p = login(reg.host, TEST_USER, TEST_PASSWORD)
    assert p.returncode == 0, p.stderr
    # The secret must not be world-readable anywhere berth keeps it.
    cfg = Path("/var/lib/berth/fetcher/config.json")
    assert cfg.exists()
    assert cfg.stat().st_mode & 0o077 == 0
    assert TEST_PASSWORD not in p.stdout + p.stderr

    assert pulled(pull(ref)) == img.manifest.digest
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)

    assert berthctl("logout", reg.host).returncode == 0
    line = one_error_line(pull(ref))
    assert re.search(r"auth|unauthori[sz]ed|denied|credentials", line, re.I), line


def test_login_requires_admin(basic_auth_registry, member):
    p = login(basic_auth_registry.host, TEST_USER, TEST_PASSWORD, as_user=member)
    line = one_error_line(p, "login")
    assert "permission denied" in line and "org.berth.registry-login" in line, line


def test_token_auth_anonymous_pull(tmp_path):
    require_tools("docker-registry", "skopeo")
    with TokenServer(users={TEST_USER: TEST_PASSWORD}, anonymous_pull=True) as ts, \
            Registry(token_auth=ts) as reg:
        b, img = build(tmp_path)
        reg.push(b.layout_dir, "latest", "test/anon:v1")
        ts.reset_stats()
        ref = f"{reg.host}/test/anon:v1"
        assert pulled(pull(ref)) == img.manifest.digest
        st = ts.stats()
        assert st["tokens_issued"] >= 1
        assert all(r["user"] is None for r in st["requests"]), st["requests"]
        assert any("repository:test/anon:pull" in s for r in st["requests"] for s in r["scopes"]), st["requests"]
        for d in image_blobs(img):
            assert_blob_committed(d)
        rm_images(ref)


def test_token_auth_with_credentials(berth_config, logins, tmp_path):
    """Realm on the registry's own host:port (via RoutingProxy): stored credentials are used."""
    require_tools("docker-registry", "skopeo")
    with TokenServer(users={TEST_USER: TEST_PASSWORD}) as ts:
        router = RoutingProxy(ts.port)
        try:
            with Registry(token_auth=SameHostRealm(ts, router)) as reg:
                router.registry_port = reg.port
                # A plain-http realm on the registry's own host gets credentials only when the admin
                # configured that registry plain-http (issue 12, f10).
                berth_config.registry(router.host, plain_http=True)
                b, img = build(tmp_path)
                reg.push(b.layout_dir, "latest", "test/tok:v1")
                ref = f"{router.host}/test/tok:v1"
                line = one_error_line(pull(ref))
                assert re.search(r"auth|unauthori[sz]ed|denied|credentials|login", line, re.I), line
                assert not have_blob(img.config.digest)

                logins.append(router.host)
                ts.reset_stats()
                p = login(router.host, TEST_USER, "wrong-password")
                one_error_line(p, "login")
                assert ts.stats()["auth_failures"] >= 1, "login did not check the password with the token server"

                ts.reset_stats()
                p = login(router.host, TEST_USER, TEST_PASSWORD)
                assert p.returncode == 0, p.stderr
                assert any(r["user"] == TEST_USER and r["status"] == 200 for r in ts.stats()["requests"])

                ts.reset_stats()
                assert pulled(pull(ref)) == img.manifest.digest
                st = ts.stats()
                assert any(r["user"] == TEST_USER and r["status"] == 200 and
                           "repository:test/tok:pull" in r["scopes"] for r in st["requests"]), st["requests"]
                for d in image_blobs(img):
                    assert_blob_committed(d)
                rm_images(ref)
        finally:
            router.close()


def test_token_login_refused_when_credentials_cannot_be_checked(logins):
    """Realm on another host over plain http: berth must not send the password there
    (CVE-2020-15157), so it cannot verify it either; Login must then fail, not store unverified
    credentials and report success."""
    require_tools("docker-registry")
    with TokenServer(users={TEST_USER: TEST_PASSWORD}) as ts, Registry(token_auth=ts) as reg:
        logins.append(reg.host)
        ts.reset_stats()
        p = login(reg.host, TEST_USER, "wrong-password")
        assert all(r["user"] is None for r in ts.stats()["requests"]), "password sent to a plain-http foreign realm"
        assert p.returncode != 0, "login 'succeeded' without the password being checked by anyone"


def test_401_without_usable_challenge(fake_registry, tmp_path):
    b, img = build(tmp_path)
    fr = fake_registry(b.layout_dir)

    def no_challenge(h, method, path):
        FakeRegistry.reply(h, method, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                           {"Content-Type": "application/json"})
        return True
    fr.fault = no_challenge
    line = one_error_line(pull(f"{fr.host}/test/nochal@{img.manifest.digest}"))
    assert re.search(r"auth|challenge|unauthori[sz]ed", line, re.I), line
    assert not have_blob(img.manifest.digest)


def test_registry_error_text_cannot_drive_the_terminal(fake_registry, tmp_path):
    """A registry's error message is quoted to the user; escape sequences in it must not reach the
    terminal (retitling it, moving the cursor, faking other output)."""
    b, img = build(tmp_path)
    fr = fake_registry(b.layout_dir)
    evil = "gone\x1b]0;pwned\x07\x1b[2J\rfake line"

    def hostile(h, method, path):
        body = json.dumps({"errors": [{"code": "DENIED", "message": evil}]}).encode()
        FakeRegistry.reply(h, method, 403, body, {"Content-Type": "application/json"})
        return True
    fr.fault = hostile
    p = pull(f"{fr.host}/test/evil@{img.manifest.digest}")
    assert p.returncode != 0
    assert "gone" in p.stderr, p.stderr  # the message is still shown…
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", p.stderr), repr(p.stderr)  # …but no control bytes


# ================================================================================================
# mirrors
# ================================================================================================

def test_mirror_used_when_up(registry, berth_config, proxies, tmp_path):
    require_tools("docker-registry")
    b, img = build(tmp_path, nlayers=2)
    registry.push(b.layout_dir, "latest", "test/mirrored:v1")
    with Registry() as mirror:
        mirror.push(b.layout_dir, "latest", "test/mirrored:v1")
        up, mp = proxies(registry.port), proxies(mirror.port)
        berth_config.registry(up.host, plain_http=True, mirrors=[f"http://{mp.host}"])
        berth_config.registry(mp.host, plain_http=True)
        ref = f"{up.host}/test/mirrored:v1"
        assert pulled(pull(ref)) == img.manifest.digest
        for l in img.layers:
            assert len(mp.blob_gets(l.digest)) == 1, mp.requests
            assert up.blob_gets(l.digest) == [], up.requests
        for d in image_blobs(img):
            assert_blob_committed(d)
        rm_images(ref)


def test_mirror_down_falls_back_to_upstream(registry, berth_config, proxies, tmp_path):
    b, img = build(tmp_path, nlayers=2)
    registry.push(b.layout_dir, "latest", "test/mirrordown:v1")
    up = proxies(registry.port)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    dead_host = "127.0.0.1:%d" % dead.getsockname()[1]
    try:
        berth_config.registry(up.host, plain_http=True, mirrors=[f"http://{dead_host}"])
        ref = f"{up.host}/test/mirrordown:v1"
        assert pulled(pull(ref)) == img.manifest.digest
        for l in img.layers:
            assert len(up.blob_gets(l.digest)) == 1, up.requests
        for d in image_blobs(img):
            assert_blob_committed(d)
        rm_images(ref)
    finally:
        dead.close()


def test_mirror_without_the_blob_falls_back(registry, berth_config, proxies, tmp_path):
    require_tools("docker-registry")
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/mirrorempty:v1")
    with Registry() as mirror:  # up, but empty: 404 for everything
        up, mp = proxies(registry.port), proxies(mirror.port)
        berth_config.registry(up.host, plain_http=True, mirrors=[f"http://{mp.host}"])
        berth_config.registry(mp.host, plain_http=True)
        ref = f"{up.host}/test/mirrorempty:v1"
        assert pulled(pull(ref)) == img.manifest.digest
        assert len(mp.blob_gets(img.layers[0].digest)) >= 1, "the mirror was not tried first"
        assert len(up.blob_gets(img.layers[0].digest)) == 1
        rm_images(ref)


# ================================================================================================
# hostile or broken registries: verification, limits
# ================================================================================================

def test_corrupted_blob_fails_and_leaves_nothing(registry, tmp_path):
    b, img = build(tmp_path, size=200000)
    registry.push(b.layout_dir, "latest", "test/corrupt:v1")
    layer = img.layers[0]
    registry.corrupt_blob(layer.digest)
    ref = f"{registry.host}/test/corrupt:v1"
    line = one_error_line(pull(ref))
    assert re.search(r"digest|verif", line, re.I), line
    assert layer.digest in line or hexof(layer.digest)[:12] in line, line
    assert not have_blob(layer.digest)
    bad = sha256_file(registry.blob_path(layer.digest))
    assert not have_blob(bad)
    assert ingest_entries_for(layer.digest) == [], "a verified-bad download was kept for resume"
    assert ref not in bus_images()


def test_manifest_not_matching_its_digest(registry, tmp_path):
    """The registry's stored manifest is altered (valid JSON, one hex digit of a layer digest
    changed): by tag the Docker-Content-Digest disagrees with the bytes, by digest the bytes do not
    hash to the digest asked for. Both refused; no manifest stored under either digest."""
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/badman:v1")
    path = Path(registry.blob_path(img.manifest.digest))
    data = path.read_bytes()
    h = hexof(img.layers[0].digest)
    swapped = h[:10] + ("0" if h[10] != "0" else "1") + h[11:]
    path.write_bytes(data.replace(h.encode(), swapped.encode()))
    bad = sha256_file(path)
    for ref in (f"{registry.host}/test/badman@{img.manifest.digest}", f"{registry.host}/test/badman:v1"):
        line = one_error_line(pull(ref))
        assert re.search(r"digest|match|verif", line, re.I), line
        assert not have_blob(img.manifest.digest)
        assert not have_blob(bad)


def test_truncated_blob_body(fake_registry, berth_config, tmp_path):
    b, img = build(tmp_path, size=300000)
    fr = fake_registry(b.layout_dir)
    layer = img.layers[0]
    berth_config.registry(fr.host, plain_http=True)
    berth_config.fetcher_settings(retries=1)

    def truncate(h, method, path):
        if method == "GET" and path.endswith("/blobs/" + layer.digest):
            data = fr.blob_bytes(layer.digest)
            FakeRegistry.reply_cut(h, data, len(data) // 2, {"Content-Type": "application/octet-stream"})
            return True
        return False
    fr.fault = truncate
    ref = f"{fr.host}/test/trunc@{img.manifest.digest}"
    line = one_error_line(pull(ref))
    assert hexof(layer.digest)[:12] in line or "bytes" in line, line
    assert not have_blob(layer.digest)
    assert len(fr.blob_gets(layer.digest)) == 2, "retries=1 means two attempts"
    assert ref not in bus_images()


def test_retry_after_503_and_resume_after_short_body(fake_registry, berth_config, tmp_path):
    b, img = build(tmp_path, size=400000)
    fr = fake_registry(b.layout_dir)
    layer = img.layers[0]
    berth_config.registry(fr.host, plain_http=True)
    berth_config.fetcher_settings(retries=3)
    calls = {"n": 0}

    def flaky(h, method, path):
        if method != "GET" or not path.endswith("/blobs/" + layer.digest):
            return False
        calls["n"] += 1
        if calls["n"] == 1:
            FakeRegistry.reply(h, method, 503, b"busy", {"Retry-After": "1"})
            return True
        if calls["n"] == 2:
            FakeRegistry.reply_cut(h, fr.blob_bytes(layer.digest), 100000)
            return True
        return False
    fr.fault = flaky
    ref = f"{fr.host}/test/flaky@{img.manifest.digest}"
    assert pulled(pull(ref)) == img.manifest.digest
    assert_blob_committed(layer)
    gets = fr.blob_gets(layer.digest)
    assert len(gets) == 3, gets
    assert gets[2]["range"] == "bytes=100000-", f"third attempt should resume: {gets}"
    rm_images(ref)


def test_resume_falls_back_when_the_server_ignores_range(fake_registry, berth_config, tmp_path):
    """A registry that answers a Range request with 200 and the whole blob: the fetcher must start
    the blob over (not append the full body to the partial one) and still verify it."""
    b, img = build(tmp_path, size=400000)
    fr = fake_registry(b.layout_dir)
    layer = img.layers[0]
    berth_config.registry(fr.host, plain_http=True)
    berth_config.fetcher_settings(retries=3)
    calls = {"n": 0}

    def no_ranges(h, method, path):
        if method != "GET" or not path.endswith("/blobs/" + layer.digest):
            return False
        calls["n"] += 1
        data = fr.blob_bytes(layer.digest)
        # Always 200, never 206, whatever the Range header says.
        if calls["n"] == 1:
            FakeRegistry.reply_cut(h, data, 100000)
        else:
            FakeRegistry.reply(h, method, 200, data)
        return True
    fr.fault = no_ranges
    ref = f"{fr.host}/test/norange@{img.manifest.digest}"
    assert pulled(pull(ref)) == img.manifest.digest
    assert_blob_committed(layer)
    gets = fr.blob_gets(layer.digest)
    assert len(gets) == 2, gets
    assert gets[1]["range"] == "bytes=100000-", f"the retry should have asked to resume: {gets}"
    rm_images(ref)


def test_stalled_transfer_ends_with_a_stall_error(fake_registry, berth_config, tmp_path):
    """A registry that sends part of a blob and then nothing: the stall timeout (no bytes for N
    seconds, not a total timeout) ends the pull with a message naming it; the partial data stays
    for a later resume."""
    b, img = build(tmp_path, size=400000)
    fr = fake_registry(b.layout_dir)
    layer = img.layers[0]
    berth_config.registry(fr.host, plain_http=True)
    berth_config.fetcher_settings(retries=0, stall_timeout_sec=5)
    release = threading.Event()

    def stall(h, method, path):
        if method != "GET" or not path.endswith("/blobs/" + layer.digest):
            return False
        data = fr.blob_bytes(layer.digest)
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[:50000])
        h.wfile.flush()
        release.wait(120)  # hold the connection open, silent
        h.close_connection = True
        return True
    fr.fault = stall
    ref = f"{fr.host}/test/stall@{img.manifest.digest}"
    try:
        p = pull(ref)
    finally:
        release.set()
    assert p.returncode != 0
    line = p.stderr.strip().splitlines()[-1]
    assert re.search(r"stalled \(below \d+ bytes/s for 5 s\)", line), p.stderr
    assert not have_blob(layer.digest)
    assert ingest_data_size(layer.digest) == 50000, "the bytes received before the stall were not kept"


def test_huge_manifest_refused(fake_registry, tmp_path):
    b, img = build(tmp_path)
    fr = fake_registry(b.layout_dir)
    m = dict(img.manifest_json)
    m["annotations"] = {"pad": "x" * (5 * MiB)}
    data = json.dumps(m).encode()
    assert len(data) > 4 * MiB
    fr.add_manifest("test/huge", "v1", data, MEDIA_TYPES["oci"]["manifest"])
    line = one_error_line(pull(f"{fr.host}/test/huge:v1"))
    assert re.search(r"limit|large|size|exceed|more than|more bytes|allowed", line, re.I), line
    assert not have_blob("sha256:" + hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("body", [
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {',
    b'[1, 2, 3]',
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", '
    b'"config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:../../etc/passwd", '
    b'"size": 2}, "layers": []}',
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "x":' + b'[' * 5000
    + b']' * 5000 + b'}',
], ids=["truncated-json", "not-an-object", "path-in-digest", "deep-nesting"])
def test_malformed_manifest(fake_registry, body):
    fr = fake_registry()
    fr.add_manifest("test/malformed", "v1", body, MEDIA_TYPES["oci"]["manifest"])
    ref = f"{fr.host}/test/malformed:v1"
    line = one_error_line(pull(ref))
    assert re.search(r"manifest|json|invalid|malformed|parse|digest", line, re.I), line
    assert ref not in bus_images()
    assert not Path("/etc/passwd").is_symlink()
    # Whatever bytes were stored, nothing references them: gc reclaims them.
    d = "sha256:" + hashlib.sha256(body).hexdigest()
    assert bus_content().get(d, (0, 0, []))[2] == []


def test_blob_longer_than_descriptor(fake_registry, tmp_path):
    b, img = build(tmp_path, size=50000)
    fr = fake_registry(b.layout_dir)
    layer = img.layers[0]

    def longer(h, method, path):
        if method == "GET" and path.endswith("/blobs/" + layer.digest):
            data = fr.blob_bytes(layer.digest) + os.urandom(100000)
            FakeRegistry.reply(h, method, 200, data, {"Content-Type": "application/octet-stream"})
            return True
        return False
    fr.fault = longer
    line = one_error_line(pull(f"{fr.host}/test/longer@{img.manifest.digest}"))
    assert re.search(r"bytes|size|digest|verif|more than", line, re.I), line
    assert not have_blob(layer.digest)


# ================================================================================================
# transfers: resume, dedupe, sharing, cancel, progress
# ================================================================================================

def big_image(tmp_path, size, nsmall=0, seed=None):
    """An image with one large uncompressed random layer (fast to build) plus nsmall small ones."""
    b = ImageBuilder(tmp_path / "big")
    big = b.add_layer(random_file_layer(size, seed=seed if seed is not None else int.from_bytes(os.urandom(4), "big")),
                      compression="none")
    small = [b.add_layer(unique_entries()) for _ in range(nsmall)]
    img = b.add_image([big] + small, tag="latest")
    return b, img, big


def test_killed_fetcher_download_resumes_with_range(registry, berth_config, proxies, tmp_path):
    size = 200 * MiB
    b, img, big = big_image(tmp_path, size)
    registry.push(b.layout_dir, "latest", "test/resume:v1", timeout=600)
    # The big blob stops at 48 MiB until the fetcher is dead: a partial download of a known size.
    px = proxies(registry.port, hold_blobs_after=48 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/resume:v1"

    proc = subprocess.Popen([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", ref],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        px.wait_held()
        # 48 MiB are on their way to the fetcher: wait until 40 MiB are in its ingest file.
        data = ingest_data_file(big.digest)
        assert data, "no ingest file while the blob downloads"
        wait_file_size(data, 40 * MiB)
        fetcher = name_pid("org.berth.Fetcher1")
        assert fetcher
        os.kill(fetcher, signal.SIGKILL)
        px.release()
        out, err = proc.communicate(timeout=300)
    finally:
        px.release()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    partial = ingest_data_size(big.digest)
    first_bytes = px.bytes_down
    if proc.returncode == 0:
        # The broker restarted the fetcher and resumed within the same pull: also fine, as long
        # as it resumed (Range) rather than starting over.
        assert pulled(subprocess.CompletedProcess(proc.args, 0, out, err)) == img.manifest.digest
        second = 0
    else:
        assert err.strip(), "no error message after the fetcher died"
        assert partial >= 40 * MiB, "the partial download was not kept for resume"
        assert not have_blob(big.digest)
        px.reset()
        assert pulled(pull(ref)) == img.manifest.digest
        second = px.bytes_down
        assert second <= size - partial + 2 * MiB, f"second pull moved {second} bytes; {partial} were already here"
    assert_blob_committed(big)
    assert first_bytes + second < size + size // 4, (first_bytes, second)
    ranged = [g for g in px.blob_gets(big.digest) if g["range"]]
    assert ranged and re.fullmatch(r"bytes=(\d+)-", ranged[0]["range"]), px.blob_gets(big.digest)
    assert int(re.match(r"bytes=(\d+)-", ranged[0]["range"]).group(1)) >= 40 * MiB
    assert ingest_entries_for(big.digest) == []
    rm_images(ref)


def test_present_blobs_not_fetched_again(registry, proxies, berth_config, tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    shared = b.add_layer(unique_entries(100000))
    own_a = b.add_layer(unique_entries(100000))
    own_b = b.add_layer(unique_entries(100000))
    b.add_image([shared, own_a], tag="a")
    b.add_image([shared, own_b], tag="b")
    registry.push(b.layout_dir, "a", "test/share:a")
    registry.push(b.layout_dir, "b", "test/share:b")
    px = proxies(registry.port)
    berth_config.registry(px.host, plain_http=True)

    pulled(pull(f"{px.host}/test/share:a"))
    assert len(px.blob_gets(shared.digest)) == 1 and len(px.blob_gets(own_a.digest)) == 1

    px.reset()
    pulled(pull(f"{px.host}/test/share:b"))
    assert px.blob_gets(shared.digest) == [], "a layer already in the store was downloaded again"
    assert len(px.blob_gets(own_b.digest)) == 1
    assert_blob_committed(own_b)

    px.reset()
    pulled(pull(f"{px.host}/test/share:a"))
    assert px.blob_gets() == [], f"re-pull fetched blobs: {px.blob_gets()}"
    layer_bytes = shared.size + own_a.size
    assert px.bytes_down < layer_bytes, "re-pull moved as many bytes as the layers"
    rm_images(f"{px.host}/test/share:a", f"{px.host}/test/share:b")


@pytest.mark.parametrize("max_concurrent", [None, 1])
def test_several_blobs_at_once(registry, proxies, berth_config, tmp_path, max_concurrent):
    """Default: up to 3 layer downloads run at once. max-concurrent-downloads=1: one at a time.

    Every layer response is held at the proxy's gate; each time the fetcher has as many in flight as
    it may, the oldest is let through, and the next round waits until the fetcher has filled its
    slots again. The gate remembers the most responses it ever held at once."""
    expected = max_concurrent or 3
    b = ImageBuilder(tmp_path / "layout")
    layers = [b.add_layer(random_file_layer(1 * MiB, seed=int.from_bytes(os.urandom(4), "big")),
                          compression="none") for _ in range(4)]
    img = b.add_image(layers, tag="latest")
    registry.push(b.layout_dir, "latest", "test/parallel:v1")
    px = proxies(registry.port)
    px.hold_blobs(after=0, digests=[l.digest for l in layers])
    berth_config.registry(px.host, plain_http=True)
    if max_concurrent:
        berth_config.fetcher_settings(max_concurrent_downloads=max_concurrent)
    ref = f"{px.host}/test/parallel:v1"
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("p", pull(ref)), daemon=True)
    t.start()
    try:
        for left in range(len(layers), 0, -1):
            px.wait_held(min(expected, left))
            px.wait_ended(px.release_one())
    finally:
        px.release()
    t.join(300)
    assert not t.is_alive(), "the pull did not end"
    assert pulled(result["p"]) == img.manifest.digest
    assert px.max_held == expected, (px.max_held, px.blob_gets())
    assert px.max_concurrent_blob_gets() == expected, px.blob_gets()
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


def test_pull_fails_when_broker_dies(registry, proxies, berth_config, tmp_path):
    """The broker going away mid-pull (crash, restart) ends `images pull` with an error; it must not
    wait for a Finished signal that will never come."""
    b, img, big = big_image(tmp_path, 32 * MiB)
    registry.push(b.layout_dir, "latest", "test/brokerdies:v1")
    px = proxies(registry.port, hold_blobs_after=2 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/brokerdies:v1"
    proc = subprocess.Popen([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", ref],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        px.wait_held()  # the download is under way, and stays so
        os.kill(name_pid(BROKER), signal.SIGKILL)
        out, err = proc.communicate(timeout=120)  # a hang guard: it must end on its own
    finally:
        px.release()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stack.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                     "StartServiceByName", "su", BROKER, "0")
    line = one_error_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    # The CLI saw the broker leave the bus mid-transfer (not a broker that was never there).
    assert "the berth broker exited during the pull" in line, line


def pull_image_bus(ref, platform="", flags=0, user=None):
    p = busctl("call", BROKER, BROKER_PATH, MANAGER, "PullImage", "sst", ref, platform, str(flags), user=user)
    assert p.returncode == 0, f"PullImage as {user or 'root'}: {p.stderr}"
    m = re.fullmatch(r'o "(/org/berth/Broker1/transfer/\S+)"', p.stdout.strip())
    assert m, p.stdout
    return m.group(1)


def bus_error_name(path, iface, method, sig, args):
    """Call a broker method as root through GDBus; return the D-Bus error name (None on success)."""
    from gi.repository import Gio, GLib
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    try:
        bus.call_sync(BROKER, path, iface, method, GLib.Variant(sig, args), None,
                      Gio.DBusCallFlags.NONE, 30000, None)
    except GLib.Error as e:
        return Gio.DBusError.get_remote_error(e)
    return None


def transfer_prop(path, prop):
    j = bus_json("get-property", BROKER, path, TRANSFER, prop)
    return j["data"]


def test_two_callers_share_one_transfer(registry, proxies, berth_config, member, tmp_path):
    b, img, big = big_image(tmp_path, 48 * MiB, nsmall=2)
    registry.push(b.layout_dir, "latest", "test/shared:v1")
    # Held until both callers are in: the first transfer cannot end before the second asks.
    px = proxies(registry.port, hold_blobs_after=1 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/shared:v1"

    try:
        t_root = pull_image_bus(ref)
        t_member = pull_image_bus(ref, user=member)
        assert t_root == t_member, "two pulls of the same image got two transfers"
        # And through the CLI: both callers wait on it and both see the same result.
        procs = [subprocess.Popen(["runuser", "-u", u, "--", str(stack.BERTHCTL), "--no-ask-password",
                                   "images", "pull", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) if u else
                 subprocess.Popen([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", ref],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for u in (None, member)]
        px.wait_held()
    finally:
        px.release()
    outs = [p.communicate(timeout=300) for p in procs]
    digests = set()
    for p, (out, err) in zip(procs, outs):
        digests.add(pulled(subprocess.CompletedProcess(p.args, p.returncode, out, err)))
    assert digests == {img.manifest.digest}
    for l in img.layers:
        assert len(px.blob_gets(l.digest)) == 1, f"{l.digest} fetched {len(px.blob_gets(l.digest))} times"
    assert px.bytes_down < sum(d.size for d in image_blobs(img)) + 2 * MiB
    assert transfer_prop(t_root, "Result") == "done"
    rm_images(ref)


def test_cancel_transfer(registry, proxies, berth_config, tmp_path):
    b, img, big = big_image(tmp_path, 64 * MiB)
    registry.push(b.layout_dir, "latest", "test/cancel:v1")
    px = proxies(registry.port, hold_blobs_after=4 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/cancel:v1"

    with TransferEvents() as ev:
        try:
            path = ev.pull_image(ref)
            px.wait_held()
            assert transfer_prop(path, "State") == "downloading"
            p = busctl("call", BROKER, path, TRANSFER, "Cancel")
            assert p.returncode == 0, p.stderr
            assert ev.wait_finished(path)[0] == "cancelled"
            # The download really stopped: the fetcher hung up the held connection.
            conn = px.blob_gets(big.digest)[-1]["conn"]
            px.wait_client_closed(conn)
        finally:
            px.release()
    assert transfer_prop(path, "Result") == "cancelled"
    assert transfer_prop(path, "State") == "cancelled"
    assert ref not in bus_images()
    assert not have_blob(big.digest)
    assert px.bytes_down < 5 * MiB, "bytes flowed after Cancel"


def test_transfer_properties_and_signals(registry, proxies, berth_config, tmp_path):
    b, img, big = big_image(tmp_path, 16 * MiB, nsmall=1)
    registry.push(b.layout_dir, "latest", "test/signals:v1")
    # Held half-way, so that Progress is seen both before and after the gate opens.
    px = proxies(registry.port, hold_blobs_after=8 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/signals:v1"
    with TransferEvents() as ev:
        try:
            path = ev.pull_image(ref)
            px.wait_held()
            ev.wait(lambda: ev.progress(path), "a first Progress")
        finally:
            px.release()
        finished = ev.wait_finished(path)
        progress = ev.progress(path)
    assert finished == ("done", ""), finished
    assert len(progress) >= 2, f"only {len(progress)} Progress signals"
    dones = [p[0] for p in progress]
    assert dones == sorted(dones), "Progress went backwards"
    layer_bytes = sum(l.size for l in img.layers)
    total = transfer_prop(path, "BytesTotal")
    assert layer_bytes <= total <= sum(d.size for d in image_blobs(img)), (total, layer_bytes)
    assert transfer_prop(path, "BytesDone") == total
    assert transfer_prop(path, "ImageDigest") == img.manifest.digest
    assert transfer_prop(path, "Reference") == ref
    assert transfer_prop(path, "State") == "done"
    assert transfer_prop(path, "Error") == ""
    layers = {l[0]: l for l in transfer_prop(path, "Layers")}
    for l in img.layers:
        assert l.digest in layers, layers
        digest, mt, state, done, tot = layers[l.digest]
        assert (mt, done, tot) == (l.media_type, l.size, l.size), layers[l.digest]
        assert state in ("done", "unpacked"), layers[l.digest]
    assert [p for p in progress if p[2]], "Progress carries no per-layer rows"
    rm_images(ref)


def test_cancel_refused_for_another_user(registry, proxies, berth_config, member, tmp_path):
    b, img, big = big_image(tmp_path, 32 * MiB)
    registry.push(b.layout_dir, "latest", "test/cancelother:v1")
    px = proxies(registry.port, hold_blobs_after=1 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/cancelother:v1"
    with TransferEvents() as ev:
        try:
            path = ev.pull_image(ref)
            px.wait_held()
            p = busctl("call", BROKER, path, TRANSFER, "Cancel", user=member)
            assert p.returncode != 0, "a member cancelled root's transfer"
            # Refused as a matter of ownership, not because the transfer was gone.
            assert "belongs to another user" in p.stderr, p.stderr
            assert transfer_prop(path, "State") == "downloading"
            assert busctl("call", BROKER, path, TRANSFER, "Cancel").returncode == 0
            assert ev.wait_finished(path)[0] == "cancelled"
        finally:
            px.release()


class PtyRun:
    """A command on a pseudo-terminal; its output is collected by a reader thread as it arrives, and
    the test can wait until the output says something (fd readiness, no polling)."""

    def __init__(self, cmd):
        master, slave = pty.openpty()
        env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.master = master
        self.cond = threading.Condition()
        self.chunks = []
        self.eof = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 65536)  # blocks until output, EIO once the child is gone
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.chunks.append(data)
                self.cond.notify_all()

    @property
    def output(self):
        with self.cond:
            return b"".join(self.chunks).decode("utf-8", "replace")

    def wait_output(self, predicate, what, timeout=120):
        with self.cond:
            ok = self.cond.wait_for(lambda: self.eof or predicate(b"".join(self.chunks).decode("utf-8", "replace")),
                                    timeout)
        out = self.output
        assert ok and predicate(out), f"no {what} on the terminal:\n{out[-2000:]}"

    def finish(self, timeout=300):
        rc = self.proc.wait(timeout=timeout)
        with self.cond:
            self.cond.wait_for(lambda: self.eof, timeout)
        os.close(self.master)
        return rc, self.output


def test_progress_on_terminal(registry, proxies, berth_config, tmp_path):
    b, img, big = big_image(tmp_path, 24 * MiB, nsmall=1)
    registry.push(b.layout_dir, "latest", "test/progress:v1")
    px = proxies(registry.port, hold_blobs_after=8 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/progress:v1"
    row = hexof(big.digest)[:12]
    try:
        run = PtyRun([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", ref])
        # While the big layer is held, its row is drawn with a bar and the total line with a speed.
        run.wait_output(lambda out: row in out and re.search(r"/s\b", out), "progress row for the big layer")
    finally:
        px.release()
    rc, out = run.finish()
    assert rc == 0, out
    for l in img.layers:
        assert hexof(l.digest)[:12] in out, f"no progress row for layer {l.digest}:\n{out[-2000:]}"
    # Drawn while held and redrawn in place (cursor up) when it finished.
    assert "\x1b[" in out, "no redrawing on a terminal"
    assert out.count(row) >= 2, out[-2000:]
    assert f"{ref}: {img.manifest.digest}" in out
    rm_images(ref)


def test_progress_plain_lines_without_terminal(registry, proxies, berth_config, tmp_path):
    b, img = build(tmp_path, nlayers=2, size=100000)
    registry.push(b.layout_dir, "latest", "test/plain:v1")
    ref = f"{registry.host}/test/plain:v1"
    p = pull(ref)
    pulled(p, ref)
    assert "\x1b" not in p.stdout + p.stderr and "\r" not in p.stdout
    for l in img.layers:
        rows = [line for line in p.stdout.splitlines() if hexof(l.digest)[:12] in line]
        assert rows, f"no line for layer {l.digest}:\n{p.stdout}"
        assert any(re.search(r"\b(done|exists|unpacked)\b", r) for r in rows), rows
    # --quiet: nothing on stdout except perhaps the final line.
    rm_images(ref)
    q = pull(ref, "--quiet")
    assert q.returncode == 0, q.stderr
    assert len(q.stdout.strip().splitlines()) <= 1, q.stdout
    assert q.stderr.strip() == ""
    rm_images(ref)


# ================================================================================================
# authorisation
# ================================================================================================

def test_outsider_cannot_pull(registry, proxies, berth_config, outsider, tmp_path):
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/outsider:v1")
    px = proxies(registry.port)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/outsider:v1"
    line = one_error_line(pull(ref, user=outsider))
    assert "permission denied" in line, line
    assert "org.berth.image-pull" in line, line
    assert px.requests == [], "the registry was contacted for a refused caller"
    assert ref not in bus_images()


def test_member_can_pull_but_not_remove_or_gc(registry, member, tmp_path):
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/member:v1")
    ref = f"{registry.host}/test/member:v1"
    assert pulled(pull(ref, user=member)) == img.manifest.digest
    assert bus_images()[ref][0] == img.manifest.digest
    p = berthctl("images", "rm", ref, user=member)
    line = one_error_line(p, "images rm")
    assert "permission denied" in line and "org.berth.image-remove" in line, line
    assert ref in bus_images()
    p = berthctl("content", "gc", user=member)
    line = one_error_line(p, "content gc")
    assert "permission denied" in line and "org.berth.maintenance" in line, line
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


# ================================================================================================
# images tag / rm, content ls / gc
# ================================================================================================

def test_tag_rm_content_ls_gc(registry, tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    shared = b.add_layer(unique_entries(100000))
    own_a = b.add_layer(unique_entries(100000))
    own_b = b.add_layer(unique_entries(100000))
    a = b.add_image([shared, own_a], tag="a", cmd=["/a"])
    bb = b.add_image([shared, own_b], tag="b", cmd=["/b"])
    registry.push(b.layout_dir, "a", "test/gc:a")
    registry.push(b.layout_dir, "b", "test/gc:b")
    ref_a, ref_b = f"{registry.host}/test/gc:a", f"{registry.host}/test/gc:b"
    pulled(pull(ref_a))
    pulled(pull(ref_b))

    # tag: a new name for the same target
    alias = f"{registry.host}/test/gc-alias:latest"
    p = berthctl("images", "tag", ref_a, alias)
    assert p.returncode == 0, p.stderr
    assert bus_images()[alias][0] == a.manifest.digest
    assert cli_images()[alias] == a.manifest.digest
    # tagging onto an existing name that points elsewhere is refused; same target is a no-op
    p = berthctl("images", "tag", ref_b, alias)
    one_error_line(p, "images tag")
    assert bus_images()[alias][0] == a.manifest.digest
    assert berthctl("images", "tag", ref_a, alias).returncode == 0

    # content ls: every blob, with the images that use it
    content = bus_content()
    for d in image_blobs(a) + image_blobs(bb):
        assert d.digest in content, d.digest
        assert content[d.digest][0] == d.size
    assert set(content[shared.digest][2]) >= {ref_a, ref_b, alias}
    assert set(content[own_b.digest][2]) == {ref_b}
    p = berthctl("content", "ls")
    assert p.returncode == 0 and own_a.digest in p.stdout and shared.digest in p.stdout
    p = berthctl("content", "ls", "--json")
    assert p.returncode == 0
    assert {own_a.digest, shared.digest} <= all_digests_in(json.loads(p.stdout))

    # rm one name: the other still holds the blobs, gc keeps them
    assert berthctl("images", "rm", ref_a).returncode == 0
    assert ref_a not in bus_images() and alias in bus_images()
    assert berthctl("content", "gc").returncode == 0
    for d in image_blobs(a):
        assert_blob_committed(d)

    # rm the last name: gc removes what only A used, keeps what B uses
    assert berthctl("images", "rm", alias).returncode == 0
    content = bus_content()
    assert content[own_a.digest][2] == []
    p = berthctl("content", "gc")
    assert p.returncode == 0, p.stderr
    for d in (a.manifest, a.config, own_a):
        assert not have_blob(d.digest), f"{d.digest} survived gc"
    for d in image_blobs(bb):
        assert_blob_committed(d)
    assert bus_images()[ref_b][0] == bb.manifest.digest

    # rm of an unknown name: one clear error
    line = one_error_line(berthctl("images", "rm", ref_a), "images rm")
    assert "test/gc:a" in line
    # images prune is content gc
    assert berthctl("images", "rm", ref_b).returncode == 0
    assert berthctl("images", "prune").returncode == 0
    for d in image_blobs(bb):
        assert not have_blob(d.digest)


def test_gc_reclaims_interrupted_pull_with_all_flag(registry, proxies, berth_config, tmp_path):
    """An interrupted pull leaves nothing gc cannot reclaim (PruneContent flag 1: all partials)."""
    b, img, big = big_image(tmp_path, 32 * MiB)
    registry.push(b.layout_dir, "latest", "test/gcpartial:v1")
    px = proxies(registry.port, hold_blobs_after=4 * MiB)
    berth_config.registry(px.host, plain_http=True)
    with TransferEvents() as ev:
        try:
            path = ev.pull_image(f"{px.host}/test/gcpartial:v1")
            px.wait_held()
            wait_file_size(ingest_data_file(big.digest), 2 * MiB)  # written to the ingest file
            assert busctl("call", BROKER, path, TRANSFER, "Cancel").returncode == 0
            assert ev.wait_finished(path)[0] == "cancelled"
        finally:
            px.release()
    assert ingest_entries_for(big.digest)
    p = busctl("call", BROKER, BROKER_PATH, MANAGER, "PruneContent", "t", "1")
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(r"tu (\d+) (\d+)", p.stdout.strip())
    assert m and int(m.group(1)) >= 2 * MiB, p.stdout
    assert ingest_entries_for(big.digest) == []
    # unknown flag bits are refused
    assert bus_error_name(BROKER_PATH, MANAGER, "PruneContent", "(t)", (4,)) == \
        "org.freedesktop.DBus.Error.InvalidArgs"
