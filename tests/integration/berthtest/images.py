"""Build real OCI / Docker schema 2 images into an OCI image layout, without Docker.

A layer is a list of entries (:class:`File`, :class:`Dir`, :class:`Symlink`,
:class:`Hardlink`, :class:`Whiteout`, :class:`Opaque`, :class:`Device`,
:class:`Fifo`), written with :mod:`tarfile` in PAX format (so xattrs travel
as ``SCHILY.xattr.*`` records), then compressed (gzip, zstd or none).

Example::

    b = ImageBuilder(tmp_path / "layout")                    # media_types="oci"
    base = b.add_layer(busybox_rootfs_layer())
    top = b.add_layer([File("etc/motd", b"hi\\n"), Whiteout("tmp/x")], compression="zstd")
    img = b.add_image([base, top], cmd=["/bin/sh"], tag="latest")
    img.manifest.digest, img.config.digest, [l.digest for l in img.layers]
    idx = b.multi_arch_index({"linux/amd64": [base], "linux/arm64/v8": [base]}, tag="multi")

Entry paths are written as given minus a leading "/", so hostile names
(``../escape``, absolute symlink targets, ...) can be built on purpose.
All blobs are content-addressed; the same input gives the same digests
(fixed mtimes, gzip header mtime 0).
"""

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field

__all__ = [
    "ImageBuilder", "Descriptor", "Layer", "Image",
    "File", "Dir", "Symlink", "Hardlink", "Whiteout", "Opaque", "Device", "Fifo",
    "busybox_rootfs_layer", "random_file_layer", "BUSYBOX_APPLETS", "MEDIA_TYPES",
    "DEFAULT_MTIME",
]

#: mtime used for entries that do not set one (2023-11-14, reproducible).
DEFAULT_MTIME = 1700000000

