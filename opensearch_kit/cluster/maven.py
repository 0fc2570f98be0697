"""Download artifacts from a Maven repository into a checksum-verified cache."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from opensearch_kit.errors import KitError
from opensearch_kit.files import file_digest
from opensearch_kit.progress import progress_bar

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
MAVEN_REPO_ENV = "OPENSEARCH_KIT_MAVEN_REPO"
# Strongest first; Maven Central always publishes .sha1, newer uploads also .sha512.
CHECKSUM_KINDS = ("sha512", "sha256", "sha1")


@dataclass(frozen=True)
class MavenArtifact:
    """A Maven coordinate: group:artifact:version[:classifier]@ext."""

    group: str
    artifact: str
    version: str
    ext: str = "jar"
    classifier: str = ""
    sha256: str = ""  # pinned digest; when empty the repository's published checksum is used

    @property
    def filename(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.{self.ext}"

    @property
    def path(self) -> str:
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.filename}"

    def __str__(self) -> str:
        classifier = f":{self.classifier}" if self.classifier else ""
        return f"{self.group}:{self.artifact}:{self.version}{classifier}@{self.ext}"


def default_repo() -> str:
    """The Maven repository URL: $OPENSEARCH_KIT_MAVEN_REPO or Maven Central."""
    return os.environ.get(MAVEN_REPO_ENV, MAVEN_CENTRAL).rstrip("/")


class MavenCache:
    """Fetches artifacts once, verifies them against the repository's checksums, reuses them."""

    def __init__(self, cache_dir: Path, repo: str | None = None, progress: bool = True):
        self.cache_dir = Path(cache_dir)
        self.repo = (repo or default_repo()).rstrip("/")
        self.progress = progress
        self.downloaded: list[str] = []

    def url(self, artifact: MavenArtifact) -> str:
        return f"{self.repo}/{artifact.path}"

    def fetch(self, artifact: MavenArtifact) -> Path:
        """Path of the verified artifact in the cache, downloading it only when missing or corrupt."""
        target = self.cache_dir / artifact.path
        recorded = self._recorded_checksum(target)
        if target.exists() and recorded and file_digest(target, recorded[0]) == recorded[1]:
            return target
        if target.exists():
            print(f"cache entry {target} is corrupt or unverified; downloading it again", file=sys.stderr)
        kind, expected = ("sha256", artifact.sha256) if artifact.sha256 else self._remote_checksum(artifact)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        self._download(self.url(artifact), partial, artifact.filename)
        actual = file_digest(partial, kind)
        if actual != expected:
            partial.unlink()
            raise KitError(
                f"checksum mismatch for {self.url(artifact)}: {kind} {actual} != {expected}",
                "retry; if it persists the repository or a proxy serves a broken file",
            )
        partial.replace(target)
        target.with_name(target.name + ".checksum").write_text(f"{kind} {expected}\n")
        self.downloaded.append(str(artifact))
        return target

    @staticmethod
    def _recorded_checksum(target: Path) -> tuple[str, str] | None:
        record = target.with_name(target.name + ".checksum")
        if not record.exists():
            return None
        kind, _, value = record.read_text().strip().partition(" ")
        return (kind, value) if kind in CHECKSUM_KINDS and value else None

    def _remote_checksum(self, artifact: MavenArtifact) -> tuple[str, str]:
        for kind in CHECKSUM_KINDS:
            url = f"{self.url(artifact)}.{kind}"
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    return kind, resp.read().decode().split()[0].strip().lower()
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise self._download_error(url, e) from e
            except OSError as e:
                raise self._download_error(url, e) from e
        raise KitError(
            f"{artifact} is not in the Maven repository {self.repo} ({self.url(artifact)} has no checksum)",
            f"point --maven-repo (or ${MAVEN_REPO_ENV}) at a repository that mirrors Maven Central",
        )

    def _download(self, url: str, dest: Path, label: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, dest.open("wb") as out:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with progress_bar(total, unit="B", unit_scale=True, desc=label, enabled=self.progress) as bar:
                    for block in iter(lambda: resp.read(1 << 20), b""):
                        out.write(block)
                        bar.update(len(block))
        except OSError as e:
            dest.unlink(missing_ok=True)
            raise self._download_error(url, e) from e

    def _download_error(self, url: str, err: Exception) -> KitError:
        return KitError(
            f"download failed: {url}: {err}",
            f"check the network or point --maven-repo (or ${MAVEN_REPO_ENV}) at a reachable Maven mirror",
        )
