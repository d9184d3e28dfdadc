"""Prove the berthtest fixtures work with real tools (docker-registry, skopeo,
umoci), independently of berth itself."""

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile

import pytest

from berthtest import (
    Dir, Device, Fifo, File, Hardlink, ImageBuilder, Opaque, Registry, Symlink,
    TokenServer, Whiteout, busybox_rootfs_layer, random_file_layer,
)
from berthtest.fixtures import *  # noqa: F401,F403  (pytest fixtures)
from berthtest.fixtures import TEST_PASSWORD, TEST_USER, require_tools
from berthtest.tools import ToolError, empty_authfile, skopeo, umoci


@pytest.fixture(scope="session")
def berth_stack():
    """Override conftest's autouse ``berth_stack``: these tests use nothing of
    berth, so they must not build or start it (and must pass without it)."""
    yield None


def sha256(data):
    return "sha256:" + hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def inspect(reg, repo_tag, creds=None, check=True, extra=()):
    """skopeo inspect --raw against ``reg``; returns the CompletedProcess."""
    return skopeo("inspect", "--raw", "--authfile", empty_authfile(), *extra,
                  *reg.skopeo_args(creds), reg.ref(repo_tag), check=check, timeout=120)


# --------------------------------------------------------------------------
# plain registry


def test_push_busybox_and_inspect_raw(registry, busybox_layout):
    layout, img = busybox_layout
    registry.push(layout, "latest", "library/busybox:latest")
    raw = registry.inspect_raw("library/busybox:latest")
    manifest = json.loads(raw)
    assert sha256(raw) == img.manifest.digest  # --preserve-digests kept our bytes
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [l["digest"] for l in manifest["layers"]] == [img.layers[0].digest]
    for d in (img.config.digest, img.layers[0].digest):
        with open(registry.blob_path(d), "rb") as f:
            assert sha256(f.read()) == d


def test_two_registries_are_independent(registry, busybox_layout):
    layout, _ = busybox_layout
    with Registry() as mirror:
        assert mirror.host != registry.host
        mirror.push(layout, "latest", "library/busybox:1")
        assert inspect(mirror, "library/busybox:1").returncode == 0
        assert inspect(registry, "library/busybox:1", check=False).returncode != 0


def test_registry_stop_cleans_up(busybox_layout):
    reg = Registry().start()
    workdir, proc = reg.workdir, reg.proc
    reg.stop()
    assert proc.poll() is not None
    assert not os.path.exists(workdir)


# --------------------------------------------------------------------------
# TLS


def test_tls_registry_with_ca(tls_registry, busybox_layout):
    layout, img = busybox_layout
    assert tls_registry.url.startswith("https://127.0.0.1:")
    tls_registry.push(layout, "latest", "tls/busybox:latest")
    out = inspect(tls_registry, "tls/busybox:latest")
    assert sha256(out.stdout) == img.manifest.digest
    # Without the CA, verification fails.
    res = skopeo("inspect", "--raw", "--authfile", empty_authfile(),
                 tls_registry.ref("tls/busybox:latest"), check=False, timeout=120)
    assert res.returncode != 0
    assert "certificate" in res.stderr


def test_tls_registry_requiring_client_cert(tmp_path, busybox_layout):
    layout, _ = busybox_layout
    with Registry(tls=True, client_auth=True) as reg:
        assert sorted(os.listdir(reg.cert_dir)) == ["ca.crt", "client.cert", "client.key"]
        reg.push(layout, "latest", "mtls/busybox:latest")
        assert inspect(reg, "mtls/busybox:latest").returncode == 0
        ca_only = reg.write_cert_dir(str(tmp_path / "ca-only"), client_cert=False)
        res = skopeo("inspect", "--raw", "--authfile", empty_authfile(),
                     "--cert-dir=" + ca_only, reg.ref("mtls/busybox:latest"),
                     check=False, timeout=120)
        assert res.returncode != 0
        assert reg.request("/v2/")[0] == 200
        assert reg.request("/v2/", client_cert=False)[0] is None  # handshake refused


# --------------------------------------------------------------------------
# basic auth


