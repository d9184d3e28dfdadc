"""Run Debian's docker-registry (distribution v2) for tests.

Usage::

    with Registry() as reg:                       # plain HTTP
        reg.push(layout_dir, "latest", "library/busybox:latest")
    with Registry(tls=True) as reg:               # HTTPS, test CA in reg.ca_path
    with Registry(basic_auth=("u", "p")) as reg:  # htpasswd (bcrypt)
    with TokenServer(users={"u": "p"}) as ts, Registry(token_auth=ts) as reg:

A second registry (e.g. a mirror) is just a second ``Registry`` object.
Everything lives in a private temp dir that ``stop()`` removes.
"""

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from .pki import CertAuthority
from .tools import empty_authfile, free_port, skopeo

__all__ = ["Registry", "RegistryError", "REGISTRY_BIN"]

REGISTRY_BIN = "/usr/bin/docker-registry"


DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def _layout_manifest_bytes(layout_dir, ref):
    """Bytes of the blob index.json names ``ref`` in an OCI layout (or None)."""
    with open(os.path.join(layout_dir, "index.json")) as f:
        index = json.load(f)
    for m in index.get("manifests", []):
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
            algo, _, hexd = m["digest"].partition(":")
            with open(os.path.join(layout_dir, "blobs", algo, hexd), "rb") as f:
                return f.read()
    return None


class RegistryError(RuntimeError):
    """The registry failed to start or misbehaved."""


