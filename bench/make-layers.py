#!/usr/bin/python3
"""Build a realistic multi-layer benchmark image: many small files AND a few big ones.

    bench/make-layers.py OUT_DIR [--compression gzip|zstd|none] [--scale 1.0] [--tag latest] [--seed 1]

Writes OUT_DIR/layout (OCI image layout; reused if it exists, so gzip and zstd variants can share one
layout under two tags) with berthtest's ImageBuilder, and OUT_DIR/tars/<tag>/<n>.tar.<ext> (the layer
blobs as files, for the plain `tar -x` comparison). Prints one JSON object: tag, manifest digest,
layers (digest, size, uncompressed size, entries), compressed_bytes, uncompressed_bytes, files.

The layers, at scale 1 (≈ 230 MiB uncompressed, ≈ 120-130 MiB compressed):
  1. "base system": 4000 small text-like files (0.2-16 KiB, compressible about 3:1) in a deep tree,
     symlinks, hardlinks, a few setuid binaries, device nodes, owners other than root;
  2. "libraries": 600 binary-like files (16 KiB-1 MiB, partly compressible);
  3. "application": 2 big files (60 MiB semi-compressible, 40 MiB random) and 800 small files;
  4. "config": rewrites some files, deletes others (whiteouts, an opaque directory).
"""
import argparse
import json
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from berthtest.images import (Device, Dir, File, Hardlink, ImageBuilder, Opaque, Symlink,  # noqa: E402
                              Whiteout)

WORDS = ("the of and to in is for that with on as by this from be are at or an it not which have "
         "static const int return struct void char unsigned size_t if else while for break continue "
         "error config value path file directory system library function module package version "
         "include define endif ifdef license copyright http https www org com json yaml key name").split()


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        # A 4 MiB pool of text and one of "binary" data (random with repeats) to slice files from.
        words = [self.rng.choice(WORDS) for _ in range(800000)]
        lines, line = [], []
        for w in words:
            line.append(w)
            if len(line) > self.rng.randint(4, 14):
                lines.append(" ".join(line))
                line = []
        self.text = ("\n".join(lines)).encode()[:4 << 20]
        chunks = []
        while sum(len(c) for c in chunks) < (4 << 20):
            if self.rng.random() < 0.5:
                chunks.append(self.rng.randbytes(self.rng.randint(64, 4096)))
            else:
                chunks.append(bytes(self.rng.randint(16, 2048)))
        self.binary = b"".join(chunks)[:4 << 20]

    def slice(self, pool, size):
        out = bytearray()
        while len(out) < size:
            off = self.rng.randrange(0, len(pool) - 1)
            out += pool[off:off + (size - len(out))]
        return bytes(out)

    def text_file(self, size):
        return self.slice(self.text, size)

    def binary_file(self, size):
        return self.slice(self.binary, size)


class _Stream:
    """size bytes from a generator of chunks, read sequentially (big files never sit in memory)."""

    def __init__(self, size, chunk_fn):
        self.left, self.chunk_fn, self.buf = size, chunk_fn, b""

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.left
        n = min(n, self.left)
        while len(self.buf) < n:
            self.buf += self.chunk_fn(1 << 20)
        out, self.buf = self.buf[:n], self.buf[n:]
        self.left -= n
        return out


def layer_base(g, scale):
    e = [Dir("etc"), Dir("usr"), Dir("usr/bin"), Dir("usr/lib"), Dir("usr/share"), Dir("usr/share/doc"),
         Dir("var"), Dir("var/lib", uid=0), Dir("var/empty", mode=0o700), Dir("dev"), Dir("tmp", mode=0o1777),
         Symlink("bin", "usr/bin"), Symlink("lib", "usr/lib"), Symlink("sbin", "usr/bin"),
         Device("dev/null", "c", 1, 3), Device("dev/zero", "c", 1, 5)]
    n = int(4000 * scale)
    for d in range(40):
        e.append(Dir(f"usr/share/doc/pkg{d:02d}"))
    for i in range(n):
        size = int(g.rng.lognormvariate(7.5, 1.0)) % (16 << 10) + 200
        path = f"usr/share/doc/pkg{i % 40:02d}/file{i:05d}.txt"
        e.append(File(path, g.text_file(size), uid=(0 if i % 7 else 100), gid=(0 if i % 5 else 100)))
    for i in range(int(200 * scale)):
        e.append(File(f"usr/bin/tool{i:03d}", g.binary_file(g.rng.randint(8 << 10, 64 << 10)),
                      mode=0o4755 if i % 50 == 0 else 0o755))
        if i % 10 == 0:
            e.append(Hardlink(f"usr/bin/alias{i:03d}", f"usr/bin/tool{i:03d}",
                              mode=0o4755 if i % 50 == 0 else 0o755))
        if i % 4 == 0:
            e.append(Symlink(f"usr/bin/link{i:03d}", f"tool{i:03d}"))
    for i in range(100):
        e.append(File(f"etc/conf{i:03d}.conf", g.text_file(g.rng.randint(100, 3000))))
    return e