def test_basic_auth_refuses_without_creds(basic_auth_registry, busybox_layout):
    reg = basic_auth_registry
    layout, _ = busybox_layout
    status, headers, _ = reg.request("/v2/")
    assert status == 401
    assert headers.get("Www-Authenticate", "").startswith("Basic ")
    assert reg.request("/v2/", auth=(TEST_USER, TEST_PASSWORD))[0] == 200
    assert reg.request("/v2/", auth=(TEST_USER, "wrong"))[0] == 401
    with pytest.raises(ToolError):
        reg.push(layout, "latest", "private/busybox:latest", creds=None)
    with pytest.raises(ToolError):
        reg.push(layout, "latest", "private/busybox:latest", creds=(TEST_USER, "wrong"))
    reg.push(layout, "latest", "private/busybox:latest")  # default creds
    assert inspect(reg, "private/busybox:latest", check=False).returncode != 0
    assert inspect(reg, "private/busybox:latest", creds=(TEST_USER, TEST_PASSWORD)).returncode == 0


# --------------------------------------------------------------------------
# token auth


@pytest.mark.parametrize("algorithm,key_hint", [("ES256", "both"), ("RS256", "both"),
                                                ("ES256", "kid"), ("RS256", "x5c")])
def test_token_auth(algorithm, key_hint, busybox_layout):
    require_tools("docker-registry", "skopeo")
    layout, img = busybox_layout
    creds = (TEST_USER, TEST_PASSWORD)
    with TokenServer(users={TEST_USER: TEST_PASSWORD}, algorithm=algorithm,
                     key_hint=key_hint) as ts, Registry(token_auth=ts) as reg:
        status, headers, _ = reg.request("/v2/")
        assert status == 401
        challenge = headers.get("Www-Authenticate", "")
        assert challenge.startswith('Bearer realm="%s"' % ts.realm)
        assert 'service="%s"' % ts.service in challenge

        reg.push(layout, "latest", "tok/busybox:latest", creds=creds)
        pushed = ts.stats()
        assert pushed["tokens_issued"] >= 1
        assert any("repository:tok/busybox:pull,push" in r["scopes"] for r in pushed["requests"])

        out = inspect(reg, "tok/busybox:latest", creds=creds)
        assert sha256(out.stdout) == img.manifest.digest

        # Anonymous: the token server hands out an empty-access token, the registry refuses.
        res = inspect(reg, "tok/busybox:latest", check=False)
        assert res.returncode != 0
        # Wrong password: the token server itself refuses.
        before = ts.stats()["auth_failures"]
        res = inspect(reg, "tok/busybox:latest", creds=(TEST_USER, "wrong"), check=False)
        assert res.returncode != 0
        assert ts.stats()["auth_failures"] > before


def test_token_auth_anonymous_pull(busybox_layout):
    require_tools("docker-registry", "skopeo")
    layout, _ = busybox_layout
    with TokenServer(users={TEST_USER: TEST_PASSWORD}, anonymous_pull=True) as ts, \
            Registry(token_auth=ts) as reg:
        reg.push(layout, "latest", "pub/busybox:latest")
        assert inspect(reg, "pub/busybox:latest").returncode == 0
        with pytest.raises(ToolError):
            reg.push(layout, "latest", "pub/busybox:other", creds=None)


def test_token_fixture_pair(token_registry, token_server, busybox_layout):
    layout, img = busybox_layout
    token_registry.push(layout, "latest", "fx/busybox:latest")
    assert token_server.stats()["tokens_issued"] >= 1
    # Raw manifest PUT through the bearer challenge (what put_manifest does).
    with open(os.path.join(layout, "blobs", "sha256", img.manifest.hex), "rb") as f:
        data = f.read()
    digest = token_registry.put_manifest("fx/busybox", "again", data, img.manifest.media_type)
    assert digest == img.manifest.digest
    with pytest.raises(Exception):
        token_registry.put_manifest("fx/busybox", "nope", data, img.manifest.media_type,
                                    creds=None)
    token_server.reset_stats()
    assert token_server.stats()["tokens_issued"] == 0


# --------------------------------------------------------------------------
# multi-arch


@pytest.mark.parametrize("media_types", ["oci", "docker"])
def test_multi_arch_index_push_all(registry, tmp_path, media_types):
    b = ImageBuilder(tmp_path / "layout", media_types=media_types)
    layer = b.add_layer(busybox_rootfs_layer())
    idx = b.multi_arch_index({"linux/amd64": [layer], "linux/arm64/v8": [layer]},
                             tag="multi", cmd=["/bin/sh"])
    registry.push_all(b.layout_dir, "multi", "multi/busybox:latest")
    raw = registry.inspect_raw("multi/busybox:latest")
    assert sha256(raw) == idx.descriptor.digest
    index = json.loads(raw)
    expected_type = {"oci": "application/vnd.oci.image.index.v1+json",
                     "docker": "application/vnd.docker.distribution.manifest.list.v2+json"}
    assert index["mediaType"] == expected_type[media_types]
    plats = sorted((m["platform"]["os"], m["platform"]["architecture"],
                    m["platform"].get("variant", "")) for m in index["manifests"])
    assert plats == [("linux", "amd64", ""), ("linux", "arm64", "v8")]
    # Each per-platform manifest is there, with a config naming its architecture.
    for img in idx.images:
        m = json.loads(registry.inspect_raw("multi/busybox@" + img.manifest.digest))
        with open(registry.blob_path(m["config"]["digest"])) as f:
            assert json.load(f)["architecture"] == img.platform["architecture"]


