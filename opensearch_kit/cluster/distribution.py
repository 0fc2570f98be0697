"""Assemble a runnable OpenSearch with ML Commons, neural-search, k-NN and nori from Maven artifacts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

from opensearch_kit.cluster.jdk import Jdk
from opensearch_kit.cluster.maven import MavenArtifact, MavenCache
from opensearch_kit.errors import KitError
from opensearch_kit.progress import progress_bar

# The newest 3.x for which core, k-NN, ML Commons, neural-search and job-scheduler are all on Maven Central.
OPENSEARCH_VERSION = "3.6.0"
PLUGIN_VERSION = f"{OPENSEARCH_VERSION}.0"
MIN_JAVA = 21
# Pinned digests: Maven Central publishes no checksum files for the plugin zips.
CORE = MavenArtifact(
    "org.opensearch.distribution.integ-test-zip",
    "opensearch",
    OPENSEARCH_VERSION,
    "zip",
    sha256="a91faa1dc1cadc78cb278b4f63847e19e1627a4e9de698e14e7efc14ee37b286",
)
PLUGIN_ZIPS = tuple(
    MavenArtifact("org.opensearch.plugin", name, PLUGIN_VERSION, "zip", sha256=digest)
    for name, digest in (
        ("opensearch-job-scheduler", "f81d0aa9fc850b18f803292bd7ae68bd33561f6c1d12db0f68529d40eddcee24"),
        ("opensearch-knn", "ac392ca28a39b3bf290648a422ef30cb149dda2963a9d7feb26060e932341c9a"),
        ("opensearch-ml-plugin", "c051d436fe1936da1477bb999db829eb2bc92b12989e376c300d0a874fb90f9d"),
        ("neural-search", "6ef1b206e79391e2e36268e32dc34d27fd8b8a59a8eb0a7393c97d53b038e433"),
    )
)
# ml-commons 3.6 pins DJL 0.31.1 and PyTorch 2.5.1 (DLModel.java sets PYTORCH_VERSION, PYTORCH_PRECXX11 and
# DJL_CACHE_DIR=<path.data>/ml_cache). Maven Central has the cxx11-ABI CPU build of libtorch 2.5.1 and the
# JNI for it from DJL 0.32.0 (the JNI sources are unchanged between 0.31.1 and 0.32.0).
DJL_VERSION = "0.31.1"
PYTORCH_VERSION = "2.5.1"
PYTORCH_NATIVE = MavenArtifact(
    "ai.djl.pytorch",
    "pytorch-native-cpu",
    PYTORCH_VERSION,
    "jar",
    "linux-x86_64",
    sha256="9c4f35fb64cb3fba34340b432c648e1bea044adeee554b473d5882499b16f0a4",
)
PYTORCH_JNI = MavenArtifact(
    "ai.djl.pytorch",
    "pytorch-jni",
    f"{PYTORCH_VERSION}-0.32.0",
    sha256="342bde24382eef06e93a2461fd8f293e5c2c6c72caca7d66019d0a9447d96265",
)
# The directory DJL's LibUtils looks in: <cache>/pytorch/<version>-<flavor>-<classifier>.
DJL_TORCH_DIR = f"ml_cache/pytorch/{PYTORCH_VERSION}-cpu-precxx11-linux-x86_64"


@dataclass(frozen=True)
class JarPlugin:
    """A plugin published as a bare jar: the toolkit adds its dependencies and plugin-descriptor.properties."""

    name: str
    artifact: MavenArtifact
    classname: str
    description: str
    extended_plugins: str = ""


def _core_jar(name: str, classname: str, description: str, artifact: str = "", extended: str = "") -> JarPlugin:
    coordinate = MavenArtifact("org.opensearch.plugin", artifact or name, OPENSEARCH_VERSION)
    return JarPlugin(name, coordinate, classname, description, extended)


# Core modules the toolkit needs; installed from their jars when the distribution zip lacks them.
REQUIRED_MODULES = (
    _core_jar("lang-painless", "org.opensearch.painless.PainlessModulePlugin", "Painless scripting"),
    _core_jar(
        "mapper-extras",
        "org.opensearch.index.mapper.MapperExtrasModulePlugin",
        "rank_features and more",
        artifact="mapper-extras-client",
    ),
    _core_jar(
        "ingest-common",
        "org.opensearch.ingest.common.IngestCommonModulePlugin",
        "Ingest processors",
        extended="lang-painless",
    ),
    _core_jar(
        "analysis-common",
        "org.opensearch.analysis.common.CommonAnalysisModulePlugin",
        "Built-in analyzers",
        extended="lang-painless",
    ),
)
# analysis-nori is published on Maven Central only as the 3.8.0 jar; its classes use only stable analysis APIs,
# and the toolkit pairs it with the Lucene nori jar of the core's own Lucene version.
NORI = JarPlugin(
    "analysis-nori",
    MavenArtifact(
        "org.opensearch.plugin",
        "analysis-nori",
        "3.8.0",
        sha256="2682186f2dd7fd03929f708b15829e8a00702d28271726d29017f7703e9cb0eb",
    ),
    "org.opensearch.plugin.analysis.nori.AnalysisNoriPlugin",
    "The Korean (nori) analysis plugin",
)
MARKER = ".opensearch-kit-assembled"


ARTIFACTS = (CORE, *PLUGIN_ZIPS, NORI.artifact, PYTORCH_NATIVE, PYTORCH_JNI)


def manifest() -> list[str]:
    """What an assembled install is made of; a change re-assembles it."""
    return [str(a) for a in ARTIFACTS]


def assemble(install_root: Path, maven: MavenCache, jdk: Jdk) -> Path:
    """Path of an assembled OpenSearch home under `install_root`, built once and reused while intact."""
    home = install_root / f"opensearch-{OPENSEARCH_VERSION}"
    marker = home / MARKER
    if marker.exists() and json.loads(marker.read_text()) == manifest():
        return home
    paths = {}
    with progress_bar(len(ARTIFACTS), desc="artifacts", unit="file") as bar:
        for artifact in ARTIFACTS:
            paths[artifact] = maven.fetch(artifact)
            bar.update()
    staging = install_root / ".assembling"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _extract(paths[CORE], staging)
    built = staging / f"opensearch-{OPENSEARCH_VERSION}"
    lucene = lucene_version(built)
    for module in REQUIRED_MODULES:
        if not (built / "modules" / module.name).is_dir():
            install_jar_plugin(built / "modules", module, maven, lucene)
    with progress_bar(len(PLUGIN_ZIPS), desc="installing plugins", unit="plugin") as bar:
        for plugin in PLUGIN_ZIPS:
            install_plugin_zip(built, paths[plugin], jdk)
            bar.update()
    install_jar_plugin(built / "plugins", NORI, maven, lucene)
    _extract_natives(paths[PYTORCH_NATIVE], paths[PYTORCH_JNI], built / "djl-natives")
    (built / MARKER).write_text(json.dumps(manifest()))
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    built.replace(home)
    shutil.rmtree(staging, ignore_errors=True)
    return home


def _extract(archive: Path, dest: Path) -> None:
    """Unzip keeping the executable bits that zip entries record."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, dest))
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                path.chmod(mode & 0o777)
    for script in dest.glob("*/bin/*"):
        script.chmod(script.stat().st_mode | 0o755)


