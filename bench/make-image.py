#!/usr/bin/python3
"""Build the benchmark image: an OCI layout with LAYERS gzip layers of incompressible random data.

    bench/make-image.py OUT_DIR [--layers 4] [--size-mib 30] [--seed 1]

Writes OUT_DIR/layout (an OCI image layout, tag "latest") with berthtest's ImageBuilder and prints
one JSON object: manifest and config digests, layers (digest, size), total_bytes.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from berthtest.images import ImageBuilder, random_file_layer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--size-mib", type=int, default=30, help="random bytes per layer")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--compresslevel", type=int, default=1,
                    help="gzip level (the data is random: the level changes build time, not size)")
    a = ap.parse_args()

    t0 = time.monotonic()
    b = ImageBuilder(os.path.join(a.out_dir, "layout"))
    layers = []
    for i in range(a.layers):
        entries = random_file_layer(a.size_mib * 1024 * 1024, seed=a.seed * 1000 + i,
                                    path="data/layer-%d.bin" % i)
        layers.append(b.add_layer(entries, compression="gzip", compresslevel=a.compresslevel))
    img = b.add_image(layers, cmd=["/bin/true"], tag="latest")
    total = img.manifest.size + img.config.size + sum(l.size for l in layers)
    json.dump({"layout": b.layout_dir, "manifest": img.manifest.digest, "config": img.config.digest,
               "layers": [{"digest": l.digest, "size": l.size} for l in layers],
               "total_bytes": total, "build_seconds": round(time.monotonic() - t0, 1)},
              sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
