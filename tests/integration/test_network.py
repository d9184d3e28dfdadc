"""Container networking through the standard CNI plugins (bridge, host-local, portmap, firewall, tuning,
loopback): the default bridge network, --net none/host/NAME, published ports, /etc/resolv.conf, /etc/hosts
and /etc/hostname, `network create/ls/inspect/rm`, addresses in inspect and on the bus, clean-up after
crashes, and the redis demo. As root and as a member of group berth (high ports on loopback only).

Traffic goes only to 127.0.0.1 and to the containers' own addresses.
"""
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.containers import berthctl, busybox_archive, inspect, ok
from berthtest.fixtures import require_tools

IMAGE = "localhost/berth-net-test:latest"
REDIS = "localhost/berth-redis:latest"
RUNTIME = Path("/run/berth/containers")
NETNS = Path("/run/berth/netns")
LEASES = Path("/var/lib/cni/networks")
NET_D = Path("/etc/berth/net.d")
SERVER = "while true; do echo hello | nc -l -p 8080; done"


def wait_removed(name, timeout=120):
    """`run --rm` answers with the exit status and removes the container after (docs/api.md, Wait's
    EXIT_ONLY): a test that compares host state waits until the removal, with its DEL, is done."""
    deadline = time.monotonic() + timeout
    while any(c["Name"] == name for c in json.loads(ok(berthctl("ls", "-a", "--json")).stdout)):
        assert time.monotonic() < deadline, f"{name} was not removed"
        time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_port(port, send=b"\n", timeout=30):
    """Connect to 127.0.0.1:port until something answers (the server may still be starting)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(send)
                data = s.recv(4096)
                if data:
                    return data
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"nothing answered on 127.0.0.1:{port}: {last}")


def container_id(name, user=None):
    return json.loads(ok(berthctl("inspect", name, user=user)).stdout)[0]["State"]["Id"]


@pytest.fixture(scope="module")
def image(tmp_path_factory, member):
    archive = busybox_archive(tmp_path_factory.mktemp("net") / "busybox.tar", IMAGE)
    ok(berthctl("images", "import", str(archive)))
    yield IMAGE


@pytest.fixture
def names():
    created = []
    yield created
    for n, user in created:
        berthctl("rm", "-f", n, user=user)


@pytest.fixture(scope="module")
def redis_image(tmp_path_factory, image):
    """Debian's redis-server and redis-cli with the libraries they link, over busybox (tools/redis-image)."""
    require_tools("redis-server", "redis-cli")
    archive = tmp_path_factory.mktemp("redis") / "redis.tar"
    subprocess.run([str(stack.TOP / "tools" / "redis-image"), "--name", REDIS, str(archive)], check=True,
                   capture_output=True)
    ok(berthctl("images", "import", str(archive)))
    yield REDIS


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                          text=True, timeout=30)


def wait_redis(port):
    stack.wait_for(lambda: redis_cli(port, "ping").stdout.strip() == "PONG", timeout=30,
                   what=f"redis on 127.0.0.1:{port}")


def subnet_of(network="bridge"):
    return json.loads(ok(berthctl("network", "inspect", network)).stdout)[0]["subnet"]


def in_subnet(addr, subnet):
    import ipaddress
    return ipaddress.ip_address(addr.split("/")[0]) in ipaddress.ip_network(subnet, strict=False)


# ---- the default network, --net none, /etc files -------------------------------------------------------

