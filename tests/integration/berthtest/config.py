"""/etc/berth/registries.conf and certs.d for a test, restored at teardown by the berth_config fixture."""
import os
import shutil
from pathlib import Path

ETC = Path("/etc/berth")
REGISTRIES_CONF = ETC / "registries.conf"
CERTS_D = ETC / "certs.d"


class BerthConfig:
    def __init__(self):
        self.groups = {}
        self.fetcher = {}
        self.created_cert_dirs = []

    def registry(self, host, **kv):
        g = self.groups.setdefault(host, {})
        g.update(kv)
        self.flush()

    def fetcher_settings(self, **kv):
        self.fetcher.update(kv)
        self.flush()

    def flush(self):
        ETC.mkdir(mode=0o755, exist_ok=True)
        out = []
        if self.fetcher:
            out.append("[fetcher]")
            out += ["%s=%s" % (k.replace("_", "-"), v) for k, v in self.fetcher.items()]
            out.append("")
        for host, kv in self.groups.items():
            out.append('[registry "%s"]' % host)
            for k, v in kv.items():
                if isinstance(v, bool):
                    v = "true" if v else "false"
                elif isinstance(v, (list, tuple)):
                    v = ";".join(v)
                out.append("%s=%s" % (k.replace("_", "-"), v))
            out.append("")
        tmp = REGISTRIES_CONF.with_suffix(".tmp")
        tmp.write_text("\n".join(out))
        os.chmod(tmp, 0o644)
        os.replace(tmp, REGISTRIES_CONF)

    def install_certs(self, reg, ca=True, client=False):
        """/etc/berth/certs.d/HOST/{ca.crt,client.cert,client.key} for a TLS test registry."""
        d = CERTS_D / reg.host
        CERTS_D.mkdir(parents=True, mode=0o755, exist_ok=True)
        d.mkdir(mode=0o755, exist_ok=True)
        self.created_cert_dirs.append(d)
        if ca:
            shutil.copyfile(reg.ca_path, d / "ca.crt")
            os.chmod(d / "ca.crt", 0o644)
        if client:
            shutil.copyfile(reg.client_cert_path, d / "client.cert")
            os.chmod(d / "client.cert", 0o644)
            shutil.copyfile(reg.client_key_path, d / "client.key")
            shutil.chown(d / "client.key", "berth-fetcher", "berth-fetcher")
            os.chmod(d / "client.key", 0o600)
        return d
