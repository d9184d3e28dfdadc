"""Issue 12, hardening round 2 (findings 1, 2, 3, 7, 8, 9, 12; the polkit matrix of finding 0 is
test_polkit_matrix.py). Each test reproduces the attack as the principal the finding names -- a member
of group berth, a stranger, a non-root admin granted one action, a hostile registry -- and asserts that
it now fails, with the specific refusal."""
import hashlib
import json
import os
import re
import subprocess
import threading
import uuid
from pathlib import Path


from berthtest import stack
from berthtest.containers import ok
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.images import ImageBuilder, Dir, File, MEDIA_TYPES, random_file_layer
from berthtest.stack import berthctl, busctl, wait_for

BROKER = "org.berth.Broker1"
BROKER_PATH = "/org/berth/Broker1"
MANAGER = "org.berth.Broker1.Manager"
TRANSFER = "org.berth.Broker1.Transfer"
STATE = Path("/var/lib/berth")


def refused(p, text):
    assert p.returncode != 0, f"expected a refusal, got success:\n{p.stdout}\n{p.stderr}"
    assert text in p.stderr, p.stderr
    return p


def images():
    data = json.loads(ok(busctl("--json=short", "call", BROKER, BROKER_PATH, MANAGER, "ListImages")).stdout)
    return {r[0]: r[1] for r in data["data"][0]}


def small_image(b, tag):
    name = uuid.uuid4().hex
    layer = b.add_layer([Dir("data"), File(f"data/{name}", os.urandom(4096))])
    return b.add_image([layer], tag=tag)


def rm_images(*refs):
    for ref in refs:
        berthctl("images", "rm", ref)


# ---- finding 1: TagImage plants names ----------------------------------------------------------

def test_hardening_f1_tag_digest_plant(registry, member, tmp_path):
    """A member pulls their own image and tries to make it another image's name: pinned to the real
    image's digest, an absent tag in a registry's namespace, docker.io/library/debian:latest."""
    b = ImageBuilder(tmp_path / "layout")
    real = small_image(b, "real")
    evil = small_image(b, "evil")
    registry.push(b.layout_dir, "real", "test/f1-real:v1")
    registry.push(b.layout_dir, "evil", "test/f1-evil:v1")
    real_ref, evil_ref = f"{registry.host}/test/f1-real:v1", f"{registry.host}/test/f1-evil:v1"
    ok(berthctl("images", "pull", "--no-unpack", evil_ref, user=member))
    planted = [f"{registry.host}/test/f1-real@{real.manifest.digest}",
               f"{registry.host}/test/f1-real:v1",
               "docker.io/library/debian:latest"]
    try:
        # The real image's digest on the member's content: refused for everyone, root included.
        p = berthctl("images", "tag", evil_ref, planted[0], user=member)
        refused(p, f"names digest {real.manifest.digest}")
        refused(berthctl("images", "tag", evil_ref, planted[0]), f"names digest {real.manifest.digest}")
        # A name in a registry's namespace is what a pull or an import creates: import's action.
        for target in planted[1:]:
            refused(berthctl("images", "tag", evil_ref, target, user=member), "org.berth.image-import")
        have = images()
        assert not set(planted) & set(have), have
        # What stays allowed: the host's own namespace, and the image's own digest under any name.
        ok(berthctl("images", "tag", evil_ref, "localhost/f1-mine:v1", user=member))
        own = f"{registry.host}/test/f1-real@{evil.manifest.digest}"
        ok(berthctl("images", "tag", evil_ref, own, user=member))
        have = images()
        assert have["localhost/f1-mine:v1"] == have[own] == evil.manifest.digest
        # Root (who holds every action) may still name anything; then pulling the real name is real.
        ok(berthctl("images", "pull", "--no-unpack", real_ref))
        assert images()[real_ref] == real.manifest.digest
    finally:
        rm_images(evil_ref, real_ref, "localhost/f1-mine:v1", f"{registry.host}/test/f1-real@{evil.manifest.digest}",
                  *planted)


# ---- finding 12: two platforms of an index sharing one config blob -------------------------------

def transfer_prop(path, prop):
    p = ok(busctl("--json=short", "get-property", BROKER, path, TRANSFER, prop))
    return json.loads(p.stdout)["data"]