@pytest.mark.parametrize("who", ["root", "member"])
def test_default_network_is_a_bridge_with_address_route_and_etc_files(image, member, who):
    user = member if who == "member" else None
    p = ok(berthctl("run", "--rm", image, "sh", "-c",
                    "ip -o -4 addr show eth0; ip route; echo ==; cat /etc/hosts; echo ==; cat /etc/resolv.conf;"
                    " echo ==; cat /etc/hostname; hostname", user=user))
    addr = re.search(r"inet (\d+\.\d+\.\d+\.\d+/\d+)", p.stdout).group(1)
    assert in_subnet(addr, subnet_of())
    assert "default via" in p.stdout
    _, hosts, resolv, hostname = p.stdout.split("==\n")
    assert "127.0.0.1\tlocalhost" in hosts
    assert re.search(rf"^{re.escape(addr.split('/')[0])}\t", hosts, re.M), hosts
    name = hostname.split()[0]
    assert hostname.split()[1] == name and name in hosts
    # The host's name servers unless they are loopback ones (not reachable from the container).
    host_servers = [l.split()[1] for l in Path("/etc/resolv.conf").read_text().splitlines()
                    if l.startswith("nameserver")]
    for s in host_servers:
        if not s.startswith("127.") and s != "::1":
            assert f"nameserver {s}" in resolv
    assert "127.0.0.53" not in resolv


def test_net_none_has_loopback_only(image):
    p = ok(berthctl("run", "--rm", "--net", "none", image, "ip", "-o", "link"))
    assert [l.split(":")[1].strip() for l in p.stdout.splitlines()] == ["lo"]


def test_bridge_container_has_loopback_up(image):
    """lo is brought up when the namespace file is made (netns.c), not by a plugin: it is up, with its
    address, beside eth0."""
    p = ok(berthctl("run", "--rm", image, "sh", "-c", "ip -o link show lo; ip -o addr show lo"))
    assert re.search(r"^1: lo: <[^>]*\bUP\b", p.stdout, re.M), p.stdout
    assert "inet 127.0.0.1/8" in p.stdout, p.stdout


def test_net_host_is_privileged_for_members(image, member):
    p = berthctl("run", "--rm", "--net", "host", image, "true", user=member)
    assert p.returncode != 0 and "org.berth.container-privileged" in p.stderr


def test_hostname_dns_add_host(image, member):
    p = ok(berthctl("run", "--rm", "--hostname", "web1", "--dns", "192.0.2.53", "--add-host", "db:192.0.2.7",
                    image, "sh", "-c", "hostname; cat /etc/hostname /etc/resolv.conf /etc/hosts", user=member))
    lines = p.stdout.splitlines()
    assert lines[0] == "web1" and lines[1] == "web1"
    assert "nameserver 192.0.2.53" in p.stdout
    assert re.search(r"^192\.0\.2\.7\tdb$", p.stdout, re.M)
    assert re.search(r"^\d+\.\d+\.\d+\.\d+\tweb1 ", p.stdout, re.M)


def test_etc_files_are_read_only(image):
    p = berthctl("run", "--rm", image, "sh", "-c", "echo x >> /etc/hosts")
    assert p.returncode != 0


def test_bad_network_options_are_refused(image):
    p = berthctl("run", "--rm", "--net", "none", "-p", "18181:80", image, "true")
    assert p.returncode != 0 and "need a network" in p.stderr
    p = berthctl("run", "--rm", "--net", "nosuchnet", image, "true")
    assert p.returncode != 0 and "nosuchnet" in p.stderr
    p = berthctl("run", "--rm", "-p", "99999:80", image, "true")
    assert p.returncode != 0
    p = berthctl("run", "--rm", "--add-host", "a b:1.2.3.4", image, "true")
    assert p.returncode != 0


# ---- published ports ------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["root", "member"])
def test_published_port_is_reachable_on_loopback(image, member, names, who):
    user = member if who == "member" else None
    port = free_port()
    names.append((f"pub-{who}", user))
    ok(berthctl("run", "-d", "--name", f"pub-{who}", "-p", f"{port}:8080", image, "sh", "-c", SERVER,
                user=user))
    assert read_port(port) == b"hello\n"
    ports = inspect(f"pub-{who}", user)["NetworkSettings"]["ports"]
    assert ports == [{"host_ip": "127.0.0.1", "host_port": port, "container_port": 8080, "protocol": "tcp"}]