# --------------------------------------------------------------------------
# corruption


def test_corrupted_blob_makes_copy_fail(registry, busybox_layout, tmp_path):
    layout, img = busybox_layout
    registry.push(layout, "latest", "bad/busybox:latest")
    src = ["--authfile", empty_authfile(), *registry.skopeo_src_args()]
    skopeo("copy", *src, registry.ref("bad/busybox:latest"),
           "oci:%s:good" % (tmp_path / "ok"))
    registry.corrupt_blob(img.layers[0].digest)
    res = skopeo("copy", *src, registry.ref("bad/busybox:latest"),
                 "oci:%s:bad" % (tmp_path / "bad"), check=False)
    assert res.returncode != 0
    assert "digest" in res.stderr.lower()


# --------------------------------------------------------------------------
# image contents


def test_umoci_unpacks_busybox(busybox_layout, tmp_path):
    require_tools("umoci")
    layout, _ = busybox_layout
    bundle = tmp_path / "bundle"
    umoci("unpack", "--image", "%s:latest" % layout, str(bundle))
    rootfs = bundle / "rootfs"
    st = os.lstat(rootfs / "bin" / "busybox")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755
    assert st.st_size == os.path.getsize("/bin/busybox")
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    assert stat.S_IMODE(os.lstat(rootfs / "tmp").st_mode) == 0o1777
    assert (rootfs / "etc" / "passwd").read_text().startswith("root:x:0:0:")
    out = subprocess.run([str(rootfs / "bin" / "busybox"), "echo", "hi"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "hi\n"
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["/bin/sh"]


def test_umoci_applies_whiteouts_and_special_files(image_builder, tmp_path):
    require_tools("umoci")
    b = image_builder
    base = b.add_layer([Dir("a"), File("a/keep", "k"), File("a/gone", "g"),
                        Dir("opq"), File("opq/old", "o"), File("x/y", "z", mode=0o600)])
    top = b.add_layer([Whiteout("a/gone"), Opaque("opq"), File("opq/new", "n"),
                       File("data", "d", uid=1234, gid=4321, mode=0o640),
                       Hardlink("data2", "data"), Symlink("link", "/etc/passwd"),
                       Fifo("fifo"), Device("null", "c", 1, 3)], compression="none")
    b.add_image([base, top], tag="t")
    bundle = tmp_path / "bundle"
    umoci("unpack", "--image", "%s:t" % b.layout_dir, str(bundle))
    r = bundle / "rootfs"
    assert (r / "a" / "keep").exists() and not (r / "a" / "gone").exists()
    assert sorted(os.listdir(r / "opq")) == ["new"]
    st = os.lstat(r / "data")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 4321, 0o640)
    assert os.lstat(r / "data2").st_ino == st.st_ino
    assert os.readlink(r / "link") == "/etc/passwd"
    assert stat.S_ISFIFO(os.lstat(r / "fifo").st_mode)
    dev = os.lstat(r / "null")
    assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1 and os.minor(dev.st_rdev) == 3


def test_layer_digests_xattrs_and_compressions(image_builder):
    b = image_builder
    entries = [File("f", "hello", xattrs={"user.k": "v", "security.capability": b"\x01\xff"})]
    layers = {c: b.add_layer(entries, compression=c) for c in ("gzip", "zstd", "none")}
    assert len({l.diff_id for l in layers.values()}) == 1  # same tar, 3 compressions
    assert layers["none"].digest == layers["none"].diff_id
    assert layers["zstd"].media_type.endswith("tar+zstd")
    with open(b.blob_path(layers["gzip"].digest), "rb") as f:
        tar = gzip.decompress(f.read())
    assert sha256(tar) == layers["gzip"].diff_id
    zs = subprocess.run(["zstd", "-d", "-c", b.blob_path(layers["zstd"].digest)],
                        capture_output=True, timeout=60, check=True).stdout
    assert zs == tar
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        ti = tf.getmember("f")
        assert ti.pax_headers["SCHILY.xattr.user.k"] == "v"
        assert ti.pax_headers["SCHILY.xattr.security.capability"].encode(
            "utf-8", "surrogateescape") == b"\x01\xff"
    # Same input, same digest (reproducible builds).
    assert b.add_layer(entries).digest == layers["gzip"].digest
    with pytest.raises(ValueError):
        ImageBuilder(b.layout_dir + "-d", media_types="docker").add_layer(entries, "zstd")


def test_zstd_and_docker_images_push(registry, tmp_path):
    b = ImageBuilder(tmp_path / "d", media_types="docker")
    img = b.add_image([b.add_layer(busybox_rootfs_layer())], tag="d")
    registry.push(b.layout_dir, "d", "dock/busybox:latest")
    m = json.loads(registry.inspect_raw("dock/busybox:latest"))
    assert m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert m["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert m["config"]["digest"] == img.config.digest
    o = ImageBuilder(tmp_path / "z")
    zimg = o.add_image([o.add_layer(busybox_rootfs_layer(), compression="zstd")], tag="z")
    registry.push(o.layout_dir, "z", "zstd/busybox:latest")
    m = json.loads(registry.inspect_raw("zstd/busybox:latest"))
    assert m["layers"][0]["digest"] == zimg.layers[0].digest
    assert m["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"


def test_random_file_layer_is_deterministic_and_incompressible(image_builder):
    size = 3 * 1024 * 1024 + 7
    a = image_builder.add_layer(random_file_layer(size, seed=1))
    b = image_builder.add_layer(random_file_layer(size, seed=1))
    c = image_builder.add_layer(random_file_layer(size, seed=2))
    assert a.digest == b.digest and a.digest != c.digest
    assert a.size > size  # gzip cannot shrink random data
    assert a.uncompressed_size > size


def test_https_token_server_and_tls_registry_share_a_ca(tmp_path, busybox_layout):
    require_tools("docker-registry", "skopeo")
    from berthtest.pki import CertAuthority
    layout, img = busybox_layout
    ca = CertAuthority(str(tmp_path / "ca"))
    with TokenServer(users={TEST_USER: TEST_PASSWORD}, tls_ca=ca) as ts, \
            Registry(tls=True, token_auth=ts, ca=ca) as reg:
        assert ts.realm.startswith("https://127.0.0.1:")
        reg.push(layout, "latest", "tls-tok/busybox:latest")
        assert sha256(reg.inspect_raw("tls-tok/busybox:latest")) == img.manifest.digest
        assert ts.stats()["tokens_issued"] >= 1


def test_counting_proxy_gate(tmp_path):
    """The proxy's gate, which the transfer tests rely on: responses of the named blobs wait until let
    through one by one, the most held at once is counted, and a client hanging up is seen."""
    import http.client
    import threading

    from berthtest.fakeregistry import FakeRegistry
    from berthtest.proxy import CountingProxy

    blobs = tmp_path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    digests = []
    for _ in range(4):
        data = os.urandom(300000)
        h = hashlib.sha256(data).hexdigest()
        (blobs / h).write_bytes(data)
        digests.append("sha256:" + h)
    fr = FakeRegistry(tmp_path)
    px = CountingProxy(fr.port)
    sizes = []
    slots = threading.Semaphore(3)  # a client with three download slots

    def get(digest):
        with slots:
            c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=60)
            c.request("GET", f"/v2/x/blobs/{digest}")
            sizes.append(len(c.getresponse().read()))
            c.close()
    try:
        px.hold_blobs(after=0, digests=digests)
        threads = [threading.Thread(target=get, args=(d,), daemon=True) for d in digests]
        for t in threads:
            t.start()
        for left in range(len(digests), 0, -1):
            px.wait_held(min(3, left))
            px.wait_ended(px.release_one())
        for t in threads:
            t.join(60)
        assert sizes == [300000] * 4
        assert px.max_held == 3 and px.max_concurrent_blob_gets() == 3

        px.hold_blobs(after=1000)
        c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=60)
        c.request("GET", f"/v2/x/blobs/{digests[0]}")
        px.wait_held()
        conn = px.blob_gets(digests[0])[-1]["conn"]
        c.sock.shutdown(2)
        c.close()
        px.wait_client_closed(conn)
    finally:
        px.close()
        fr.close()
