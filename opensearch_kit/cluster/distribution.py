"""Assemble a runnable OpenSearch with ML Commons, neural-search, k-NN and nori from Maven artifacts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from opensearch_kit.cluster.jdk import Jdk
from opensearch_kit.cluster.maven import MavenArtifact, MavenCache
from opensearch_kit.errors import KitError
from opensearch_kit.progress import progress_bar

# Pinned digests: Maven Central publishes no checksum files for the plugin zips.
PLUGIN_NAMES = ("opensearch-job-scheduler", "opensearch-knn", "opensearch-ml-plugin", "neural-search")
# Both ml-commons 3.6 and 2.19 use DJL 0.31.1 (DLModel.java sets PYTORCH_VERSION, PYTORCH_PRECXX11 and
# DJL_CACHE_DIR=<path.data>/ml_cache). Maven Central has the cxx11-ABI CPU build of libtorch 2.5.1 (DJL 0.31.1's
# own default) and the JNI for it from DJL 0.32.0 (the JNI sources are unchanged between 0.31.1 and 0.32.0).
# ml-commons 2.19 asks for PyTorch 1.13.1, whose DJL 0.31.1 JNI is on no Maven repository, so its nodes get the
# same 2.5.1 libraries staged where DJL looks for 1.13.1 (DJL loads what that directory holds; 2.5.1 also loads
# TorchScript saved by today's torch, which 1.13.1 cannot).
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


@dataclass(frozen=True)
class Distribution:
    """One OpenSearch version the toolkit assembles: pinned core and plugin digests, the Java majors it runs on,
    the PyTorch version its ml-commons asks DJL for, and whether the nori jar fits it."""

    version: str
    core_sha256: str
    plugin_sha256: tuple[str, ...]  # in PLUGIN_NAMES order
    java: tuple[int, int]  # lowest and highest Java major it starts on
    djl_torch: str  # ml-commons' PYTORCH_VERSION
    nori: bool
    module_class: str = "ModulePlugin"  # core modules' class suffix (3.0 renamed PainlessPlugin and the like)
    reindex: bool = False  # whether its ml-commons needs the reindex module (2.x deletes model chunks by query)

    @property
    def plugin_version(self) -> str:
        return f"{self.version}.0"

    @property
    def core(self) -> MavenArtifact:
        return MavenArtifact(
            "org.opensearch.distribution.integ-test-zip", "opensearch", self.version, "zip", sha256=self.core_sha256
        )

    @property
    def plugin_zips(self) -> tuple[MavenArtifact, ...]:
        return tuple(
            MavenArtifact("org.opensearch.plugin", name, self.plugin_version, "zip", sha256=digest)
            for name, digest in zip(PLUGIN_NAMES, self.plugin_sha256, strict=True)
        )

    @property
    def djl_torch_dir(self) -> str:
        """The directory DJL's LibUtils looks in: <cache>/pytorch/<version>-<flavor>-<classifier>."""
        return f"ml_cache/pytorch/{self.djl_torch}-cpu-precxx11-linux-x86_64"

    @property
    def artifacts(self) -> tuple[MavenArtifact, ...]:
        nori = (NORI.artifact,) if self.nori else ()
        return (self.core, *self.plugin_zips, *nori, PYTORCH_NATIVE, PYTORCH_JNI)