def test_hardening_f12_platforms_share_one_config(fake_registry, berth_config, tmp_path):
    """arm v6 and v7 with one config blob (as real images have): the second manifest is answered only
    once the broker has read the config (its Layers row says done), so no download of it follows."""
    b = ImageBuilder(tmp_path / "layout")
    layer = b.add_layer([Dir("data"), File(f"data/{uuid.uuid4().hex}", os.urandom(4096))])
    # One config (it says arm/v7) for both entries; the manifests differ by an annotation only.
    v6 = b.add_image([layer], platform="linux/arm/v7")
    v7 = b.add_image([layer], platform="linux/arm/v7", annotations={"org.example.variant": "7"})
    assert v6.config.digest == v7.config.digest and v6.manifest.digest != v7.manifest.digest
    mts = MEDIA_TYPES["oci"]
    entries = [dict(v6.manifest.to_json(), platform={"os": "linux", "architecture": "arm", "variant": "v6"}),
               dict(v7.manifest.to_json(), platform={"os": "linux", "architecture": "arm", "variant": "v7"})]
    index = json.dumps({"schemaVersion": 2, "mediaType": mts["index"], "manifests": entries}).encode()
    reg = fake_registry(b.layout_dir)
    reg.add_manifest("test/f12-shared", "v1", index, mts["index"])
    berth_config.registry(reg.host, plain_http=True)
    state = {"path": None}
    config_read = threading.Event()

    def fault(h, method, path):
        if path.endswith("/manifests/" + v7.manifest.digest) and not config_read.is_set():
            def read():
                if state["path"] is None:
                    return False
                rows = {r[0]: r[2] for r in transfer_prop(state["path"], "Layers")}
                return rows.get(v6.config.digest) in ("done", "exists")
            wait_for(read, timeout=60, what="the shared config to be read")
            config_read.set()
        return False

    reg.fault = fault
    ref = f"{reg.host}/test/f12-shared:v1"
    try:
        p = ok(busctl("call", BROKER, BROKER_PATH, MANAGER, "PullImage", "sst", ref, "", "3"))
        state["path"] = re.search(r'"(/\S+)"', p.stdout).group(1)
        wait_for(lambda: transfer_prop(state["path"], "Result") != "", timeout=120, what="the pull to end")
        assert config_read.is_set()
        assert (transfer_prop(state["path"], "Result"), transfer_prop(state["path"], "Error")) == ("done", "")
        assert images()[ref] == "sha256:" + hashlib.sha256(index).hexdigest()
    finally:
        rm_images(ref)


# ---- finding 8: unit and state modes ------------------------------------------------------------

UNIT_DIR_KINDS = {"StateDirectory": "/var/lib", "LogsDirectory": "/var/log", "RuntimeDirectory": "/run",
                  "ConfigurationDirectory": "/etc"}


def unit_directories():
    """{path: (mode, unit)} for every *Directory= of the four built units (systemd's default 0755)."""
    out = {}
    for unit in sorted((stack.BUILD / "units").glob("berth-*.service")):
        settings = {}
        for line in unit.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                settings.setdefault(k.strip(), []).append(v.strip())
        for kind, base in UNIT_DIR_KINDS.items():
            mode = int(settings.get(kind + "Mode", ["0755"])[-1], 8)
            for v in settings.get(kind, []):
                for d in v.split():
                    out[f"{base}/{d}"] = (mode, unit.name)
    return out


def tmpfiles_directories():
    out = {}
    for line in (stack.BUILD / "units" / "tmpfiles.d" / "berth.conf").read_text().splitlines():
        f = line.split()
        if f and f[0] == "d":
            out[f[1]] = int(f[2], 8)
    return out