def layer_libs(g, scale):
    e = [Dir("usr/lib/x86_64-linux-gnu")]
    for i in range(int(600 * scale)):
        size = min(int(g.rng.lognormvariate(11.0, 1.0)), 1 << 20) + (16 << 10)
        e.append(File(f"usr/lib/x86_64-linux-gnu/lib{i:03d}.so.1", g.binary_file(size), mode=0o644))
        e.append(Symlink(f"usr/lib/x86_64-linux-gnu/lib{i:03d}.so", f"lib{i:03d}.so.1"))
    return e


def layer_app(g, scale):
    big1, big2 = int((60 << 20) * scale), int((40 << 20) * scale)
    e = [Dir("opt"), Dir("opt/app"), Dir("opt/app/data"), Dir("opt/app/static"),
         File("opt/app/data/model.bin", stream=(big1, _Stream(big1, g.binary_file))),
         File("opt/app/data/blob.rnd", stream=(big2, _Stream(big2, g.rng.randbytes))),
         Dir("etc/app")]
    for i in range(int(800 * scale)):
        e.append(File(f"opt/app/static/asset{i:04d}.js", g.text_file(g.rng.randint(500, 20000))))
    return e


def layer_config(g, scale):
    e = [File("etc/conf000.conf", g.text_file(1000)), File("etc/app/app.conf", g.text_file(2000)),
         Whiteout("etc/conf001.conf"), Whiteout("usr/share/doc/pkg39"), Opaque("opt/app/static"),
         File("opt/app/static/index.html", g.text_file(4000)), Dir("var/lib/app", mode=0o750, uid=1000, gid=1000)]
    for i in range(50):
        e.append(File(f"var/lib/app/state{i:02d}", g.text_file(1000), uid=1000, gid=1000))
    return e


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--compression", choices=("gzip", "zstd", "none"), default="gzip")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--tag", default="latest")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    t0 = time.monotonic()
    b = ImageBuilder(os.path.join(a.out_dir, "layout"))
    tars = os.path.join(a.out_dir, "tars", a.tag)
    os.makedirs(tars, exist_ok=True)
    ext = {"gzip": "tar.gz", "zstd": "tar.zst", "none": "tar"}[a.compression]
    layers, info, files = [], [], 0
    for n, fn in enumerate((layer_base, layer_libs, layer_app, layer_config)):
        g = Gen(a.seed * 100 + n)  # the same content for every compression
        entries = fn(g, a.scale)
        files += sum(isinstance(x, File) for x in entries)
        l = b.add_layer(entries, compression=a.compression, compresslevel=6)
        layers.append(l)
        shutil.copyfile(b.blob_path(l.digest), os.path.join(tars, f"{n}.{ext}"))
        info.append({"digest": l.digest, "size": l.size, "uncompressed_size": l.uncompressed_size,
                     "entries": len(entries), "file": os.path.join(tars, f"{n}.{ext}")})
    img = b.add_image(layers, cmd=["/bin/true"], tag=a.tag)
    json.dump({"tag": a.tag, "layout": b.layout_dir, "manifest": img.manifest.digest,
               "compression": a.compression, "layers": info, "files": files,
               "compressed_bytes": sum(l.size for l in layers) + img.manifest.size + img.config.size,
               "uncompressed_bytes": sum(l.uncompressed_size for l in layers),
               "build_seconds": round(time.monotonic() - t0, 1)}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