DISTRIBUTIONS = {
    d.version: d
    for d in (
        # The newest 3.x for which core, k-NN, ML Commons, neural-search and job-scheduler are all on Maven Central.
        Distribution(
            "3.6.0",
            "a91faa1dc1cadc78cb278b4f63847e19e1627a4e9de698e14e7efc14ee37b286",
            (
                "f81d0aa9fc850b18f803292bd7ae68bd33561f6c1d12db0f68529d40eddcee24",
                "ac392ca28a39b3bf290648a422ef30cb149dda2963a9d7feb26060e932341c9a",
                "c051d436fe1936da1477bb999db829eb2bc92b12989e376c300d0a874fb90f9d",
                "6ef1b206e79391e2e36268e32dc34d27fd8b8a59a8eb0a7393c97d53b038e433",
            ),
            java=(21, 99),
            djl_torch="2.5.1",
            nori=True,
        ),
        # The last 2.x line. Its bootstrap installs a SecurityManager, which Java 24+ refuses; the nori jar on
        # Maven Central is built for 3.x (Java 21 classes, 3.x APIs), so 2.19 nodes have no Korean analyzer.
        Distribution(
            "2.19.1",
            "af7152d8b7f6f1cee09d47276b32b70479fe6dd8cdbb61213f84eb7f8098b261",
            (
                "a54e12582b88a4c173d6e58b16fbc609df12a04eff010ae30396905a1a882bf6",
                "eab8c9818865bc035212eab5068cdacae164baa09d4c152f49b736d6f6b0e85c",
                "2324234d81109dcb2c488da5a6b2034cc0f78d9d08e40ce49ba59fc423a5df5f",
                "b17ca1d774692902c58cbae102bf463970740c31d81446866e8eabd336e285aa",
            ),
            java=(17, 23),
            djl_torch="1.13.1",
            nori=False,
            module_class="Plugin",
            reindex=True,
        ),
    )
}
DEFAULT_VERSION = "3.6.0"
OPENSEARCH_VERSION = DEFAULT_VERSION  # the version `cluster start` assembles unless told otherwise


def distribution(version: str = DEFAULT_VERSION) -> Distribution:
    """The description of `version`; a KitError naming the versions the toolkit assembles otherwise."""
    if version not in DISTRIBUTIONS:
        raise KitError(
            f"opensearch-kit cannot assemble OpenSearch {version}",
            f"use --version {' or '.join(DISTRIBUTIONS)}, or point --url at a cluster you run yourself",
        )
    return DISTRIBUTIONS[version]


@dataclass(frozen=True)
class JarPlugin:
    """A plugin published as a bare jar: the toolkit adds its dependencies and plugin-descriptor.properties."""

    name: str
    artifact: MavenArtifact
    classname: str
    description: str
    extended_plugins: str = ""
    core_module: bool = False  # a module of the core: its version and class suffix are the distribution's
    permissions: tuple[str, ...] = ()  # its plugin-security.policy grants (2.x runs a SecurityManager)


def _core_jar(
    name: str, classname: str, description: str, artifact: str = "", extended: str = "", permissions=()
) -> JarPlugin:
    coordinate = MavenArtifact("org.opensearch.plugin", artifact or name, "")  # the core's version, set on install
    return JarPlugin(name, coordinate, classname, description, extended, True, permissions)