def test_hardening_f8_unit_and_tmpfiles_modes_agree():
    """systemd applies a unit's *DirectoryMode= at every start, tmpfiles at boot: where they disagree,
    the store's mode flips at each start (the fetcher's credentials dir was 0750 by its unit, 0700 by
    tmpfiles; the snapshot store 0755 by systemd's default). Every directory a unit names has the mode
    tmpfiles gives it, and the stores that hold secrets or container roots are 0700."""
    units, tmpfiles = unit_directories(), tmpfiles_directories()
    assert units, "no *Directory= settings found in the built units"
    for path, (mode, unit) in units.items():
        assert path in tmpfiles, f"{unit}: {path} is not in tmpfiles.d"
        assert mode == tmpfiles[path], f"{unit}: {path} is {mode:o}, tmpfiles says {tmpfiles[path]:o}"
    for d in ("snapshots", "containers", "fetcher", "meta", "content"):
        path = f"/var/lib/berth/{d}"
        assert tmpfiles[path] == 0o700, f"{path} is {tmpfiles[path]:o} in tmpfiles.d"
        if path in units:
            assert units[path][0] == 0o700, (path, units[path])


# ---- finding 7: transfers readable by strangers ----------------------------------------------------

MEMBER2 = "berth-test-member2"

# Run as another user: subscribes to every Transfer signal, makes sure the match is in place (a round
# trip), says "ready"; on a line on stdin, does a round trip to the broker (its reply comes after any
# signal the broker sent before it) and prints the signals it got as JSON.
EAVESDROPPER = r'''
import json, sys
from gi.repository import Gio, GLib
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
seen = []
bus.signal_subscribe(None, "org.berth.Broker1.Transfer", None, None, None, Gio.DBusSignalFlags.NONE,
                     lambda c, s, p, i, n, a: seen.append([p, n]))
bus.signal_subscribe(None, "org.freedesktop.DBus.Properties", "PropertiesChanged", None,
                     "org.berth.Broker1.Transfer", Gio.DBusSignalFlags.NONE,
                     lambda c, s, p, i, n, a: seen.append([p, n]))
bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId", None,
              None, Gio.DBusCallFlags.NONE, -1, None)
print("ready", flush=True)
sys.stdin.readline()
bus.call_sync("org.berth.Broker1", "/org/berth/Broker1", "org.freedesktop.DBus.Peer", "Ping", None, None,
              Gio.DBusCallFlags.NONE, -1, None)
ctx = GLib.MainContext.default()
while ctx.pending():
    ctx.iteration(False)
print(json.dumps(seen), flush=True)
'''


