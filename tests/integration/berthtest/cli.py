"""berthctl's views of the store, as the tests read them: images, content, snapshots, inspect, and a
mounted image view. Plus tar_dir, which packs an OCI layout directory the way `images import` reads it."""
import json
import os
import tarfile
from pathlib import Path

from .stack import berthctl


def _json(*args, user=None):
    p = berthctl(*args, user=user)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def images(user=None):
    """`berthctl images ls --json` as {reference: record}."""
    return {i["reference"]: i for i in _json("images", "ls", "--json", user=user)}


def content(user=None):
    """`berthctl content ls --json` as {digest: record}."""
    return {b["digest"]: b for b in _json("content", "ls", "--json", user=user)}


def snapshots():
    """`berthctl snapshots ls --json` as {chain_id: record}."""
    return {s["chain_id"]: s for s in _json("snapshots", "ls", "--json")}


def inspect(ref):
    """`berthctl images inspect REF`, parsed."""
    return _json("images", "inspect", ref)


class ImageView:
    """`with ImageView(ref, target) as root:` a read-only view of an unpacked image (images mount /
    unmount); an unmount failure is an error unless the block already raised."""

    def __init__(self, ref, target):
        self.ref, self.target = ref, Path(target)

    def __enter__(self):
        self.target.mkdir(parents=True, exist_ok=True)
        p = berthctl("images", "mount", self.ref, str(self.target))
        assert p.returncode == 0, p.stderr
        return self.target

    def __exit__(self, *exc):
        p = berthctl("images", "unmount", str(self.target))
        assert p.returncode == 0 or exc[0], p.stderr


def tar_dir(layout, out, compression=""):
    """Tar an OCI layout directory (entries relative to it, sorted; gzip when compression == "gz")."""
    mode = "w:gz" if compression == "gz" else "w"
    with tarfile.open(out, mode, format=tarfile.PAX_FORMAT) as t:
        for root, dirs, files in os.walk(layout):
            dirs.sort()
            for f in sorted(files):
                full = os.path.join(root, f)
                t.add(full, arcname=os.path.relpath(full, layout))
    return str(out)