@pytest.mark.parametrize("spec", ["80:80", "0.0.0.0:{port}:80"])
def test_member_cannot_publish_low_or_public_ports(image, member, spec):
    p = berthctl("run", "--rm", "-p", spec.format(port=free_port()), image, "true", user=member)
    assert p.returncode != 0
    assert "org.berth.container-privileged" in p.stderr


def test_root_may_publish_a_low_port(image, names):
    names.append(("low", None))
    ok(berthctl("run", "-d", "--name", "low", "-p", "127.0.0.1:81:8080", image, "sh", "-c", SERVER))
    assert read_port(81) == b"hello\n"


def test_port_already_published_is_a_clear_error(image, member, names):
    port = free_port()
    names += [("first", member), ("second", None)]
    ok(berthctl("run", "-d", "--name", "first", "-p", f"{port}:8080", image, "sleep", "1000", user=member))
    p = berthctl("run", "-d", "--name", "second", "-p", f"{port}:8080", image, "sleep", "1000")
    assert p.returncode != 0
    assert f"{port}/tcp is already published by container 'first'" in p.stderr
    assert "second" not in [c["Name"] for c in json.loads(ok(berthctl("ls", "-a", "--json")).stdout)]


def test_port_in_use_on_the_host_is_a_clear_error(image):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = berthctl("run", "--rm", "-p", f"{port}:80", image, "true")
    assert p.returncode != 0 and "in use on the host" in p.stderr


# ---- containers reach each other -------------------------------------------------------------------------

def test_containers_reach_each_other_by_address_and_name(image, member, names):
    names += [("srv", member), ("late", member)]
    ok(berthctl("run", "-d", "--name", "srv", image, "sh", "-c", SERVER, user=member))
    addr = inspect("srv", member)["NetworkSettings"]["addresses"][0].split("/")[0]
    # The server answers one connection at a time (nc in a loop): each client retries until it is back.
    p = ok(berthctl("run", "--rm", image, "sh", "-c",
                    f"for i in $(seq 50); do echo | nc {addr} 8080 2>/dev/null && break; sleep 0.1; done; "
                    "for i in $(seq 50); do echo | nc srv 8080 2>/dev/null && break; sleep 0.1; done",
                    user=member))
    assert p.stdout == "hello\nhello\n"
    # A container started later is added to the hosts files of those already running.
    ok(berthctl("run", "-d", "--name", "late", image, "sleep", "1000", user=member))
    late = inspect("late", member)["NetworkSettings"]["addresses"][0].split("/")[0]
    srv_hosts = (RUNTIME / container_id("srv") / "hosts").read_text()
    assert re.search(rf"^{re.escape(late)}\t\S+ late$", srv_hosts, re.M), srv_hosts
    ok(berthctl("rm", "-f", "late", user=member))
    assert " late\n" not in (RUNTIME / container_id("srv") / "hosts").read_text()


# ---- networks ---------------------------------------------------------------------------------------------

def test_network_create_ls_inspect_rm(image, member, names):
    berthctl("network", "rm", "nettest1")
    ok(berthctl("network", "create", "--subnet", "10.123.45.0/24", "nettest1"))
    try:
        assert (NET_D / "nettest1.conflist").exists()
        rows = json.loads(ok(berthctl("--json", "network", "ls", user=member)).stdout)
        row = next(r for r in rows if r["name"] == "nettest1")
        assert row["subnet"] == "10.123.45.0/24" and row["gateway"] == "10.123.45.1"
        names.append(("on-net", member))
        ok(berthctl("run", "-d", "--name", "on-net", "--net", "nettest1", image, "sleep", "1000", user=member))
        assert inspect("on-net", member)["NetworkSettings"]["addresses"][0].startswith("10.123.45.")
        doc = json.loads(ok(berthctl("network", "inspect", "nettest1", user=member)).stdout)[0]
        assert doc["plugins"] == ["bridge", "portmap", "firewall", "tuning"]
        assert [c["name"] for c in doc["containers"]] == ["on-net"]
        bridge = doc["bridge"]
        assert Path(f"/sys/class/net/{bridge}/bridge").exists()
        p = berthctl("network", "rm", "nettest1")
        assert p.returncode != 0 and "in use" in p.stderr
        ok(berthctl("rm", "-f", "on-net", user=member))
    finally:
        berthctl("rm", "-f", "on-net")
        ok(berthctl("network", "rm", "nettest1"))
    assert not (NET_D / "nettest1.conflist").exists()
    assert not Path(f"/sys/class/net/{bridge}").exists()