# Core modules the toolkit needs; installed from their jars (of the core's version) when the zip lacks them;
# their class names lack the version's suffix (Distribution.module_class).
REQUIRED_MODULES = (
    _core_jar(
        "lang-painless",
        "org.opensearch.painless.Painless",
        "Painless scripting",
        # the grants of the module's own plugin-security.policy: it generates classes and reads allowlists
        permissions=('java.lang.RuntimePermission "createClassLoader"', 'java.lang.RuntimePermission "getClassLoader"'),
    ),
    _core_jar(
        "mapper-extras",
        "org.opensearch.index.mapper.MapperExtras",
        "rank_features and more",
        artifact="mapper-extras-client",
    ),
    _core_jar(
        "ingest-common",
        "org.opensearch.ingest.common.IngestCommon",
        "Ingest processors",
        extended="lang-painless",
    ),
    _core_jar(
        "analysis-common",
        "org.opensearch.analysis.common.CommonAnalysis",
        "Built-in analyzers",
        extended="lang-painless",
    ),
)
REINDEX = _core_jar(
    "reindex",
    "org.opensearch.index.reindex.Reindex",
    "Reindex and delete by query",
    artifact="reindex-client",
    permissions=('java.net.SocketPermission "*", "connect"',),  # the module's own grant (remote reindex)
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


def manifest(dist: Distribution) -> list[str]:
    """What an assembled install is made of; a change re-assembles it."""
    return [str(a) for a in dist.artifacts]


def assemble(install_root: Path, maven: MavenCache, jdk: Jdk, dist: Distribution | None = None) -> Path:
    """Path of an assembled OpenSearch home of `dist` (default 3.6.0) under `install_root`, built once and reused
    while intact; installs of different versions sit side by side."""
    dist = dist or distribution()
    home = install_root / f"opensearch-{dist.version}"
    marker = home / MARKER
    if marker.exists() and json.loads(marker.read_text()) == manifest(dist):
        return home
    paths = {}
    with progress_bar(len(dist.artifacts), desc="artifacts", unit="file") as bar:
        for artifact in dist.artifacts:
            paths[artifact] = maven.fetch(artifact)
            bar.update()
    staging = install_root / f".assembling-{dist.version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _extract(paths[dist.core], staging)
    built = staging / f"opensearch-{dist.version}"
    lucene = lucene_version(built)
    for module in REQUIRED_MODULES + ((REINDEX,) if dist.reindex else ()):
        if not (built / "modules" / module.name).is_dir():
            install_jar_plugin(built / "modules", module, maven, lucene, dist)
    with progress_bar(len(dist.plugin_zips), desc="installing plugins", unit="plugin") as bar:
        for plugin in dist.plugin_zips:
            install_plugin_zip(built, paths[plugin], jdk)
            bar.update()
    if dist.nori:
        install_jar_plugin(built / "plugins", NORI, maven, lucene, dist)
    _extract_natives(paths[PYTORCH_NATIVE], paths[PYTORCH_JNI], built / "djl-natives")
    (built / MARKER).write_text(json.dumps(manifest(dist)))
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


def runtime_jars(artifact: MavenArtifact, maven: MavenCache, lucene: str, provided: set[str]) -> list[MavenArtifact]:
    """`artifact` and its POM dependencies, following OpenSearch's own libraries (ingest-common -> opensearch-grok
    -> joni); Lucene jars pinned to the core's Lucene version; jars the core ships (`provided` file names) left
    out (a second copy is jar hell)."""
    jars: list[MavenArtifact] = []
    follow = [artifact]
    while follow:
        current = follow.pop(0)
        jars.append(current)
        for dep in pom_dependencies(maven.fetch(replace(current, ext="pom", sha256=""))):
            dep = MavenArtifact(dep.group, dep.artifact, lucene) if dep.group == "org.apache.lucene" else dep
            if dep in jars or dep in follow or dep.filename in provided:
                continue
            if dep.group.startswith("org.opensearch"):
                follow.append(dep)
            else:
                jars.append(dep)
    return jars


def install_jar_plugin(parent: Path, plugin: JarPlugin, maven: MavenCache, lucene: str, dist: Distribution) -> Path:
    """Lay out a jar-only plugin: its jar, its POM dependencies and a written plugin-descriptor.properties.

    Lucene dependencies are pinned to the core's Lucene version so that the plugin matches the node; a jar
    without a version is the core's own.
    """
    target = parent / plugin.name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    artifact = plugin.artifact if plugin.artifact.version else replace(plugin.artifact, version=dist.version)
    provided = {jar.name for jar in (parent.parent / "lib").glob("*.jar")}
    for jar in runtime_jars(artifact, maven, lucene, provided):
        shutil.copy2(maven.fetch(jar), target / jar.filename)
    descriptor = {
        "description": plugin.description,
        "version": dist.version,
        "name": plugin.name,
        "classname": plugin.classname + (dist.module_class if plugin.core_module else ""),
        "java.version": str(dist.java[0]),
        "opensearch.version": dist.version,
        "custom.foldername": "",
        "extended.plugins": plugin.extended_plugins,
        "has.native.controller": "false",
    }
    lines = [f"{key}={value}" for key, value in descriptor.items()]
    (target / "plugin-descriptor.properties").write_text("\n".join(lines) + "\n")
    if plugin.permissions:
        grants = "".join(f"  permission {p};\n" for p in plugin.permissions)
        (target / "plugin-security.policy").write_text(f"grant {{\n{grants}}};\n")
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


def stage_djl_natives(home: Path, data_dir: Path, dist: Distribution) -> Path:
    """Put libtorch where `dist`'s DJL looks under a node's data path, so that a model deploy never downloads it."""
    target = data_dir / dist.djl_torch_dir
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
