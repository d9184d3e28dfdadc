"""A throw-away X.509 certificate authority for tests (python3-cryptography).

Example::

    ca = CertAuthority(directory)            # writes ca.crt / ca.key
    cert, key = ca.issue_server("server")    # SAN 127.0.0.1 + localhost
    cert, key = ca.issue_client("client")    # clientAuth EKU
    cert, key = self_signed_signing_cert(directory, "token", "ES256")
"""

import base64
import datetime
import hashlib
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertAuthority", "self_signed_signing_cert", "libtrust_key_id",
           "generate_key", "write_key", "write_cert"]


def generate_key(kind="ec"):
    """Return a new private key: ``"ec"`` (P-256) or ``"rsa"`` (2048 bits)."""
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError("unknown key kind %r" % kind)


def write_key(path, key):
    """Write ``key`` unencrypted as PKCS#8 PEM to ``path`` (mode 0600)."""
    data = key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def write_cert(path, cert):
    """Write ``cert`` as PEM to ``path``."""
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "berth tests")])


def _validity(builder):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (builder.not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=30)))


def libtrust_key_id(public_key):
    """Return the docker/libtrust key ID of ``public_key``.

    libtrust: SHA-256 of the DER SubjectPublicKeyInfo, truncated to 240
    bits, base32 encoded (no padding) and split in 12 groups of 4
    characters joined by ':'.  docker-registry's token auth uses it to match
    a JWT ``kid`` header against the keys of its ``rootcertbundle``.
    """
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii")
    return ":".join(b32[i:i + 4] for i in range(0, 48, 4))


class CertAuthority:
    """A test CA whose certificate and key live in ``directory``.

    Attributes: ``directory``, ``ca_path`` (PEM certificate), ``ca_key_path``,
    ``cert`` and ``key`` (cryptography objects).
    """

    def __init__(self, directory, name="berth test CA"):
        """Create the CA in ``directory`` (created if missing)."""
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.key = generate_key("ec")
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(name)).issuer_name(_name(name))
                   .public_key(self.key.public_key())
                   .serial_number(x509.random_serial_number())
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=True, content_commitment=False,
                       key_encipherment=False, data_encipherment=False,
                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                       encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                       self.key.public_key()), critical=False))
        self.cert = _validity(builder).sign(self.key, hashes.SHA256())
        self.ca_path = write_cert(os.path.join(directory, "ca.crt"), self.cert)
        self.ca_key_path = write_key(os.path.join(directory, "ca.key"), self.key)

    def _issue(self, basename, cn, eku, sans=None, key_kind="ec"):
        key = generate_key(key_kind)
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.key.public_key()), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = _validity(builder).sign(self.key, hashes.SHA256())
        cert_path = write_cert(os.path.join(self.directory, basename + ".crt"), cert)
        key_path = write_key(os.path.join(self.directory, basename + ".key"), key)
        return cert_path, key_path

    def issue_server(self, basename="server", hosts=("127.0.0.1", "localhost")):
        """Issue a TLS server certificate for ``hosts`` (IPs or DNS names).

        Returns ``(cert_path, key_path)`` written in the CA directory.
        """
        sans = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        return self._issue(basename, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, sans)

    def issue_client(self, basename="client", cn="berth-test-client"):
        """Issue a TLS client certificate; returns ``(cert_path, key_path)``."""
        return self._issue(basename, cn, ExtendedKeyUsageOID.CLIENT_AUTH)


def self_signed_signing_cert(directory, basename="token", algorithm="ES256"):
    """Create a self-signed certificate for signing JWTs.

    ``algorithm`` is ``"ES256"`` (P-256 key) or ``"RS256"`` (RSA 2048).
    Returns ``(cert, key, cert_path, key_path)``.
    """
    key = generate_key("ec" if algorithm == "ES256" else "rsa")
    name = _name("berth test token signer")
    builder = (x509.CertificateBuilder()
               .subject_name(name).issuer_name(name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    cert = _validity(builder).sign(key, hashes.SHA256())
    os.makedirs(directory, exist_ok=True)
    cert_path = write_cert(os.path.join(directory, basename + ".crt"), cert)
    key_path = write_key(os.path.join(directory, basename + ".key"), key)
    return cert, key, cert_path, key_path