class Registry:
    """A docker-registry process on 127.0.0.1:<free port>.

    Parameters:
      tls: serve HTTPS with a server cert from a fresh test CA.
      client_auth: with ``tls``, require client certificates signed by the CA.
      basic_auth: ``(user, password)`` -> htpasswd auth (bcrypt hashes).
      token_auth: a started-or-not :class:`berthtest.TokenServer`; the registry
        trusts its signing certificate.
      ca: reuse an existing :class:`berthtest.pki.CertAuthority` (e.g. shared
        with a TLS TokenServer) instead of creating one.
      start_timeout: seconds to wait for ``GET /v2/`` to answer.
      keep: keep the temp dir after ``stop()`` (debugging).
    """

    def __init__(self, tls=False, client_auth=False, basic_auth=None, token_auth=None,
                 ca=None, start_timeout=30, keep=False):
        if basic_auth and token_auth:
            raise ValueError("basic_auth and token_auth are exclusive")
        if client_auth and not tls:
            raise ValueError("client_auth needs tls")
        self.tls = tls
        self.client_auth = client_auth
        self.basic_auth = tuple(basic_auth) if basic_auth else None
        self.token_auth = token_auth
        self.start_timeout = start_timeout
        self.keep = keep
        self.workdir = tempfile.mkdtemp(prefix="berth-registry-")
        self.storage_dir = os.path.join(self.workdir, "storage")
        os.makedirs(self.storage_dir)
        self.config_path = os.path.join(self.workdir, "config.yml")
        self.log_path = os.path.join(self.workdir, "registry.log")
        self.port = None
        self.proc = None
        self.ca = None
        self.ca_path = self.cert_path = self.key_path = None
        self.client_cert_path = self.client_key_path = None
        self.htpasswd_path = None
        if tls:
            self.ca = ca or CertAuthority(os.path.join(self.workdir, "pki"))
            self.cert_path, self.key_path = self.ca.issue_server("registry-server")
            self.ca_path = self.ca.ca_path
            self.client_cert_path, self.client_key_path = self.ca.issue_client("registry-client")
        if self.basic_auth:
            self.htpasswd_path = os.path.join(self.workdir, "htpasswd")
            import bcrypt  # python3-bcrypt; docker-registry only accepts bcrypt hashes
            user, password = self.basic_auth
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
            with open(self.htpasswd_path, "w") as f:
                f.write("%s:%s\n" % (user, hashed))
        self.cert_dir = None
        if tls:
            self.cert_dir = self.write_cert_dir(os.path.join(self.workdir, "certs.d"),
                                                client_cert=client_auth)

    # -- properties --------------------------------------------------------
    @property
    def host(self):
        """``"127.0.0.1:PORT"`` (the registry part of image references)."""
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        """``http(s)://127.0.0.1:PORT``."""
        return "%s://%s" % ("https" if self.tls else "http", self.host)

    def ref(self, repo_tag):
        """``docker://HOST/REPO:TAG`` for skopeo."""
        return "docker://%s/%s" % (self.host, repo_tag)

    # -- config ------------------------------------------------------------
    def _config(self):
        http = {"addr": self.host, "secret": base64.b64encode(os.urandom(24)).decode(),
                "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if self.tls:
            http["tls"] = {"certificate": self.cert_path, "key": self.key_path}
            if self.client_auth:
                http["tls"]["clientcas"] = [self.ca_path]
        cfg = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False},
                    "formatter": "text"},
            "storage": {"filesystem": {"rootdirectory": self.storage_dir},
                        "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}},
                        "redirect": {"disable": True}},
            "http": http,
        }
        if self.basic_auth:
            cfg["auth"] = {"htpasswd": {"realm": "berth-test", "path": self.htpasswd_path}}
        elif self.token_auth is not None:
            cfg["auth"] = self.token_auth.registry_auth_config()
        return cfg

    # -- lifecycle ---------------------------------------------------------
    def start(self, attempts=5):
        """Start the registry and wait until ``GET /v2/`` answers 200 or 401.

        Picks a free port, retrying with another one if the registry exits
        (e.g. the port was taken in between). Returns self.
        """
        if self.token_auth is not None and getattr(self.token_auth, "port", None) is None:
            raise RegistryError("start the TokenServer before the Registry")
        last = ""
        for _ in range(attempts):
            self.port = free_port()
            with open(self.config_path, "w") as f:
                json.dump(self._config(), f, indent=1)  # YAML is a superset of JSON
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config_path],
                                             stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, cwd=self.workdir)
            finally:
                log.close()
            if self._wait_ready():
                return self
            last = self.log_tail()
            self._kill()
            if "address already in use" not in last:
                break
        self.stop()
        raise RegistryError("docker-registry did not start; log:\n" + last)

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            status = self.ping()
            if status in (200, 401):
                return True
            time.sleep(0.05)
        return False

    def ssl_context(self, client_cert=None):
        """An ssl.SSLContext trusting the test CA (``None`` without TLS).

        ``client_cert`` defaults to presenting the client cert iff client_auth.
        """
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_path)
        if client_cert if client_cert is not None else self.client_auth:
            ctx.load_cert_chain(self.client_cert_path, self.client_key_path)
        return ctx

    def ping(self, timeout=2, client_cert=None):
        """``GET /v2/``; return the HTTP status or None if unreachable."""
        return self.request("/v2/", timeout=timeout, client_cert=client_cert)[0]

    def request(self, path, method="GET", headers=None, timeout=10, auth=None, data=None,
                client_cert=None, bearer=None):
        """Plain HTTP(S) request to the registry -> ``(status, headers, body)``.

        ``auth`` is ``(user, password)`` for Basic auth, ``bearer`` a token.
        ``client_cert`` overrides whether the TLS client cert is presented.
        ``status`` is None if the connection (or TLS handshake) failed.
        """
        req = urllib.request.Request(self.url + path, method=method, data=data,
                                     headers=dict(headers or {}))
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(
                ("%s:%s" % tuple(auth)).encode()).decode())
        if bearer:
            req.add_header("Authorization", "Bearer " + bearer)
        try:
            with urllib.request.urlopen(req, timeout=timeout,
                                        context=self.ssl_context(client_cert)) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()
        except (urllib.error.URLError, OSError):
            return None, {}, b""

    def authorized_request(self, path, method="GET", headers=None, data=None, creds=None,
                           scope=None, timeout=30):
        """Like :meth:`request`, answering a 401 challenge as a client would.

        Basic challenge: retry with ``creds``. Bearer challenge: get a token
        from the realm for ``scope`` (default: the challenge's scope) with
        ``creds`` as Basic auth, then retry with it.
        """
        status, hdrs, body = self.request(path, method, headers, timeout, data=data)
        if status != 401:
            return status, hdrs, body
        challenge = hdrs.get("Www-Authenticate", hdrs.get("WWW-Authenticate", ""))
        if challenge.startswith("Basic"):
            return self.request(path, method, headers, timeout, auth=creds, data=data)
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        query = {"service": params.get("service", "")}
        if scope or params.get("scope"):
            query["scope"] = scope or params["scope"]
        treq = urllib.request.Request(params["realm"] + "?" + urllib.parse.urlencode(query))
        if creds:
            treq.add_header("Authorization", "Basic " + base64.b64encode(
                ("%s:%s" % tuple(creds)).encode()).decode())
        ctx = None
        if params["realm"].startswith("https:") and self.ca_path:
            ctx = ssl.create_default_context(cafile=self.ca_path)
        try:
            with urllib.request.urlopen(treq, timeout=timeout, context=ctx) as r:
                token = json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()
        return self.request(path, method, headers, timeout, data=data,
                            bearer=token.get("token") or token.get("access_token"))

    _DEFAULT = object()

    def put_manifest(self, repo, reference, data, media_type, creds=_DEFAULT):
        """PUT raw manifest bytes at ``repo:reference`` (tag or digest).

        Lets tests store exact bytes skopeo would rewrite (Docker manifest
        lists, malformed manifests). Returns the digest the registry reports;
        raises RegistryError on a non-201 answer.
        """
        if creds is self._DEFAULT:
            creds = self.default_creds()
        status, hdrs, body = self.authorized_request(
            "/v2/%s/manifests/%s" % (repo, reference), "PUT",
            {"Content-Type": media_type}, data, creds, "repository:%s:pull,push" % repo)
        if status != 201:
            raise RegistryError("PUT manifest %s:%s -> %s %s" % (repo, reference, status,
                                                                 body[:500]))
        return hdrs.get("Docker-Content-Digest")

    def _kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def stop(self):
        """Terminate (then kill) the registry and remove the temp dir."""
        self._kill()
        if not self.keep and self.workdir and os.path.isdir(self.workdir):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, n=40):
        """Last ``n`` lines of the registry log (for assertion messages)."""
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- certificates ------------------------------------------------------
    def write_cert_dir(self, directory, client_cert=True):
        """Write a containers-style cert dir for this registry and return it.

        Contains ``ca.crt`` (trusted CA) and, if ``client_cert``,
        ``client.cert`` / ``client.key`` (a client cert signed by the CA),
        the layout skopeo's ``--cert-dir`` and /etc/docker/certs.d/ use.
        """
        if not self.tls:
            raise RegistryError("write_cert_dir needs tls=True")
        os.makedirs(directory, exist_ok=True)
        shutil.copyfile(self.ca_path, os.path.join(directory, "ca.crt"))
        if client_cert:
            shutil.copyfile(self.client_cert_path, os.path.join(directory, "client.cert"))
            shutil.copyfile(self.client_key_path, os.path.join(directory, "client.key"))
            os.chmod(os.path.join(directory, "client.key"), 0o600)
        return directory

    # -- storage -----------------------------------------------------------
    def blob_path(self, digest):
        """On-disk path of blob ``digest`` ("sha256:hex") in the storage."""
        algo, _, hexd = digest.partition(":")
        return os.path.join(self.storage_dir, "docker", "registry", "v2", "blobs",
                            algo, hexd[:2], hexd, "data")

    def corrupt_blob(self, digest, offset=None):
        """Flip one byte of a stored blob in place (same size, wrong digest).

        ``offset`` defaults to the middle of the blob. Returns the path.
        """
        path = self.blob_path(digest)
        size = os.path.getsize(path)
        if size == 0:
            raise RegistryError("cannot corrupt an empty blob")
        pos = size // 2 if offset is None else offset
        with open(path, "r+b") as f:
            f.seek(pos)
            b = f.read(1)
            f.seek(pos)
            f.write(bytes([b[0] ^ 0xFF]))
        return path

    # -- skopeo helpers ----------------------------------------------------
    def default_creds(self):
        """``(user, password)`` to use by default: basic_auth, else the first
        TokenServer user, else None."""
        if self.basic_auth:
            return self.basic_auth
        if self.token_auth is not None and self.token_auth.users:
            return next(iter(self.token_auth.users.items()))
        return None

    def _skopeo_side_args(self, side, creds):
        p = "--%s-" % side if side else "--"
        args = []
        if self.tls:
            args.append(p + "cert-dir=" + self.cert_dir)
        else:
            args.append(p + "tls-verify=false")
        if creds:
            args.append(p + "creds=%s:%s" % tuple(creds))
        return args

    def skopeo_src_args(self, creds=None):
        """skopeo ``--src-*`` options to read from this registry."""
        return self._skopeo_side_args("src", creds)

    def skopeo_dest_args(self, creds=None):
        """skopeo ``--dest-*`` options to write to this registry."""
        return self._skopeo_side_args("dest", creds)

    def skopeo_args(self, creds=None):
        """Options for single-image commands (``skopeo inspect``)."""
        return self._skopeo_side_args("", creds)

    def push(self, oci_layout_dir, ref_in_layout, repo_tag, creds=_DEFAULT,
             extra=(), timeout=300):
        """``skopeo copy oci:DIR:REF docker://HOST/REPO:TAG`` (digests preserved).

        ``creds`` defaults to :meth:`default_creds`; pass None for anonymous.
        Returns the CompletedProcess; raises ToolError on failure.
        """
        if creds is self._DEFAULT:
            creds = self.default_creds()
        return skopeo("copy", "--preserve-digests", "--authfile", empty_authfile(),
                      *self.skopeo_dest_args(creds), *extra,
                      "oci:%s:%s" % (oci_layout_dir, ref_in_layout), self.ref(repo_tag),
                      timeout=timeout)

    def push_all(self, oci_layout_dir, ref_in_layout, repo_tag, creds=_DEFAULT,
                 extra=(), timeout=300):
        """Like :meth:`push` with ``--all``: copies an index and every manifest.

        skopeo cannot copy a Docker manifest list out of an OCI layout byte
        for byte, so for those the instances are pushed with skopeo and the
        list's exact bytes are then PUT by :meth:`put_manifest`.
        """
        if creds is self._DEFAULT:
            creds = self.default_creds()
        data = _layout_manifest_bytes(oci_layout_dir, ref_in_layout)
        mt = json.loads(data).get("mediaType") if data else None
        if mt != DOCKER_LIST:
            return self.push(oci_layout_dir, ref_in_layout, repo_tag, creds,
                             extra=("--all",) + tuple(extra), timeout=timeout)
        result = skopeo("copy", "--all", "--format", "v2s2", "--authfile", empty_authfile(),
                        *self.skopeo_dest_args(creds), *extra,
                        "oci:%s:%s" % (oci_layout_dir, ref_in_layout), self.ref(repo_tag),
                        timeout=timeout)
        repo, _, tag = repo_tag.rpartition(":")
        self.put_manifest(repo, tag, data, DOCKER_LIST, creds)
        return result

    def inspect_raw(self, repo_tag, creds=_DEFAULT, timeout=120):
        """``skopeo inspect --raw`` -> the manifest bytes as text."""
        if creds is self._DEFAULT:
            creds = self.default_creds()
        return skopeo("inspect", "--raw", "--authfile", empty_authfile(),
                      *self.skopeo_args(creds), self.ref(repo_tag), timeout=timeout).stdout
