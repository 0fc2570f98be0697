"""Public retrieval data sets in BEIR layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), the way the
ecosystem gets them: a mirror directory first (closed networks: `$OPENSEARCH_KIT_DATASETS/<name>`), then the kit's
cache, then a download from the publisher, verified against its published checksum before it is unpacked."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from opensearch_kit.errors import KitError
from opensearch_kit.files import file_digest, kit_cache_dir
from opensearch_kit.progress import progress_bar

MIRROR_ENV = "OPENSEARCH_KIT_DATASETS"
BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{}.zip"
AUTORAG_URL = (
    "https://raw.githubusercontent.com/Marker-Inc-Korea/AutoRAG-example-korean-embedding-benchmark/"
    "76cd3220d73482a74a19ad713817e25c5c3a6e76/data/{}"
)
AUTORAG_CORPUS_BLOB = "fc4a0d327dfe2eb8381d79fd22d5bdc757c985c3"
AUTORAG_QA_BLOB = "401e8e681a9503d1524eb2570ab7946f6968c3ed"
COMPLETE = ".complete"  # written last: a folder without it is an interrupted unpack


@dataclass(frozen=True)
class RemoteFile:
    """One file to download and its published checksum, `<algorithm>:<hex>` (md5, sha256, or git-blob: the git
    object id of the file, for files published in a git repository)."""

    url: str
    checksum: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetSource:
    """Where a data set comes from and how its downloaded files become a BEIR folder."""

    name: str
    files: tuple[RemoteFile, ...]
    build: Callable[[list[Path], Path], None]
    description: str = ""


def unzip_beir(files: list[Path], target: Path) -> None:
    """A BEIR zip holds one folder (`<name>/corpus.jsonl ...`): its contents become `target`."""
    try:
        with zipfile.ZipFile(files[0]) as z:
            z.extractall(target.parent / (target.name + ".unzip"))
    except zipfile.BadZipFile as e:
        raise KitError(f"{files[0].name} is not a valid zip ({e})", "delete it and download again") from e
    unpacked = target.parent / (target.name + ".unzip")
    inner = next((p.parent for p in sorted(unpacked.rglob("corpus.jsonl"))), None)
    if inner is None:
        shutil.rmtree(unpacked, ignore_errors=True)
        raise KitError(f"{files[0].name} holds no corpus.jsonl", "this is not a BEIR-format archive")
    inner.replace(target)
    shutil.rmtree(unpacked, ignore_errors=True)


def autorag_to_beir(files: list[Path], target: Path) -> None:
    """AutoRAG's parquet files (corpus: doc_id, contents; QA: qid, query, retrieval_gt) as BEIR, ids kept."""
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise KitError("reading AutoRAG's parquet files needs pyarrow", "pip install 'opensearch-kit[eval]'") from e
    corpus, qa = (pq.read_table(f).to_pylist() for f in files)
    target.mkdir(parents=True)
    (target / "qrels").mkdir()
    with (target / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for row in corpus:
            f.write(json.dumps({"_id": row["doc_id"], "title": "", "text": row["contents"]}, ensure_ascii=False) + "\n")
    with (target / "queries.jsonl").open("w", encoding="utf-8") as f:
        for row in qa:
            f.write(json.dumps({"_id": row["qid"], "text": row["query"]}, ensure_ascii=False) + "\n")
    rows = [f"{row['qid']}\t{doc}\t1" for row in qa for group in row["retrieval_gt"] for doc in group]
    (target / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n", "utf-8")


def _beir(name: str, md5: str, description: str) -> DatasetSource:
    return DatasetSource(name, (RemoteFile(BEIR_URL.format(name), f"md5:{md5}"),), unzip_beir, description)


# The BEIR sets with the md5 BEIR publishes for each zip, and the Korean AutoRAG benchmark (MTEB's
# AutoRAGRetrieval) from the authors' repository at the commit that added the data, checked by git object id.
DATASETS = {
    source.name: source
    for source in (
        _beir("scifact", "5f7d1de60b170fc8027bb7898e2efca1", "scientific claims, 5K docs, 300 test queries"),
        _beir("nfcorpus", "a89dba18a62ef92f7d323ec890a0d38d", "nutrition / medical, 3.6K docs, 323 queries"),
        _beir("fiqa", "17918ed23cd04fb15047f73e6c3bd9d9", "financial QA, 57K docs, 648 queries"),
        _beir("arguana", "8ad3e3c2a5867cdced806d6503f29b99", "counter-arguments, 8.7K docs, 1,406 queries"),
        _beir("scidocs", "38121350fc3a4d2f48850f6aff52e4a9", "citation prediction, 25K docs, 1,000 queries"),
        _beir("quora", "18fb154900ba42a600f84b839c173167", "duplicate questions, 523K docs, 10K queries"),
        _beir("webis-touche2020", "46f650ba5a527fc69e0a6521c5a23563", "arguments, 382K docs, 49 queries"),
        _beir("climate-fever", "8b66f0a9126c521bae2bde127b4dc99d", "climate claims, 5.4M docs, 1,535 queries"),
        _beir("dbpedia-entity", "c2a39eb420a3164af735795df012ac2c", "entities, 4.6M docs, 400 queries"),
        _beir("hotpotqa", "f412724f78b0d91183a0e86805e16114", "multi-hop QA, 5.2M docs, 7,405 queries"),
        _beir("nq", "d4d3d2e48787a744b6f6e691ff534307", "Natural Questions, 2.7M docs, 3,452 queries"),
        _beir("fever", "5a818580227bfb4b35bb6fa46d9b6c03", "fact checking, 5.4M docs, 6,666 queries"),
        DatasetSource(
            "autorag-retrieval-ko",
            (
                RemoteFile(AUTORAG_URL.format("ocr_corpus_v3.parquet"), f"git-blob:{AUTORAG_CORPUS_BLOB}"),
                RemoteFile(AUTORAG_URL.format("qa_v4.parquet"), f"git-blob:{AUTORAG_QA_BLOB}"),
            ),
            autorag_to_beir,
            "Korean RAG pages (law, commerce, public, finance), 720 docs, 114 queries",
        ),
    )
}


def source_of(name: str, sources: dict[str, DatasetSource] | None = None) -> DatasetSource:
    """The source of a data set by name (case and `_`/`-` ignored)."""
    sources = DATASETS if sources is None else sources
    key = name.strip().lower().replace("_", "-")
    if key not in sources:
        raise KitError(f"unknown data set {name!r}", f"one of: {', '.join(sources)}; or pass a BEIR folder's path")
    return sources[key]


def get(
    name: str,
    *,
    directory: Path | None = None,
    mirror: Path | None = None,
    sources: dict[str, DatasetSource] | None = None,
    progress: bool = True,
) -> Path:
    """The BEIR folder of data set `name`: `<mirror>/<name>` when the mirror (default $OPENSEARCH_KIT_DATASETS)
    has it, else `<directory>/<name>` (default: the kit's cache), downloaded, checked and unpacked there once."""
    source = source_of(name, sources)
    mirror = mirror or (Path(os.environ[MIRROR_ENV]) if os.environ.get(MIRROR_ENV) else None)
    if mirror:
        for folder in (source.name, source.name.replace("-", "_")):
            if (mirror / folder / "corpus.jsonl").is_file():
                return mirror / folder
    root = Path(directory) if directory else kit_cache_dir() / "datasets"
    target = root / source.name
    if (target / COMPLETE).exists():
        return target
    downloads = root / ".downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    files = [_download(f, downloads / f.filename, source.name, mirror, progress) for f in source.files]
    shutil.rmtree(target, ignore_errors=True)
    try:
        source.build(files, target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    (target / COMPLETE).write_text("")
    for f in files:
        f.unlink()
    return target


def _download(remote: RemoteFile, dest: Path, name: str, mirror: Path | None, progress: bool) -> Path:
    """`remote` into `dest`, its checksum verified; failures name the mirror as the other way."""
    partial = dest.with_name(dest.name + ".part")
    try:
        with requests.get(remote.url, stream=True, timeout=60) as resp:
            resp.raise_for_status()
            total = int(resp.headers.get("Content-Length") or 0) or None
            with (
                partial.open("wb") as out,
                progress_bar(total, desc=f"download {name}", unit="B", unit_scale=True, enabled=progress) as bar,
            ):
                for block in resp.iter_content(1 << 20):
                    out.write(block)
                    bar.update(len(block))
    except requests.RequestException as e:
        partial.unlink(missing_ok=True)
        raise KitError(f"cannot download data set {name} from {remote.url}: {_reason(e)}", _ways(name, mirror)) from e
    algorithm, expected = remote.checksum.split(":", 1)
    actual = file_digest(partial, algorithm)
    if actual != expected:
        partial.unlink()
        raise KitError(
            f"data set {name}: {remote.filename} has {algorithm} {actual}, the publisher's is {expected} "
            "(a corrupted download, a proxy's error page, or a changed file upstream)",
            _ways(name, mirror),
        )
    partial.replace(dest)
    return dest


def _reason(e: requests.RequestException) -> str:
    if isinstance(e, requests.HTTPError) and e.response is not None:
        return f"HTTP {e.response.status_code} {e.response.reason}"
    if isinstance(e, requests.Timeout):
        return "no answer in time"
    if isinstance(e, requests.ConnectionError):
        return "the host cannot be reached (no network, DNS or a proxy in the way)"
    return type(e).__name__


def _ways(name: str, mirror: Path | None) -> str:
    where = f"{mirror}/{name}" if mirror else f"${MIRROR_ENV}/{name}"
    return (
        f"with internet access, run the same command again (a proxy needs HTTPS_PROXY); in a closed network, put "
        f"the data set's BEIR folder (corpus.jsonl, queries.jsonl, qrels/) at {where} and set {MIRROR_ENV}"
    )