def test_default_network_rm_then_made_again_on_first_use(image):
    """`network rm bridge` with nothing attached deletes its conflist and bridge; the next container on the
    default network writes it again (docs/networking.md: created the first time a container needs it)."""
    ok(berthctl("run", "--rm", "--name", "defnet-1", image, "true"))
    wait_removed("defnet-1")
    doc = json.loads(ok(berthctl("network", "inspect", "bridge")).stdout)[0]
    assert doc["containers"] == [], f"containers left on the default network: {doc['containers']}"
    bridge = doc["bridge"]
    ok(berthctl("network", "rm", "bridge"))
    assert not (NET_D / "bridge.conflist").exists()
    assert not Path(f"/sys/class/net/{bridge}").exists()
    p = ok(berthctl("run", "--rm", "--name", "defnet-2", image, "ip", "-o", "-4", "addr", "show", "eth0"))
    assert " inet " in p.stdout, p.stdout
    wait_removed("defnet-2")
    assert (NET_D / "bridge.conflist").exists()
    assert Path(f"/sys/class/net/{bridge}/bridge").exists()


def test_network_management_is_admin_only(member):
    p = berthctl("network", "create", "membernet", user=member)
    assert p.returncode != 0 and "org.berth.network-manage" in p.stderr
    p = berthctl("network", "rm", "bridge", user=member)
    assert p.returncode != 0 and "org.berth.network-manage" in p.stderr


def test_network_subnet_must_not_overlap_a_host_route():
    routes = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        f = line.split()
        if f[7] != "00000000" and not f[0].startswith("berth"):
            dest = socket.inet_ntoa(int(f[1], 16).to_bytes(4, "little"))
            routes.append(dest)
    if not routes:
        pytest.skip("no host route but the default one")
    p = berthctl("network", "create", "--subnet", f"{routes[0]}/24", "overlapping")
    assert p.returncode != 0 and "overlaps the host route" in p.stderr
    p = berthctl("network", "create", "--subnet", subnet_of(), "overlapping")
    assert p.returncode != 0 and "overlaps berth network 'bridge'" in p.stderr


def test_dbus_object_shows_addresses_and_ports(image, names):
    port = free_port()
    names.append(("busnet", None))
    ok(berthctl("run", "-d", "--name", "busnet", "-p", f"{port}:8080", image, "sleep", "1000"))
    cid = container_id("busnet")
    p = stack.busctl("call", "org.berth.Broker1", f"/org/berth/Broker1/container/{cid}",
                     "org.berth.Broker1.Container", "GetNetwork", "t", "0", "--json=short")
    assert p.returncode == 0, p.stderr
    doc = json.loads(json.loads(p.stdout)["data"][0])
    assert doc["network"] == "bridge" and in_subnet(doc["addresses"][0], subnet_of())
    assert doc["ports"][0]["host_port"] == port


# ---- clean-up after crashes ---------------------------------------------------------------------------------

def host_state():
    links = sorted(l.split(":")[1].strip().split("@")[0] for l in
                   subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines())
    leases = sorted(str(p) for p in LEASES.rglob("*") if p.is_file() and not p.name.startswith(("lock",
                                                                                                 "last_")))
    rules = sorted(l for l in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.splitlines()
                   if not l.startswith(("#", ":")))
    netns = sorted(os.listdir(NETNS)) if NETNS.exists() else []
    return {"links": links, "leases": leases, "rules": rules, "netns": netns}


