"""The booted system test: berth from zero on a Debian 12 booted with systemd as PID 1.

One machine per session (booting and building berth inside is the expensive part); the tests in
test_booted.py each check one thing on it. A new check is one more function taking `machine` (and
`registry` for images), e.g. a container run once the engine has landed.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TOP = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(TOP / "tests" / "integration"))

from bootedmachine import FIGURES, INSIDE_INPUT, INSIDE_SRC, BootedMachine, pack_checkout  # noqa: E402

TOOLS = ["debootstrap", "systemd-nspawn", "nsenter", "git", "tar", "docker-registry", "skopeo"]


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("the booted system test runs as root (debootstrap, nspawn, cgroups)", 2)


def require_tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        msg = "missing tools: " + ", ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (tools/install-deps should have installed them)")
        pytest.skip(msg)


@pytest.fixture(scope="session")
def tree():
    require_tools()
    start = time.monotonic()
    p = subprocess.run([str(HERE / "mktree")], capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, f"tests/system/mktree failed:\n{p.stderr[-4000:]}"
    FIGURES["tree_seconds"] = round(time.monotonic() - start, 1)
    return p.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def machine(tree):
    """The booted system with berth brought up by the README's first command, tools/quickstart."""
    session_start = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix="berth-systest-in-", dir="/var/tmp"))
    try:
        n = pack_checkout(TOP, staging / "src.tar")
        shutil.copy(HERE / "pty-answer.py", staging / "pty-answer.py")
        with BootedMachine(tree, binds_ro=[(staging, INSIDE_INPUT)], log_dir=staging) as m:
            FIGURES["boot_seconds"] = round(time.monotonic() - session_start, 1)
            m.boot_problems = m.run(["systemctl", "--failed", "--no-legend", "--plain"]).stdout.strip()
            # Nothing of berth may be there before the quick start puts it there.
            m.preexisting = m.sh("ls -d /usr/local/bin/berthctl /usr/local/libexec/berth /usr/local/lib/*/berth "
                                 "/var/lib/berth "
                                 "/usr/share/dbus-1/system.d/org.berth.* /etc/berth 2>/dev/null; true").stdout.split()
            m.sh(f"mkdir -p {INSIDE_SRC} && tar -C {INSIDE_SRC} -xf {INSIDE_INPUT}/src.tar")
            start = time.monotonic()
            m.quickstart = m.run([f"{INSIDE_SRC}/tools/quickstart"], check=False, timeout=1200,
                                 properties=["WorkingDirectory=" + INSIDE_SRC])
            FIGURES["quickstart_seconds"] = round(time.monotonic() - start, 1)
            FIGURES["checkout_files"] = n
            assert m.quickstart.returncode == 0, (
                f"tools/quickstart failed in the booted system ({m.quickstart.returncode}):\n"
                f"{m.quickstart.stdout[-4000:]}\n{m.quickstart.stderr[-6000:]}")
            yield m
            # Keep the journal of a failed session for whoever reads the test output.
            journal = m.run(["journalctl", "-b", "--no-pager", "-o", "short-monotonic"], check=False).stdout
            (staging / "journal.txt").write_text(journal)
    finally:
        FIGURES["session_seconds"] = round(time.monotonic() - session_start, 1)
        if os.environ.get("BERTH_SYSTEST_KEEP"):
            print(f"\nbooted test files kept in {staging}", file=sys.stderr)
        else:
            shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def registry():
    """A registry on the host's loopback (the machine shares the host's network) with a busybox image
    as systest/busybox:1, :2 and :3."""
    from berthtest.images import ImageBuilder, busybox_rootfs_layer
    from berthtest.registry import Registry
    from berthtest.tools import empty_authfile, skopeo

    require_tools()
    work = Path(tempfile.mkdtemp(prefix="berth-systest-img-"))
    try:
        builder = ImageBuilder(work / "layout")
        layer = builder.add_layer(busybox_rootfs_layer())
        builder.add_image([layer], cmd=["/bin/sh"], tag="latest")
        with Registry() as reg:
            for tag in ("1", "2", "3"):
                skopeo("copy", "--dest-tls-verify=false", "--authfile", empty_authfile(),
                       f"oci:{builder.layout_dir}:latest", reg.ref(f"systest/busybox:{tag}"))
            yield reg
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.write_line("booted system test: " + ", ".join(f"{k}={v}" for k, v in FIGURES.items()))