def lucene_version(home: Path) -> str:
    """The Lucene version the core ships (from lib/lucene-core-<v>.jar)."""
    jars = list((home / "lib").glob("lucene-core-*.jar"))
    if not jars:
        raise KitError(f"no lucene-core jar under {home / 'lib'}", "delete the install dir and start again")
    return jars[0].name.removeprefix("lucene-core-").removesuffix(".jar")


def install_plugin_zip(home: Path, archive: Path, jdk: Jdk) -> None:
    env = dict(os.environ, JAVA_HOME=str(jdk.home), OPENSEARCH_JAVA_HOME=str(jdk.home))
    proc = subprocess.run(
        [str(home / "bin" / "opensearch-plugin"), "install", "--batch", archive.resolve().as_uri()],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise KitError(
            f"installing plugin {archive.name} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
            "delete the cached plugin zip to re-download it, or check that the JDK runs (JAVA_HOME)",
        )


def pom_dependencies(pom: Path) -> list[MavenArtifact]:
    """Compile/runtime dependencies declared in a POM, minus OpenSearch core itself."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(pom).getroot()
    deps = []
    for dep in root.findall("m:dependencies/m:dependency", ns):

        def text(tag: str, node: ET.Element = dep) -> str:
            el = node.find(f"m:{tag}", ns)
            return el.text.strip() if el is not None and el.text else ""

        if text("scope") not in ("", "compile", "runtime") or text("optional") == "true":
            continue
        if text("groupId") == "org.opensearch" and text("artifactId") == "opensearch":
            continue
        deps.append(MavenArtifact(text("groupId"), text("artifactId"), text("version")))
    return deps


def install_jar_plugin(parent: Path, plugin: JarPlugin, maven: MavenCache, lucene: str) -> Path:
    """Lay out a jar-only plugin: its jar, its POM dependencies and a written plugin-descriptor.properties.

    Lucene dependencies are pinned to the core's Lucene version so that the plugin matches the node.
    """
    target = parent / plugin.name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    pom = maven.fetch(MavenArtifact(plugin.artifact.group, plugin.artifact.artifact, plugin.artifact.version, "pom"))
    jars = [plugin.artifact]
    for dep in pom_dependencies(pom):
        jars.append(MavenArtifact(dep.group, dep.artifact, lucene) if dep.group == "org.apache.lucene" else dep)
    for jar in jars:
        shutil.copy2(maven.fetch(jar), target / jar.filename)
    descriptor = {
        "description": plugin.description,
        "version": OPENSEARCH_VERSION,
        "name": plugin.name,
        "classname": plugin.classname,
        "java.version": str(MIN_JAVA),
        "opensearch.version": OPENSEARCH_VERSION,
        "custom.foldername": "",
        "extended.plugins": plugin.extended_plugins,
        "has.native.controller": "false",
    }
    lines = [f"{key}={value}" for key, value in descriptor.items()]
    (target / "plugin-descriptor.properties").write_text("\n".join(lines) + "\n")
    return target


def _extract_natives(native_jar: Path, jni_jar: Path, dest: Path) -> None:
    """Unpack libtorch (cxx11 ABI) and the matching DJL JNI library into `dest`, named as DJL expects."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(native_jar) as zf:
        for name in zf.namelist():
            if name.startswith("pytorch/cpu/linux-x86_64/") and not name.endswith("/"):
                (dest / Path(name).name).write_bytes(zf.read(name))
    with zipfile.ZipFile(jni_jar) as zf:
        (dest / f"{DJL_VERSION}-libdjl_torch.so").write_bytes(zf.read("jnilib/linux-x86_64/cpu/libdjl_torch.so"))
    for lib in dest.iterdir():
        lib.chmod(0o755)


def stage_djl_natives(home: Path, data_dir: Path) -> Path:
    """Put libtorch where DJL looks under a node's data path, so that a model deploy never downloads it."""
    target = data_dir / DJL_TORCH_DIR
    target.mkdir(parents=True, exist_ok=True)
    for lib in (home / "djl-natives").iterdir():
        dest = target / lib.name
        if dest.exists() and os.path.samefile(dest, lib):
            continue
        dest.unlink(missing_ok=True)
        try:
            os.link(lib, dest)
        except OSError:
            shutil.copy2(lib, dest)
    return target