def test_kill_9_of_supervisor_and_shim_leaves_nothing_after_rm(image, member, names):
    require_tools("iptables-save")
    # Warm up: the first container of the network makes its bridge and the plugins' shared chains.
    ok(berthctl("run", "--rm", "--name", "warm-k9", "-p", f"{free_port()}:80", image, "true"))
    wait_removed("warm-k9")
    before = host_state()
    ports = [free_port(), free_port()]
    names += [("crash-a", member), ("crash-b", member)]
    for n, port in zip(["crash-a", "crash-b"], ports):
        ok(berthctl("run", "-d", "--name", n, "-p", f"{port}:8080", image, "sh", "-c", SERVER, user=member))
    during = host_state()
    assert len(during["leases"]) == len(before["leases"]) + 2 and len(during["rules"]) > len(before["rules"])
    pid_b = inspect("crash-b", member)["State"]["Pid"]
    shim_b = int(re.search(r"^PPid:\s+(\d+)", Path(f"/proc/{pid_b}/status").read_text(), re.M).group(1))
    sup = stack.name_pid("org.berth.Supervisor1")
    assert sup
    os.kill(sup, signal.SIGKILL)
    os.kill(shim_b, signal.SIGKILL)
    stack.wait_for(lambda: not stack.pid_alive(sup), what="supervisor gone")
    # The published port still works while the supervisor is away.
    assert read_port(ports[0]) == b"hello\n"
    ok(berthctl("rm", "-f", "crash-a", "crash-b", user=member))
    after = host_state()
    assert after == before


def test_reconcile_releases_attachments_of_vanished_containers(image):
    """An attachment whose container has no state directory (a reboot of /run, a removal that crashed):
    the supervisor's next start runs DEL for the lease it finds, with the namespace file it finds."""
    require_tools("unshare")
    ok(berthctl("run", "--rm", "--name", "warm-rc", image, "true"))
    wait_removed("warm-rc")
    before = host_state()
    cid = os.urandom(16).hex()
    ns = NETNS / cid
    ns.touch()
    subprocess.run(["unshare", f"--net={ns}", "true"], check=True)
    conflist = json.loads((NET_D / "bridge.conflist").read_text())
    conf = dict(conflist["plugins"][0], name=conflist["name"], cniVersion=conflist["cniVersion"])
    env = dict(os.environ, CNI_COMMAND="ADD", CNI_CONTAINERID=cid, CNI_NETNS=str(ns), CNI_IFNAME="eth0",
               CNI_PATH="/usr/lib/cni")
    p = subprocess.run(["/usr/lib/cni/bridge"], input=json.dumps(conf), env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(host_state()["leases"]) == len(before["leases"]) + 1
    sup = stack.name_pid("org.berth.Supervisor1")
    if sup:
        os.kill(sup, signal.SIGKILL)
        stack.wait_for(lambda: not stack.pid_alive(sup), what="supervisor gone")
    ok(berthctl("ls", "-a"))  # brings the supervisor back: it reconciles before it takes its name
    assert host_state() == before


# ---- the redis demo ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["root", "member"])
def test_redis_demo(redis_image, image, member, names, who):
    user = member if who == "member" else None
    port = free_port()
    name = f"redis-{who}"
    names.append((name, user))
    ok(berthctl("run", "-d", "--name", name, "-p", f"{port}:6379", redis_image, user=user))
    wait_redis(port)
    assert redis_cli(port, "ping").stdout.strip() == "PONG"
    assert redis_cli(port, "set", "greeting", f"hello from {who}").stdout.strip() == "OK"
    assert redis_cli(port, "get", "greeting").stdout.strip() == f"hello from {who}"
    # A second container on the same network reaches it by name.
    p = ok(berthctl("run", "--rm", "--entrypoint", "/usr/bin/redis-cli", redis_image, "-h", name, "get",
                    "greeting", user=user))
    assert p.stdout.strip() == f"hello from {who}"
    p = ok(berthctl("run", "--rm", image, "sh", "-c", f"printf 'PING\\r\\n' | nc {name} 6379", user=user))
    assert "+PONG" in p.stdout
