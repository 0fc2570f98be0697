"""A secured local node: the OpenSearch security plugin with TLS on HTTP and transport, certificates of a private
CA made for the cluster, an admin user and optional users without ML permissions.

Maven Central has no security plugin for the core we assemble (3.6.0); its newest, 3.4.0.0, runs on it once its
descriptor names 3.6.0 and the three BC-FIPS jars the core already ships in lib/ are left out (jar hell).
Needs the `security` extra (cryptography, bcrypt).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from opensearch_kit.cluster.distribution import OPENSEARCH_VERSION, install_plugin_zip
from opensearch_kit.cluster.jdk import Jdk
from opensearch_kit.cluster.maven import MavenArtifact, MavenCache
from opensearch_kit.errors import KitError

SECURITY_PLUGIN = MavenArtifact(
    "org.opensearch.plugin",
    "opensearch-security",
    "3.4.0.0",
    "zip",
    sha256="fc164c084979f7f793d295b6bca56bf8bee76dafb762adef9f14fa872e0a7596",
)
CORE_SHIPS = ("bc-fips-", "bcpkix-fips-", "bcutil-fips-")  # the plugin's copies clash with the core's lib/
ADMIN_USER = "admin"
PASSWORD_ENV = "OPENSEARCH_INITIAL_ADMIN_PASSWORD"
READER_ROLE = "kit_reader"  # cluster health and index reads, no ML Commons
MARKER = ".opensearch-kit-secured"


@dataclass(frozen=True)
class Security:
    """What a secured local cluster needs: the admin password, and users (name -> password) that may read
    indices and cluster health but not use ML Commons. Never printed."""

    admin_password: str
    readers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Security(readers={sorted(self.readers)})"

    @classmethod
    def from_env(cls) -> Security:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise KitError(
                f"a secured cluster needs an admin password in ${PASSWORD_ENV}", f"export {PASSWORD_ENV}=..."
            )
        return cls(password)

    def write(self, config: Path, certs: Path) -> dict[str, object]:
        """Write the node's certificates (from the CA in `certs`, made once) and security configuration under
        `config`; the opensearch.yml settings that turn it on."""
        from opensearch_kit.cluster.certs import Pki

        pki = Pki.load_or_create(certs)
        node = pki.issue("node")
        target = config / "certs"
        target.mkdir(exist_ok=True)
        for path in (node.cert, node.key, pki.ca_file):
            shutil.copy2(path, target / path.name)
        security = config / "opensearch-security"
        users = {ADMIN_USER: self.admin_password, **self.readers}
        internal = {"_meta": {"type": "internalusers", "config_version": 2}}
        internal |= {
            name: {"hash": _bcrypt(password), "reserved": name == ADMIN_USER} for name, password in users.items()
        }
        roles = {
            "_meta": {"type": "roles", "config_version": 2},
            READER_ROLE: {
                "cluster_permissions": ["cluster_monitor"],
                "index_permissions": [{"index_patterns": ["*"], "allowed_actions": ["read", "indices_monitor"]}],
            },
        }
        mapping = {
            "_meta": {"type": "rolesmapping", "config_version": 2},
            "all_access": {"users": [ADMIN_USER]},
            READER_ROLE: {"users": sorted(self.readers)},
        }
        for name, body in (("internal_users", internal), ("roles", roles), ("roles_mapping", mapping)):
            (security / f"{name}.yml").write_text(json.dumps(body, indent=2))  # JSON is YAML
        pem = {"pemcert_filepath": "certs/node.pem", "pemkey_filepath": "certs/node-key.pem"}
        pem["pemtrustedcas_filepath"] = f"certs/{pki.ca_file.name}"
        settings: dict[str, object] = {
            f"plugins.security.ssl.{layer}.{k}": v for layer in ("transport", "http") for k, v in pem.items()
        }
        settings |= {
            "plugins.security.ssl.http.enabled": True,
            "plugins.security.ssl.transport.enforce_hostname_verification": False,
            "plugins.security.allow_default_init_securityindex": True,
            "plugins.security.nodes_dn": ["CN=node"],
            "plugins.security.authcz.admin_dn": ["CN=kit-admin"],
            "plugins.security.restapi.roles_enabled": ["all_access"],
        }
        return settings

    def probe(self, certs: Path) -> tuple[ssl.SSLContext, dict[str, str]]:
        """An SSL context trusting the cluster's CA (in `certs`, made there if new) and the admin's Authorization
        header, for health checks."""
        from opensearch_kit.cluster.certs import Pki

        ca_file = Pki.load_or_create(certs).ca_file
        token = base64.b64encode(f"{ADMIN_USER}:{self.admin_password}".encode()).decode()
        return ssl.create_default_context(cafile=str(ca_file)), {"Authorization": f"Basic {token}"}


def secured_install(install: Path, maven: MavenCache, jdk: Jdk) -> Path:
    """`install` (an assembled home) plus the security plugin, as a sibling built once (hard links, no copies)."""
    home = install.with_name(f"{install.name}-security")
    marker = home / MARKER
    if marker.exists() and marker.read_text() == str(SECURITY_PLUGIN):
        return home
    staging = install.with_name(".assembling-security")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(install, staging, symlinks=True, copy_function=os.link)
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = Path(tmp) / SECURITY_PLUGIN.filename
        _patched_plugin(maven.fetch(SECURITY_PLUGIN), zip_path)
        install_plugin_zip(staging, zip_path, jdk)
    (staging / MARKER).write_text(str(SECURITY_PLUGIN))
    shutil.rmtree(home, ignore_errors=True)
    staging.replace(home)
    return home


def _patched_plugin(source: Path, dest: Path) -> None:
    """The plugin zip with its descriptor naming our core version and without the jars the core ships."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename.startswith(CORE_SHIPS):
                continue
            data = src.read(info)
            if info.filename == "plugin-descriptor.properties":
                lines = data.decode().splitlines()
                lines = [
                    f"opensearch.version={OPENSEARCH_VERSION}" if x.startswith("opensearch.version=") else x
                    for x in lines
                ]
                data = ("\n".join(lines) + "\n").encode()
            out.writestr(info, data)


def _bcrypt(password: str) -> str:
    import bcrypt

    # $2a$ is the prefix every version of the plugin reads; for the same input it is the $2b$ algorithm
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(12)).decode().replace("$2b$", "$2a$", 1)
