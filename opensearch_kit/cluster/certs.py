"""Certificates for a secured local cluster (and the TLS tests): a private root CA issuing server and client
certificates as PEM files. Needs the `cryptography` package (extra `security`)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)
CA_FILE = "root-ca.pem"
CA_KEY_FILE = "root-ca-key.pem"


@dataclass(frozen=True)
class Pem:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


class Pki:
    """A root CA in `root`, issuing certificates written beside it."""

    def __init__(self, root: Path, key: rsa.RSAPrivateKey | None = None, cert: x509.Certificate | None = None):
        """A new CA in `root` (or the one whose `key` and `cert` are given)."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.ca_file = root / CA_FILE
        if key is not None and cert is not None:
            self.key, self.cert = key, cert
            return
        self.key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opensearch-kit local root CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY)
            .not_valid_after(now + 3650 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        _write_key(root / CA_KEY_FILE, self.key)

    @classmethod
    def load_or_create(cls, root: Path) -> Pki:
        """The CA kept in `root`, made there the first time (so a CA file handed to clients stays valid)."""
        if not (root / CA_KEY_FILE).exists():
            return cls(root)
        key = serialization.load_pem_private_key((root / CA_KEY_FILE).read_bytes(), None)
        return cls(root, key, x509.load_pem_x509_certificate((root / CA_FILE).read_bytes()))

    def issue(
        self,
        name: str,
        hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
        *,
        client: bool = False,
        expired: bool = False,
    ) -> Pem:
        """A certificate with subject CN=`name` for `hosts` (DNS names or IPs), for TLS servers (and clients, as
        cluster nodes are to each other) or with `client` for clients only; files name.pem and name-key.pem."""
        key = _new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        begins, ends = (now - 30 * DAY, now - DAY) if expired else (now - DAY, now + 30 * DAY)
        alt_names = [_alt_name(h) for h in hosts]
        usage = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([] if client else [ExtendedKeyUsageOID.SERVER_AUTH])
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(begins)
            .not_valid_after(ends)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        pem = Pem(self.root / f"{name}.pem", self.root / f"{name}-key.pem")
        pem.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(pem.key, key)
        return pem


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    """A PKCS#8 PEM key (the form the security plugin reads), readable by its owner only."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
