"""Shared pytest fixtures. Import them into a test module (or a conftest)::

    from berthtest.fixtures import *  # noqa: F401,F403

Every server fixture stops its process/thread and removes its temp dir on
teardown, also when the test fails.
"""

import os
import shutil

import pytest

from . import stack
from .config import CERTS_D, REGISTRIES_CONF, BerthConfig
from .fakeregistry import FakeRegistry
from .images import ImageBuilder, busybox_rootfs_layer
from .proxy import CountingProxy
from .registry import Registry
from .tokenserver import TokenServer

__all__ = ["TEST_USER", "TEST_PASSWORD", "require_tools", "registry", "tls_registry",
           "basic_auth_registry", "token_server", "token_registry", "image_builder",
           "busybox_layout", "fake_registry", "proxies", "berth_config", "logins", "names"]

TEST_USER = "berth"
TEST_PASSWORD = "s3cret-pw"


def require_tools(*names):
    """Skip the current test unless every named executable is installed. Under CI (CI=true, where
    tools/install-deps has installed them all) a missing tool is a failure, never a silent skip."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        msg = "missing tools: " + ", ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (tools/install-deps should have installed them)")
        pytest.skip(msg)


@pytest.fixture
def registry():
    """A plain-HTTP registry without auth."""
    require_tools("docker-registry", "skopeo")
    with Registry() as reg:
        yield reg


@pytest.fixture
def tls_registry():
    """An HTTPS registry with a test CA (``ca_path``, ``cert_dir``)."""
    require_tools("docker-registry", "skopeo")
    with Registry(tls=True) as reg:
        yield reg


@pytest.fixture
def basic_auth_registry():
    """A registry with htpasswd auth for ``TEST_USER``/``TEST_PASSWORD``."""
    require_tools("docker-registry", "skopeo")
    with Registry(basic_auth=(TEST_USER, TEST_PASSWORD)) as reg:
        yield reg


@pytest.fixture
def token_server():
    """A TokenServer (ES256) knowing ``TEST_USER``; no anonymous pull."""
    with TokenServer(users={TEST_USER: TEST_PASSWORD}) as ts:
        yield ts


@pytest.fixture
def token_registry(token_server):
    """A registry using ``token_server`` for token auth."""
    require_tools("docker-registry", "skopeo")
    with Registry(token_auth=token_server) as reg:
        yield reg


@pytest.fixture
def image_builder(tmp_path):
    """An :class:`ImageBuilder` (OCI media types) on ``tmp_path/layout``."""
    return ImageBuilder(tmp_path / "layout")


@pytest.fixture
def busybox_layout(image_builder):
    """``(layout_dir, image)``: a one-layer busybox image tagged ``latest``."""
    layer = image_builder.add_layer(busybox_rootfs_layer())
    img = image_builder.add_image([layer], cmd=["/bin/sh"], tag="latest")
    return image_builder.layout_dir, img


@pytest.fixture
def fake_registry():
    """``make(layout_dir=None)`` → a :class:`FakeRegistry`; all closed at teardown."""
    regs = []

    def make(layout_dir=None):
        r = FakeRegistry(layout_dir)
        regs.append(r)
        return r
    yield make
    for r in regs:
        r.close()


@pytest.fixture
def proxies():
    """``make(target_port, hold_blobs_after=None)`` → a :class:`CountingProxy`; all closed at teardown
    (which also releases whatever they hold)."""
    made = []

    def make(target_port, hold_blobs_after=None):
        p = CountingProxy(target_port, hold_blobs_after=hold_blobs_after)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


@pytest.fixture
def berth_config():
    """A :class:`BerthConfig` writing /etc/berth/registries.conf; the file and certs.d as they were
    come back at teardown."""
    saved = REGISTRIES_CONF.read_bytes() if REGISTRIES_CONF.exists() else None
    certs_existed = CERTS_D.exists()
    cfg = BerthConfig()
    yield cfg
    for d in cfg.created_cert_dirs:
        shutil.rmtree(d, ignore_errors=True)
    if not certs_existed and CERTS_D.exists() and not any(CERTS_D.iterdir()):
        CERTS_D.rmdir()
    if saved is None:
        REGISTRIES_CONF.unlink(missing_ok=True)
    else:
        REGISTRIES_CONF.write_bytes(saved)


@pytest.fixture
def logins():
    """Registries logged in to during the test; logged out at teardown."""
    regs = []
    yield regs
    for r in regs:
        stack.berthctl("logout", r)


@pytest.fixture
def names():
    """Names of containers the test made (as root); removed with berthctl rm -f at teardown."""
    made = []
    yield made
    for n in made:
        stack.berthctl("rm", "-f", n)