def test_hardening_f7_transfer_private_to_its_owner(registry, proxies, berth_config, member, outsider,
                                                     tmp_path):
    stack.ensure_user(MEMBER2, groups=["berth"])
    b = ImageBuilder(tmp_path / "layout")
    big = b.add_layer(random_file_layer(4 << 20, seed=int.from_bytes(os.urandom(4), "big")), compression="none")
    b.add_image([big], tag="latest")
    registry.push(b.layout_dir, "latest", "test/f7-private:v1")
    px = proxies(registry.port, hold_blobs_after=1 << 20)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/f7-private:v1"
    spies = {u: subprocess.Popen(["runuser", "-u", u, "--", "/usr/bin/python3", "-c", EAVESDROPPER],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for u in (outsider, MEMBER2)}
    try:
        for u, s in spies.items():
            assert s.stdout.readline().strip() == "ready", u
        p = ok(busctl("call", BROKER, BROKER_PATH, MANAGER, "PullImage", "sst", ref, "", "2", user=member))
        path = re.search(r'"(/\S+)"', p.stdout).group(1)
        px.wait_held()
        # Another member and a stranger: refused, naming the owner rule (the stranger is not even asked
        # about by polkit). The owner and root read it.
        for u in (outsider, MEMBER2):
            refused(busctl("get-property", BROKER, path, TRANSFER, "Reference", user=u), "belongs to another user")
            refused(busctl("call", BROKER, path, "org.freedesktop.DBus.Properties", "GetAll", "s", TRANSFER,
                           user=u), "belongs to another user")
            listed = ok(busctl("call", BROKER, BROKER_PATH, MANAGER, "ListTransfers", user=MEMBER2)).stdout
            assert path not in listed, listed
        assert ref in ok(busctl("get-property", BROKER, path, TRANSFER, "Reference", user=member)).stdout
        assert ref in ok(busctl("call", BROKER, path, "org.freedesktop.DBus.Properties", "GetAll", "s", "",
                                user=member)).stdout
        assert path in ok(busctl("call", BROKER, BROKER_PATH, MANAGER, "ListTransfers", user=member)).stdout
        assert transfer_prop(path, "State") == "downloading"
        px.release()
        wait_for(lambda: transfer_prop(path, "Result") != "", timeout=120, what="the pull to end")
        assert transfer_prop(path, "Result") == "done", transfer_prop(path, "Error")
        # Not one Progress, PropertiesChanged or Finished of it reached anyone but the owner.
        for u, s in spies.items():
            out, _ = s.communicate("sync\n", timeout=60)
            seen = json.loads(out.strip().splitlines()[-1])
            assert [x for x in seen if x[0] == path] == [], (u, seen)
    finally:
        px.release()
        for s in spies.values():
            if s.poll() is None:
                s.kill()
                s.wait()
        rm_images(ref)


# ---- finding 3: MountImage onto any directory ---------------------------------------------------

MOUNTER = "bg-f3-mounter"
F3_RULES = Path("/etc/polkit-1/rules.d/48-berth-test-f3.rules")
F3_IMAGE = "localhost/berth-f3:latest"


def test_hardening_f3_mount_needs_an_owned_writable_target(tmp_path):
    """A non-root admin granted the mount action (and maintenance, which MountImage used to need) covers a
    root-owned directory with an image view: refused now (fusermount's rule); their own writable
    directory still works, and views are read-only, nosuid, nodev."""
    stack.ensure_user(MOUNTER)
    archive = tmp_path / "busybox.tar"
    subprocess.run([str(stack.TOP / "tools" / "busybox-image"), "--name", F3_IMAGE, str(archive)], check=True,
                   capture_output=True)
    ok(berthctl("images", "import", str(archive)))
    F3_RULES.write_text('polkit.addRule(function(action, subject) {\n'
                        f'  if (subject.user == "{MOUNTER}" && (action.id == "org.berth.image-mount" ||\n'
                        '      action.id == "org.berth.maintenance"))\n'
                        '    return polkit.Result.YES;\n});\n')
    victim = Path(f"/var/tmp/berth-f3-{uuid.uuid4().hex[:8]}")  # root's, as /etc/sudoers.d is
    victim.mkdir(mode=0o755)
    (victim / "keep").write_text("root's file\n")
    own = Path(f"/home/{MOUNTER}/view-{uuid.uuid4().hex[:8]}")
    readonly = Path(f"/home/{MOUNTER}/ro-{uuid.uuid4().hex[:8]}")
    try:
        stack.wait_for(lambda: busctl("call", BROKER, BROKER_PATH, MANAGER, "PruneContent", "t", str(1 << 62),
                                      user=MOUNTER).stderr.find("Unknown flags") >= 0,
                       timeout=60, what="polkitd to load the f3 rules")
        p = berthctl("images", "mount", F3_IMAGE, str(victim), user=MOUNTER)
        refused(p, "not owned by the caller")
        assert (victim / "keep").read_text() == "root's file\n"
        assert str(victim) not in Path("/proc/self/mountinfo").read_text()

        for d, mode in ((own, 0o755), (readonly, 0o555)):
            stack.run(["install", "-d", "-m", oct(mode)[2:], "-o", MOUNTER, str(d)], check=True)
        refused(berthctl("images", "mount", F3_IMAGE, str(readonly), user=MOUNTER), "may not write")
        ok(berthctl("images", "mount", F3_IMAGE, str(own), user=MOUNTER))
        try:
            assert (own / "bin" / "busybox").exists()
            opts = stack.run(["findmnt", "-n", "-o", "OPTIONS", str(own)]).stdout.strip().split(",")
            assert {"ro", "nosuid", "nodev"} <= set(opts), opts
        finally:
            ok(berthctl("images", "unmount", str(own), user=MOUNTER))
        # Root may still mount anywhere (it could anyway).
        ok(berthctl("images", "mount", F3_IMAGE, str(victim)))
        ok(berthctl("images", "unmount", str(victim)))
    finally:
        F3_RULES.unlink(missing_ok=True)
        for d in (victim, own, readonly):
            subprocess.run(["umount", "-l", str(d)], capture_output=True)
            subprocess.run(["rm", "-rf", str(d)], capture_output=True)
        berthctl("images", "rm", F3_IMAGE)