MEDIA_TYPES = {
    "oci": {
        "manifest": "application/vnd.oci.image.manifest.v1+json",
        "index": "application/vnd.oci.image.index.v1+json",
        "config": "application/vnd.oci.image.config.v1+json",
        "layer": {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
                  "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
                  "none": "application/vnd.oci.image.layer.v1.tar"},
    },
    "docker": {
        "manifest": "application/vnd.docker.distribution.manifest.v2+json",
        "index": "application/vnd.docker.distribution.manifest.list.v2+json",
        "config": "application/vnd.docker.container.image.v1+json",
        # Docker schema 2 has no zstd layer type.
        "layer": {"gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                  "none": "application/vnd.docker.image.rootfs.diff.tar"},
    },
}

REF_NAME = "org.opencontainers.image.ref.name"

_INDEX_JSON_TYPE = {
    MEDIA_TYPES["docker"]["manifest"]: MEDIA_TYPES["oci"]["manifest"],
    MEDIA_TYPES["docker"]["index"]: MEDIA_TYPES["oci"]["index"],
}

# --------------------------------------------------------------------------
# layer entries


def _clean(path):
    return path.lstrip("/") if path not in ("/", "") else "."


@dataclass
class File:
    """A regular file. ``content`` is bytes/str, or ``source`` a host path,
    or ``stream`` a ``(size, fileobj)`` pair for large generated content
    (a stream is consumed: build a fresh entry list for every layer)."""
    path: str
    content: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = DEFAULT_MTIME
    xattrs: dict = field(default_factory=dict)
    source: str = None
    stream: tuple = None
    uname: str = ""
    gname: str = ""


@dataclass
class Dir:
    """A directory."""
    path: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    mtime: int = DEFAULT_MTIME
    xattrs: dict = field(default_factory=dict)


@dataclass
class Symlink:
    """A symbolic link ``path -> target`` (target written verbatim)."""
    path: str
    target: str
    uid: int = 0
    gid: int = 0
    mtime: int = DEFAULT_MTIME
    xattrs: dict = field(default_factory=dict)


@dataclass
class Hardlink:
    """A hard link ``path`` to the earlier entry ``target`` (layer-relative)."""
    path: str
    target: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = DEFAULT_MTIME


@dataclass
class Whiteout:
    """Deletes ``path`` from lower layers: written as ``dir/.wh.name``."""
    path: str


@dataclass
class Opaque:
    """Hides the lower layers' content of directory ``path``: ``path/.wh..wh..opq``."""
    path: str


@dataclass
class Device:
    """A device node; ``kind`` is ``"c"`` (char) or ``"b"`` (block)."""
    path: str
    kind: str = "c"
    major: int = 1
    minor: int = 3
    mode: int = 0o666
    uid: int = 0
    gid: int = 0
    mtime: int = DEFAULT_MTIME


@dataclass
class Fifo:
    """A named pipe."""
    path: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = DEFAULT_MTIME


def _xattr_pax(xattrs):
    pax = {}
    for k, v in (xattrs or {}).items():
        if isinstance(v, bytes):
            v = v.decode("utf-8", "surrogateescape")
        pax["SCHILY.xattr." + k] = v
    return pax


def _tarinfo(entry):
    """Return ``(TarInfo, fileobj-or-None)`` for one entry."""
    if isinstance(entry, Whiteout):
        d, base = os.path.split(_clean(entry.path))
        ti = tarfile.TarInfo(os.path.join(d, ".wh." + base))
        ti.mode, ti.mtime = 0o644, DEFAULT_MTIME
        return ti, None
    if isinstance(entry, Opaque):
        ti = tarfile.TarInfo(os.path.join(_clean(entry.path), ".wh..wh..opq"))
        ti.mode, ti.mtime = 0o644, DEFAULT_MTIME
        return ti, None
    ti = tarfile.TarInfo(_clean(entry.path))
    ti.uid, ti.gid, ti.mtime = entry.uid, entry.gid, entry.mtime
    ti.pax_headers = _xattr_pax(getattr(entry, "xattrs", None))
    fobj = None
    if isinstance(entry, File):
        ti.type, ti.mode = tarfile.REGTYPE, entry.mode
        ti.uname, ti.gname = entry.uname, entry.gname
        if entry.stream is not None:
            ti.size, fobj = entry.stream
        elif entry.source is not None:
            ti.size = os.path.getsize(entry.source)
            fobj = open(entry.source, "rb")
        else:
            data = entry.content.encode() if isinstance(entry.content, str) else entry.content
            ti.size, fobj = len(data), io.BytesIO(data)
    elif isinstance(entry, Dir):
        ti.type, ti.mode = tarfile.DIRTYPE, entry.mode
    elif isinstance(entry, Symlink):
        ti.type, ti.mode, ti.linkname = tarfile.SYMTYPE, 0o777, entry.target
    elif isinstance(entry, Hardlink):
        ti.type, ti.mode, ti.linkname = tarfile.LNKTYPE, entry.mode, _clean(entry.target)
    elif isinstance(entry, Device):
        ti.type = tarfile.CHRTYPE if entry.kind == "c" else tarfile.BLKTYPE
        ti.mode, ti.devmajor, ti.devminor = entry.mode, entry.major, entry.minor
    elif isinstance(entry, Fifo):
        ti.type, ti.mode = tarfile.FIFOTYPE, entry.mode
    else:
        raise TypeError("unknown layer entry %r" % (entry,))
    return ti, fobj


def write_tar(entries, fileobj):
    """Write ``entries`` as a PAX tar stream to ``fileobj``."""
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for entry in entries:
            ti, fobj = _tarinfo(entry)
            try:
                tf.addfile(ti, fobj)
            finally:
                if isinstance(entry, File) and entry.source is not None:
                    fobj.close()  # we opened it in _tarinfo


# --------------------------------------------------------------------------
# helpers for common layers

#: Applets linked to /bin/busybox by :func:`busybox_rootfs_layer`.
BUSYBOX_APPLETS = (
    "sh", "ash", "ls", "cat", "echo", "sleep", "true", "false", "id", "env",
    "printf", "test", "[", "mkdir", "rm", "rmdir", "touch", "cp", "mv", "ln", "chmod",
    "chown", "stat", "head", "tail", "wc", "grep", "sed", "awk", "find", "ps", "kill",
    "hostname", "uname", "whoami", "pwd", "readlink", "date", "sync", "mount",
    "umount", "dd", "md5sum", "sha256sum", "xargs", "tee", "yes", "nproc", "wget",
    "nc", "ip", "ifconfig", "sort", "uniq", "cut", "tr", "basename", "dirname",
)


def busybox_rootfs_layer(busybox="/bin/busybox", applets=BUSYBOX_APPLETS):
    """Entries of a minimal busybox root filesystem.

    /bin/busybox (0755, from the host's busybox-static), ``/bin/<applet>``
    symlinks to ``busybox``, /etc/passwd (root, nobody), /etc/group,
    /etc/hostname, /tmp (1777), /root (0700) and empty /proc /sys /dev /run /var.
    """
    entries = [Dir("bin"), Dir("dev"), Dir("etc"), Dir("proc", 0o555), Dir("root", 0o700),
               Dir("run"), Dir("sys", 0o555), Dir("tmp", 0o1777), Dir("var"),
               Dir("var/tmp", 0o1777),
               File("bin/busybox", source=busybox, mode=0o755)]
    entries += [Symlink("bin/" + a, "busybox") for a in applets]
    entries += [
        File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                           "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        File("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        File("etc/hostname", "berth\n"),
    ]
    return entries


class _RandomStream(io.RawIOBase):
    """Deterministic pseudo-random bytes (incompressible), read sequentially."""

    def __init__(self, size, seed):
        self._left = size
        self._rng = random.Random(seed)

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0 or n > self._left:
            n = self._left
        self._left -= n
        return self._rng.randbytes(n)


def random_file_layer(size, seed=0, path="data/random.bin"):
    """Entries of a layer with one ``size``-byte incompressible file (benchmarks).

    Content is generated while the tar is written, never held in memory at once;
    the same ``seed`` gives the same bytes.
    """
    d = os.path.dirname(_clean(path))
    entries = [Dir(d)] if d else []
    entries.append(File(path, stream=(size, _RandomStream(size, seed))))
    return entries


# --------------------------------------------------------------------------
# descriptors


@dataclass
class Descriptor:
    """An OCI content descriptor."""
    media_type: str
    digest: str
    size: int
    platform: dict = None
    annotations: dict = None

    def to_json(self):
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            d["platform"] = self.platform
        if self.annotations:
            d["annotations"] = self.annotations
        return d

    @property
    def hex(self):
        return self.digest.split(":", 1)[1]


@dataclass
class Layer(Descriptor):
    """A layer blob: a descriptor plus its ``diff_id`` (uncompressed digest),
    ``compression`` and ``uncompressed_size``."""
    diff_id: str = None
    compression: str = "gzip"
    uncompressed_size: int = 0

    def with_media_types(self, kind):
        """The same blob described with the ``"oci"`` or ``"docker"`` layer type."""
        mt = MEDIA_TYPES[kind]["layer"].get(self.compression)
        if mt is None:
            raise ValueError("%s has no %s layer media type" % (kind, self.compression))
        return Layer(mt, self.digest, self.size, diff_id=self.diff_id,
                     compression=self.compression, uncompressed_size=self.uncompressed_size)


@dataclass
class Image:
    """A built image: ``manifest``, ``config`` and ``layers`` descriptors,
    plus the parsed ``config_json`` / ``manifest_json`` and its ``platform``."""
    manifest: Descriptor
    config: Descriptor
    layers: list
    manifest_json: dict
    config_json: dict
    platform: dict


@dataclass
class Index:
    """A built image index: its ``descriptor``, ``images`` and parsed JSON."""
    descriptor: Descriptor
    images: list
    index_json: dict


def _sha256_file(path):
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def parse_platform(spec):
    """``"linux/arm64/v8"`` -> ``{"os": "linux", "architecture": "arm64", "variant": "v8"}``."""
    if isinstance(spec, dict):
        return dict(spec)
    parts = spec.split("/")
    p = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        p["variant"] = parts[2]
    return p


def native_platform():
    """The platform of this machine in OCI terms (``linux/amd64`` on x86-64)."""
    m = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)
    return {"os": "linux", "architecture": arch}


