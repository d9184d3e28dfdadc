"""berth's content store on disk, as the tests inspect it (read-only): committed blobs and the partial
downloads under ingest/."""
import hashlib
from pathlib import Path

CONTENT = Path("/var/lib/berth/content")
BLOBS = CONTENT / "blobs" / "sha256"
INGEST = CONTENT / "ingest"


def hexof(digest):
    return digest.split(":", 1)[1]


def blob_file(digest):
    return BLOBS / hexof(digest)


def have_blob(digest):
    return blob_file(digest).exists()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def assert_blob_committed(desc):
    """The blob of descriptor ``desc`` is in the store with exactly its size and digest."""
    path = blob_file(desc.digest)
    assert path.is_file(), f"blob {desc.digest} ({desc.media_type}) missing from {BLOBS}"
    assert path.stat().st_size == desc.size, f"{path}: size {path.stat().st_size} != {desc.size}"
    assert sha256_file(path) == desc.digest, f"{path} does not hash to its name"


def ingest_entries_for(digest):
    """Partial downloads of ``digest`` (whatever the ingest key layout, the hex appears in it)."""
    if not INGEST.is_dir():
        return []
    return [p for p in INGEST.iterdir() if hexof(digest) in p.name]


def ingest_data_file(digest):
    """The largest regular file of digest's ingest entries (the partial data), or None."""
    best, best_size = None, -1
    for entry in ingest_entries_for(digest):
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        for f in files:
            try:
                size = f.stat().st_size
            except FileNotFoundError:
                continue
            if size > best_size:
                best, best_size = f, size
    return best


def ingest_data_size(digest):
    """Bytes in the largest regular file of digest's ingest entries (0 if none)."""
    best = 0
    for entry in ingest_entries_for(digest):
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        for f in files:
            try:
                best = max(best, f.stat().st_size)
            except FileNotFoundError:
                pass
    return best
