"""Issue 12, finding 10, at the fetcher itself (private bus, no stack; see berthtest.privatefetcher): the
same hostile registries as test_hardening_f10_network_edges.py, which drives them end to end through
berthctl as a member. Run as root, also with
    pytest --noconftest tests/integration/test_hardening_f10_fetcher.py
"""
import base64
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from berthtest.fakeregistry import FakeRegistry
from berthtest.images import ImageBuilder, File
from berthtest.pki import CertAuthority
from berthtest.privatefetcher import PrivateFetcher

USER, PASSWORD = "berth", "s3cret-pw"


def basic_ok(h):
    return h.headers.get("Authorization") == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture
def env():
    assert os.geteuid() == 0
    tmp = Path(tempfile.mkdtemp(prefix="berth-f10-"))
    tmp.chmod(0o755)
    f = PrivateFetcher(tmp)
    b = ImageBuilder(tmp / "layout")
    layer = b.add_layer([File("f10", os.urandom(4096))])
    img = b.add_image([layer], tag="latest")
    ca = CertAuthority(str(tmp / "ca"))
    regs = []

    def registry(tls=None):
        r = FakeRegistry(b.layout_dir, tls=tls)
        regs.append(r)
        return r
    yield f, img, ca, registry
    for r in regs:
        r.close()
    f.close()
    shutil.rmtree(tmp, ignore_errors=True)


def test_hardening_f10_fetcher_no_fallback_on_certificate_failure(env):
    f, img, ca, registry = env
    fr = registry(tls=ca.issue_server("hostile"))
    p = f.call("Resolve", f"{fr.host}/test/x@{img.manifest.digest}", 0)
    assert p.returncode != 0 and "certificate" in p.stderr.lower(), p.stderr
    assert [r for r in fr.requests if not r["tls"]] == [], "fell back to plain http"


def test_hardening_f10_fetcher_no_credentials_over_fallback(env):
    f, img, ca, registry = env
    fr = registry()

    def require_basic(h, method, path):
        if basic_ok(h):
            return False
        FakeRegistry.reply(h, method, 401, b"{}", {"WWW-Authenticate": 'Basic realm="r"'})
        return True
    fr.fault = require_basic
    f.config(f'[registry "{fr.host}"]\nplain-http=true\n')
    p = f.call("Login", fr.host, USER, PASSWORD)
    assert p.returncode == 0, p.stderr
    assert f.call("Resolve", f"{fr.host}/test/x@{img.manifest.digest}", 0).returncode == 0
    f.config("")
    fr.requests.clear()
    p = f.call("Resolve", f"{fr.host}/test/y@{img.manifest.digest}", 0)
    assert p.returncode != 0
    assert [r for r in fr.requests if r["authorization"]] == [], "credentials sent over the http fallback"


def test_hardening_f10_fetcher_no_basic_to_http_token_realm(env):
    f, img, ca, registry = env
    fr = registry(tls=ca.issue_server("registry"))
    realm = {"scheme": "https"}
    token_auths = []

    def token_auth(h, method, path):
        if path == "/token":
            token_auths.append((h.headers.get("Authorization"), fr.requests[-1]["tls"]))
            if basic_ok(h):
                FakeRegistry.reply(h, method, 200, b'{"token":"t0k3n"}', {"Content-Type": "application/json"})
            else:
                FakeRegistry.reply(h, method, 401, b"{}")
            return True
        if h.headers.get("Authorization") == "Bearer t0k3n":
            return False
        FakeRegistry.reply(h, method, 401, b"{}", {"WWW-Authenticate": 'Bearer realm="%s://%s/token",service="s"'
                                                   % (realm["scheme"], fr.host)})
        return True
    fr.fault = token_auth
    f.trust_ca(fr.host, ca.ca_path)
    assert f.call("Login", fr.host, USER, PASSWORD).returncode == 0
    realm["scheme"] = "http"
    token_auths.clear()
    f.call("Resolve", f"{fr.host}/test/z@{img.manifest.digest}", 0)
    assert token_auths, "no token request"
    assert [a for a, tls in token_auths if a and not tls] == [], "credentials sent to a plain-http realm"


def test_hardening_f10_fetcher_host_names_case_insensitive(env):
    f, img, ca, registry = env
    fr = registry(tls=ca.issue_server("registry"))
    f.trust_ca(f"localhost:{fr.port}", ca.ca_path)
    f.config(f'[registry "Localhost:{fr.port}"]\nskip-verify=false\n')
    p = f.call("Resolve", f"LOCALHOST:{fr.port}/test/case@{img.manifest.digest}", 0)
    assert p.returncode == 0, p.stderr
    assert all(r["tls"] for r in fr.requests)


def test_hardening_f10_fetcher_skip_verify_stays_on_its_host(env):
    f, img, ca, registry = env
    fr = registry(tls=ca.issue_server("registry", hosts=("127.0.0.1",)))
    layer = img.layers[0]

    def redirect(h, method, path):
        if path.endswith("/blobs/" + layer.digest) and h.headers.get("Host", "").startswith("127.0.0.1"):
            FakeRegistry.reply(h, method, 307, b"", {"Location": "https://localhost:%d%s" % (fr.port, h.path)})
            return True
        return False
    fr.fault = redirect
    f.config(f'[registry "{fr.host}"]\nskip-verify=true\n')
    p = f.fetch(f"{fr.host}/test/redir", layer)
    assert p.returncode != 0, "the redirect target was fetched without verification"
    assert len(fr.blob_gets(layer.digest)) == 1
