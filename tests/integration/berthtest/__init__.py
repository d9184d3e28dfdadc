"""berthtest: test-support package for berth's integration tests.

Everything here drives real tools (Debian's docker-registry, skopeo, umoci,
openssl-equivalent crypto from python3-cryptography) and nothing of berth,
so that berth can be tested against independent implementations.

Modules:

- :mod:`berthtest.pki`         -- a throw-away certificate authority (CA,
  server and client certificates, self-signed signing certificates).
- :mod:`berthtest.registry`    -- :class:`Registry`, a docker-registry
  process on 127.0.0.1 (plain, TLS, basic auth, token auth).
- :mod:`berthtest.tokenserver` -- :class:`TokenServer`, a Docker token
  protocol server issuing RS256/ES256 JWTs the registry accepts.
- :mod:`berthtest.images`      -- :class:`ImageBuilder`, OCI image layouts
  built from layers described in Python.
- :mod:`berthtest.tools`       -- small subprocess helpers (skopeo, umoci).
- :mod:`berthtest.fixtures`    -- pytest fixtures built on the above.
"""

from .pki import CertAuthority
from .registry import Registry, RegistryError
from .tokenserver import TokenServer
from .images import (
    ImageBuilder, Image, Layer, Descriptor,
    File, Dir, Symlink, Hardlink, Whiteout, Opaque, Device, Fifo,
    busybox_rootfs_layer, random_file_layer, BUSYBOX_APPLETS,
)

__all__ = [
    "CertAuthority", "Registry", "RegistryError", "TokenServer",
    "ImageBuilder", "Image", "Layer", "Descriptor",
    "File", "Dir", "Symlink", "Hardlink", "Whiteout", "Opaque", "Device",
    "Fifo", "busybox_rootfs_layer", "random_file_layer", "BUSYBOX_APPLETS",
]