# --------------------------------------------------------------------------
# the builder


class ImageBuilder:
    """Writes blobs, images and indexes into an OCI image layout directory.

    ``media_types`` is ``"oci"`` (default) or ``"docker"`` (Docker schema 2
    manifests, manifest lists and layer types, still stored in an OCI layout,
    which skopeo reads fine).
    """

    def __init__(self, layout_dir, media_types="oci"):
        if media_types not in MEDIA_TYPES:
            raise ValueError("media_types must be 'oci' or 'docker'")
        self.layout_dir = str(layout_dir)
        self.media_types = media_types
        self.blobs_dir = os.path.join(self.layout_dir, "blobs", "sha256")
        os.makedirs(self.blobs_dir, exist_ok=True)
        with open(os.path.join(self.layout_dir, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self._index_path = os.path.join(self.layout_dir, "index.json")
        if os.path.exists(self._index_path):
            with open(self._index_path) as f:
                self._index = json.load(f)
        else:
            self._index = {"schemaVersion": 2, "manifests": []}
            self._write_index()

    # -- blobs -------------------------------------------------------------
    def blob_path(self, digest):
        """Path of a blob in the layout."""
        return os.path.join(self.layout_dir, "blobs", *digest.split(":", 1))

    def _tmp(self):
        fd, path = tempfile.mkstemp(prefix=".tmp-", dir=self.blobs_dir)
        os.close(fd)
        return path

    def _commit_file(self, tmp):
        digest, size = _sha256_file(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.blob_path(digest))
        return digest, size

    def add_blob(self, data, media_type="application/octet-stream"):
        """Store raw bytes as a blob; return its :class:`Descriptor`."""
        data = data.encode() if isinstance(data, str) else data
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not os.path.exists(path):
            tmp = self._tmp()
            with open(tmp, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        return Descriptor(media_type, digest, len(data))

    def _add_json(self, obj, media_type):
        return self.add_blob(json.dumps(obj, indent=None, separators=(",", ":"),
                                        sort_keys=True).encode(), media_type)

    def add_layer(self, entries, compression="gzip", compresslevel=6):
        """Build a layer from entries; return its :class:`Layer`.

        ``compression``: ``"gzip"`` (default), ``"zstd"`` (zstd CLI) or ``"none"``.
        """
        if compression not in ("gzip", "zstd", "none"):
            raise ValueError("compression must be gzip, zstd or none")
        if MEDIA_TYPES[self.media_types]["layer"].get(compression) is None:
            raise ValueError("%s images cannot have %s layers" % (self.media_types, compression))
        tar_tmp = self._tmp()
        try:
            with open(tar_tmp, "wb") as f:
                write_tar(entries, f)
            return self.add_tar_layer(tar_tmp, compression, compresslevel)
        finally:
            if os.path.exists(tar_tmp):
                os.unlink(tar_tmp)

    def add_tar_layer(self, tar_path, compression="gzip", compresslevel=6):
        """Compress an existing uncompressed tar file into a layer blob.

        Lets tests hand-craft tars (e.g. malformed ones). Returns a :class:`Layer`.
        """
        diff_id, usize = _sha256_file(tar_path)
        out = self._tmp()
        try:
            if compression == "none":
                shutil.copyfile(tar_path, out)
            elif compression == "gzip":
                with open(tar_path, "rb") as src, open(out, "wb") as raw, \
                        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                      compresslevel=compresslevel) as gz:
                    shutil.copyfileobj(src, gz, 1 << 20)
            else:
                subprocess.run(["zstd", "-q", "-f", "-3", "-o", out, tar_path],
                               check=True, timeout=600, capture_output=True)
            digest, size = self._commit_file(out)
        finally:
            if os.path.exists(out):
                os.unlink(out)
        mt = MEDIA_TYPES[self.media_types]["layer"][compression]
        return Layer(mt, digest, size, diff_id=diff_id, compression=compression,
                     uncompressed_size=usize)

    # -- images ------------------------------------------------------------
    def add_image(self, layers, platform=None, env=("PATH=/usr/local/sbin:/usr/local/bin:"
                                                     "/usr/sbin:/usr/bin:/sbin:/bin",),
                  cmd=None, entrypoint=None, working_dir=None, user=None, labels=None,
                  exposed_ports=None, stop_signal=None, created="2023-11-14T22:13:20Z",
                  annotations=None, tag=None, extra_config=None):
        """Write config + manifest for ``layers``; return an :class:`Image`.

        ``platform`` is ``"linux/amd64"``-style or a dict (default: native).
        ``tag`` (optional) adds an index.json entry named ``tag``.
        ``extra_config`` is merged into the config's ``config`` object.
        """
        mts = MEDIA_TYPES[self.media_types]
        layers = [l.with_media_types(self.media_types) for l in layers]
        plat = parse_platform(platform) if platform else native_platform()
        cc = {}
        if env is not None:
            cc["Env"] = list(env)
        for key, val in (("Cmd", cmd), ("Entrypoint", entrypoint), ("WorkingDir", working_dir),
                         ("User", user), ("Labels", labels), ("StopSignal", stop_signal)):
            if val is not None:
                cc[key] = list(val) if isinstance(val, (list, tuple)) else val
        if exposed_ports:
            cc["ExposedPorts"] = {p: {} for p in exposed_ports}
        cc.update(extra_config or {})
        config = {"architecture": plat["architecture"], "os": plat["os"], "created": created,
                  "config": cc,
                  "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
                  "history": [{"created": created, "created_by": "berthtest layer %d" % i}
                              for i in range(len(layers))]}
        if plat.get("variant"):
            config["variant"] = plat["variant"]
        config_desc = self._add_json(config, mts["config"])
        manifest = {"schemaVersion": 2, "mediaType": mts["manifest"],
                    "config": config_desc.to_json(),
                    "layers": [Descriptor(l.media_type, l.digest, l.size).to_json()
                               for l in layers]}
        if annotations and self.media_types == "oci":
            manifest["annotations"] = dict(annotations)
        mdesc = self._add_json(manifest, mts["manifest"])
        mdesc.platform = plat
        img = Image(mdesc, config_desc, layers, manifest, config, plat)
        if tag:
            self.add_tag(tag, mdesc)
        return img

    def multi_arch_index(self, images, tag=None, **image_kw):
        """Write an image index (OCI index or Docker manifest list).

        ``images`` maps a platform (``"linux/arm64/v8"`` or dict) to either a
        list of :class:`Layer` (an image is built for that platform with
        ``image_kw``; layer blobs can be shared, only the config differs) or
        an already built :class:`Image`. Returns an :class:`Index`; ``tag``
        names it in index.json.
        """
        built = []
        for plat, spec in images.items():
            if isinstance(spec, Image):
                img = spec
            else:
                img = self.add_image(spec, platform=plat, **image_kw)
            built.append(img)
        mts = MEDIA_TYPES[self.media_types]
        index = {"schemaVersion": 2, "mediaType": mts["index"],
                 "manifests": [dict(Descriptor(i.manifest.media_type, i.manifest.digest,
                                               i.manifest.size).to_json(),
                                    platform=i.platform) for i in built]}
        desc = self._add_json(index, mts["index"])
        if tag:
            self.add_tag(tag, desc)
        return Index(desc, built, index)

    # -- index.json --------------------------------------------------------
    def add_tag(self, name, descriptor):
        """Point ``name`` (``org.opencontainers.image.ref.name``) at ``descriptor``
        in index.json so ``oci:DIR:name`` resolves; replaces an existing ``name``.

        Docker-typed manifests / manifest lists are listed with the matching
        OCI media type in index.json (the blob keeps its Docker type): skopeo
        skips index.json entries of any other type.
        """
        if isinstance(descriptor, (Image,)):
            descriptor = descriptor.manifest
        elif isinstance(descriptor, Index):
            descriptor = descriptor.descriptor
        self._index["manifests"] = [m for m in self._index["manifests"]
                                    if m.get("annotations", {}).get(REF_NAME) != name]
        # skopeo's oci: transport only resolves index.json entries typed as OCI
        # manifest/index; it then sniffs the blob's real (Docker) type itself.
        media_type = _INDEX_JSON_TYPE.get(descriptor.media_type, descriptor.media_type)
        entry = {"mediaType": media_type, "digest": descriptor.digest,
                 "size": descriptor.size, "annotations": {REF_NAME: name}}
        self._index["manifests"].append(entry)
        self._write_index()

    def _write_index(self):
        tmp = self._index_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self._index, f, indent=1)
        os.replace(tmp, self._index_path)
