"""Issue 12, finding 10: the fetcher's network edges, attacked by a hostile registry while a member of
group `berth` pulls.

The hostile registry is berthtest.fakeregistry.FakeRegistry with ``tls=``: one port that answers TLS
(with a certificate of its own choosing) and plain http alike, and records every request, whether it
came over TLS and which Authorization header it carried.
"""
import base64
import shutil

import pytest

from berthtest.config import CERTS_D
from berthtest.fakeregistry import FakeRegistry
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.fixtures import TEST_USER, TEST_PASSWORD
from berthtest.pki import CertAuthority
from berthtest.store import have_blob
from test_pull import build, login, one_error_line, pull, pulled, rm_images


def basic_ok(h):
    want = "Basic " + base64.b64encode(f"{TEST_USER}:{TEST_PASSWORD}".encode()).decode()
    return h.headers.get("Authorization") == want


@pytest.fixture
def ca(tmp_path):
    return CertAuthority(str(tmp_path / "ca"))


def trust_ca(berth_config, ca, host):
    """certs.d/<host>/ca.crt, as an admin installs it."""
    d = CERTS_D / host
    CERTS_D.mkdir(parents=True, mode=0o755, exist_ok=True)
    d.mkdir(mode=0o755, exist_ok=True)
    berth_config.created_cert_dirs.append(d)
    shutil.copyfile(ca.ca_path, d / "ca.crt")
    (d / "ca.crt").chmod(0o644)


def test_hardening_f10_no_http_fallback_on_certificate_failure(fake_registry, ca, member, tmp_path):
    """A loopback port that speaks TLS with a certificate nobody trusts is a TLS server we cannot
    verify: the pull fails with a certificate error; nothing is asked over plain http."""
    b, img = build(tmp_path)
    fr = FakeRegistry(b.layout_dir, tls=ca.issue_server("hostile"))
    try:
        line = one_error_line(pull(f"{fr.host}/test/f10cert@{img.manifest.digest}", user=member))
        assert "certificate" in line.lower() or "tls" in line.lower(), line
        plain = [r for r in fr.requests if not r["tls"]]
        assert plain == [], f"fell back to plain http after a certificate failure: {plain}"
        assert not have_blob(img.manifest.digest)
    finally:
        fr.close()


def test_hardening_f10_no_credentials_over_http_fallback(fake_registry, berth_config, logins, member,
                                                       tmp_path):
    """Credentials an admin stored for a loopback registry never travel over the http fallback (whoever
    binds the port would read them); only a registry configured plain-http=true gets them in clear."""
    b, img = build(tmp_path)
    fr = fake_registry(b.layout_dir)

    def require_basic(h, method, path):
        if basic_ok(h):
            return False
        FakeRegistry.reply(h, method, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                           {"Content-Type": "application/json", "WWW-Authenticate": 'Basic realm="r"'})
        return True
    fr.fault = require_basic

    # The admin's decision: plain http for this registry, and a login.
    berth_config.registry(fr.host, plain_http=True)
    logins.append(fr.host)
    p = login(fr.host, TEST_USER, TEST_PASSWORD)
    assert p.returncode == 0, p.stderr
    ref = f"{fr.host}/test/f10basic@{img.manifest.digest}"
    assert pulled(pull(ref, user=member)) == img.manifest.digest
    rm_images(ref)

    # Without that setting the registry is only "found" to speak http: no credentials.
    berth_config.groups.clear()
    berth_config.flush()
    fr.requests.clear()
    line = one_error_line(pull(f"{fr.host}/test/f10basic2@{img.manifest.digest}", user=member))
    assert "plain-http" in line, line
    sent = [r for r in fr.requests if r["authorization"]]
    assert sent == [], f"credentials sent over the http fallback: {sent}"


