"""Every file berth ships for systemd, the bus and polkit, validated by the tool that reads it.

The files checked are the ones meson configured in the build dir (what `meson install` copies), so a
broken substitution fails here as well as a broken template. The units' exposure ceilings are in
test_foundation.py::test_units_verify_and_stay_hardened.
"""
import configparser
import subprocess
import tempfile
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.fixtures import require_tools

SERVICES = ["Broker", "Fetcher", "Unpacker", "Supervisor"]
# What this file and test_foundation.py::test_units_verify_and_stay_hardened check, by source template.
CHECKED = ({f"dbus/org.berth.{n}1.conf.in" for n in SERVICES} | {f"dbus/org.berth.{n}1.service.in" for n in SERVICES}
           | {f"units/berth-{n.lower()}.service.in" for n in SERVICES}
           | {"polkit/org.berth.policy.in", "units/sysusers.d/berth.conf.in", "units/tmpfiles.d/berth.conf.in",
              "dbus/org.berth.Broker1.xml"})
# Checked elsewhere: the polkit rules file is JavaScript that polkitd runs (test_polkit_matrix.py);
# install-policy is meson's install script, not shipped.
CHECKED_ELSEWHERE = {"polkit/org.berth.rules.in", "dbus/install-policy"}


def built(*parts):
    path = stack.BUILD.joinpath(*parts)
    assert path.exists(), f"{path} missing: tools/dev-up builds it (set BERTH_BUILD_DIR if built elsewhere)"
    return path


def test_every_shipped_file_is_checked():
    """A new unit, bus policy, activation file or polkit file is added to CHECKED with its check."""
    shipped = {str(p.relative_to(stack.TOP)) for d in ("dbus", "polkit", "units") for p in (stack.TOP / d).rglob("*")
               if p.is_file() and p.name != "meson.build" and p.suffix not in (".sh", ".py")}
    assert shipped == CHECKED | CHECKED_ELSEWHERE, shipped ^ (CHECKED | CHECKED_ELSEWHERE)


def test_introspection_xml_is_well_formed():
    require_tools("xmllint")
    p = stack.run(["xmllint", "--noout", "--nonet", str(stack.TOP / "dbus" / "org.berth.Broker1.xml")])
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_polkit_policy_is_valid_against_its_dtd():
    require_tools("xmllint")
    policy = built("polkit", "org.berth.policy")
    p = stack.run(["xmllint", "--noout", "--nonet", "--dtdvalid", "/usr/share/polkit-1/policyconfig-1.dtd",
                   str(policy)])
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_bus_policy_loads_in_dbus_daemon_without_a_warning(name):
    """dbus-daemon has no check-only mode: start one whose configuration includes the file, and
    require that it comes up and says nothing (unknown users, elements or attributes are warnings)."""
    require_tools("dbus-daemon")
    policy = built("dbus", f"org.berth.{name}1.conf")
    with tempfile.TemporaryDirectory(prefix="berth-busconf-") as d:
        conf = Path(d) / "bus.conf"
        conf.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={d}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow user="*"/></policy>
  <include>{policy}</include>
</busconfig>
""")
        daemon = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile",
                                   "--print-address=1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            address = daemon.stdout.readline().strip()
        finally:
            daemon.terminate()
            _, err = daemon.communicate(timeout=30)
        assert address.startswith("unix:"), f"dbus-daemon refused {policy.name}: {err}"
        # Raising its own fd limit is refused where the test runs without CAP_SYS_RESOURCE: not about us.
        warnings = [l for l in err.splitlines() if l.strip() and "Failed to set fd limit" not in l]
        assert warnings == [], f"dbus-daemon warned about {policy.name}: {err}"


@pytest.mark.parametrize("name", SERVICES)
def test_activation_file_hands_the_start_to_a_shipped_unit(name):
    path = built("dbus", f"org.berth.{name}1.service")
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(path)
    section = cp["D-BUS Service"]
    assert section["Name"] == f"org.berth.{name}1"
    assert Path(section["Exec"]).name == f"berth-{name.lower()}"
    unit = built("units", section["SystemdService"])
    unit_cp = configparser.ConfigParser(interpolation=None, strict=False)
    unit_cp.optionxform = str
    unit_cp.read(unit)
    assert unit_cp["Service"]["BusName"] == section["Name"]
    assert unit_cp["Service"]["ExecStart"] == section["Exec"]
    # The launch helper (no systemd) must start it as the user the unit names.
    assert section["User"] == unit_cp["Service"].get("User", "root")


def test_sysusers_and_tmpfiles_files_parse():
    require_tools("systemd-sysusers", "systemd-tmpfiles")
    with tempfile.TemporaryDirectory(prefix="berth-root-") as root:
        (Path(root) / "etc").mkdir()
        p = stack.run(["systemd-sysusers", f"--root={root}", str(built("units", "sysusers.d", "berth.conf"))])
        complaints = [l for l in p.stderr.splitlines() if l.strip() and not l.startswith("Creating ")]
        assert p.returncode == 0 and complaints == [], p.stderr
        assert "berth-broker:" in (Path(root) / "etc" / "passwd").read_text()
    # --create under a scratch root (with the host's users, which sysusers created): every line must
    # be understood.
    with tempfile.TemporaryDirectory(prefix="berth-root-") as root:
        (Path(root) / "etc").mkdir()
        for f in ("passwd", "group"):
            (Path(root) / "etc" / f).write_text(Path("/etc", f).read_text())
        p = stack.run(["systemd-tmpfiles", f"--root={root}", "--create",
                       str(built("units", "tmpfiles.d", "berth.conf"))])
        assert p.returncode == 0 and p.stderr.strip() == "", p.stderr