def test_hardening_f10_no_basic_credentials_to_http_token_realm(berth_config, ca, logins, member, tmp_path):
    """An https registry whose token realm is plain http on its own host: the stored password must not
    cross the network in clear (the token request is anonymous, and refused)."""
    b, img = build(tmp_path)
    fr = FakeRegistry(b.layout_dir, tls=ca.issue_server("registry"))
    realm = {"scheme": "https"}
    token_auths = []

    def token_auth(h, method, path):
        if path == "/token":
            token_auths.append((h.headers.get("Authorization"), fr.requests[-1]["tls"]))
            if basic_ok(h):
                return FakeRegistry.reply(h, method, 200, b'{"token":"t0k3n"}',
                                          {"Content-Type": "application/json"}) or True
            return FakeRegistry.reply(h, method, 401, b"{}") or True
        if h.headers.get("Authorization") == "Bearer t0k3n":
            return False
        FakeRegistry.reply(h, method, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                           {"Content-Type": "application/json",
                            "WWW-Authenticate": 'Bearer realm="%s://%s/token",service="s"' %
                                                (realm["scheme"], fr.host)})
        return True
    fr.fault = token_auth
    try:
        trust_ca(berth_config, ca, fr.host)
        logins.append(fr.host)
        p = login(fr.host, TEST_USER, TEST_PASSWORD)  # realm over https: checked and stored
        assert p.returncode == 0, p.stderr
        ref = f"{fr.host}/test/f10tok@{img.manifest.digest}"
        assert pulled(pull(ref, user=member)) == img.manifest.digest
        rm_images(ref)

        realm["scheme"] = "http"
        token_auths.clear()
        one_error_line(pull(f"{fr.host}/test/f10tok2@{img.manifest.digest}", user=member))
        assert token_auths, "no token request at all"
        clear = [a for a, tls in token_auths if a and not tls]
        assert clear == [], f"credentials sent to a plain-http token realm: {clear}"
    finally:
        fr.close()


def test_hardening_f10_host_names_are_case_insensitive(berth_config, ca, member, tmp_path):
    """The admin's TLS settings for localhost:PORT apply to LOCALHOST:PORT too."""
    b, img = build(tmp_path)
    fr = FakeRegistry(b.layout_dir, tls=ca.issue_server("registry"))
    try:
        host = "localhost:%d" % fr.port
        trust_ca(berth_config, ca, host)
        berth_config.registry(host.title(), skip_verify=False)  # a group spelled with capitals
        ref = f"LOCALHOST:{fr.port}/test/f10case@{img.manifest.digest}"
        p = pull(ref, user=member)
        assert pulled(p) == img.manifest.digest
        assert all(r["tls"] for r in fr.requests), "plain http used despite the admin's TLS settings"
        rm_images(ref)
    finally:
        fr.close()


def test_hardening_f10_skip_verify_does_not_follow_redirects(berth_config, ca, member, tmp_path):
    """skip-verify is the admin's exception for one host: a redirect to another host name is verified
    as usual, so the hostile registry cannot extend it (or our client certificate) to hosts it names."""
    b, img = build(tmp_path)
    fr = FakeRegistry(b.layout_dir, tls=ca.issue_server("registry", hosts=("127.0.0.1",)))
    layer = img.layers[0]

    def redirect(h, method, path):
        if path.endswith("/blobs/" + layer.digest) and h.headers.get("Host", "").startswith("127.0.0.1"):
            FakeRegistry.reply(h, method, 307, b"",
                               {"Location": "https://localhost:%d%s" % (fr.port, h.path)})
            return True
        return False
    fr.fault = redirect
    try:
        berth_config.registry(fr.host, skip_verify=True)
        line = one_error_line(pull(f"{fr.host}/test/f10redir@{img.manifest.digest}", user=member))
        assert "certificate" in line.lower() or "tls" in line.lower() or "ssl" in line.lower(), line
        assert len(fr.blob_gets(layer.digest)) == 1, "the redirect target was fetched without verification"
        assert not have_blob(layer.digest)
    finally:
        fr.close()
