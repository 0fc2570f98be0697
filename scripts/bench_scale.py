"""Scale: N documents end to end with the demo models (tiny SPLADE int8 + all-MiniLM-L6-v2, ONNX, client mode).

    python scripts/bench_scale.py --url http://127.0.0.1:9200 --docs 10000 [--queries 200]
        [--ray-docs 1000] [--out scale.json] [--chart scale.png] [--reuse] [--no-field-sizes]
        [--n-postings 800 [--cluster-ratio 0.1,0.2] [--summary-prune-ratio 0.4]]

Builds a deterministic corpus (scripts/scale_corpus.py), deploys both ONNX exports (so in-cluster and local query
encoding run the very same graphs), then measures, for that N:
- ingest docs/s of the N documents, in-process client mode, into a `rank_features` + dense index; in-process vs
  `--engine ray` (2 actors, the same cores) on the first `--ray-docs`; the `sparse_vector` (SEISMIC) index gets
  the same sparse vectors keyed by token id (no second encoding); index size on disk (per field: less a reindexed
  copy without it), JVM heap used;
- query p50/p99 per mode (bm25, sparse on rank_features, sparse on sparse_vector, sparse+two-phase, dense, hybrid,
  hybrid+rrf) with in-cluster and with local query encoding, hybrid fused client-side (the default) and by the
  server's hybrid query, and where a hybrid query's time goes (local encoding, ML Commons predict, each
  sub-query's server time, the hybrid's, the HTTP round trip);
- QPS of bm25 and hybrid (local encoding) at 1/4/8 clients, with errors;
- SEISMIC recall@10 against the exact rank_features ranking of the same query tokens, and both p50s (wall and
  server took), over a top_n x heap_factor grid, beside a search that scores nothing (match_none: the fixed cost of
  a search); on the default index and on copies built with each combination of --n-postings, --cluster-ratio and
  --summary-prune-ratio.
Every index is force-merged to one segment before querying (SEISMIC clusters whole segments). One JSON report and
a chart. Figures are wall times on this machine as it is: say how loaded it was.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from bench_load import run_load
from scale_corpus import queries, write_corpus

from opensearch_kit.cli.common import quiet
from opensearch_kit.cluster import default_cache
from opensearch_kit.deploy import deploy_artifact
from opensearch_kit.export import export_model
from opensearch_kit.index import Seismic, create_index, delete_index
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.ingest import ingest
from opensearch_kit.opensearch import Connection
from opensearch_kit.search import QueryOptions, Searcher, SeismicQuery, local_dense_encoder, local_sparse_encoder
from opensearch_kit.wheel_models import wheel_model_path

WARMUP = 10
MODES = ("bm25", "sparse", "sparse+two-phase", "dense", "hybrid", "hybrid+rrf")
GRID = {"top_n": (5, 10, 20, 40), "heap_factor": (1.0, 1.2, 1.35, 1.5, 2.0)}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def timed(values: list[float]) -> dict:
    return {"p50": round(statistics.median(values), 2), "p99": pct(values, 0.99)}


def heap_mb(cluster) -> float:
    nodes = cluster.request("GET", "/_nodes/stats/jvm")["nodes"].values()
    return round(sum(n["jvm"]["mem"]["heap_used_in_bytes"] for n in nodes) / 2**20, 1)


def merged(cluster, index: str) -> None:
    """One segment (SEISMIC builds its clusters per segment, at merge), refreshed and warmed up again."""
    cluster.request("POST", f"/{index}/_forcemerge", params={"max_num_segments": "1"})
    cluster.request("POST", f"/{index}/_refresh")
    if "sparse_vector" in json.dumps(cluster.request("GET", f"/{index}/_mapping")):
        cluster.request("POST", f"/_plugins/_neural/warmup/{index}")


def store_bytes(cluster, index: str) -> int:
    return cluster.request("GET", f"/{index}/_stats/store")["_all"]["primaries"]["store"]["size_in_bytes"]


def field_bytes(cluster, index: str, fields: list[str], docs: int) -> dict[str, float]:
    """Bytes per document each vector field costs: the index's size less that of a copy without the field (mapping
    and _source), both force-merged."""
    mapping = next(iter(cluster.request("GET", f"/{index}/_mapping").values()))["mappings"]
    settings = next(iter(cluster.request("GET", f"/{index}/_settings").values()))["settings"]["index"]
    kept = {k: settings[k] for k in ("knn", "sparse") if k in settings}
    full = store_bytes(cluster, index)
    out = {"all": round(full / docs, 1)}
    for name in fields:
        copy = f"{index}-without-{name.replace('_', '-')}"
        delete_index_plain(cluster, copy)
        properties = {k: v for k, v in mapping["properties"].items() if k != name}
        cluster.request("PUT", f"/{copy}", {"settings": {"index": {"number_of_replicas": 0, **kept}},
                                            "mappings": {"properties": properties}})  # fmt: skip
        body = {"source": {"index": index, "_source": {"excludes": [name]}}, "dest": {"index": copy}}
        cluster.request("POST", "/_reindex", body, params={"refresh": "true", "request_timeout": 3600})
        merged(cluster, copy)
        out[name] = round((full - store_bytes(cluster, copy)) / docs, 1)
        delete_index_plain(cluster, copy)
    return out


def count(cluster, index: str) -> int:
    """Documents in the index, or -1 when it does not exist."""
    if not cluster.exists(f"/{index}"):
        return -1
    cluster.request("POST", f"/{index}/_refresh")
    return cluster.request("GET", f"/{index}/_count")["count"]


def delete_index_plain(cluster, index: str) -> None:
    if cluster.exists(f"/{index}"):
        cluster.request("DELETE", f"/{index}")


def predict_ms(cluster, model_id: str, algorithm: str, texts: list[str]) -> dict:
    """ML Commons' own predict latency for one query text (what in-cluster query encoding costs)."""
    values = []
    for text in texts:
        began = time.perf_counter()
        cluster.request("POST", f"/_plugins/_ml/_predict/{algorithm}/{model_id}", {"text_docs": [text]})
        values.append((time.perf_counter() - began) * 1000)
    return timed(values[WARMUP:])


def encode_ms(encoder, texts: list[str]) -> dict:
    values = []
    for text in texts:
        began = time.perf_counter()
        encoder(text)
        values.append((time.perf_counter() - began) * 1000)
    return timed(values[WARMUP:])


def latencies(paths: dict[str, tuple[Searcher, QueryOptions]], texts: list[str]) -> dict[str, dict]:
    """Every path on each query in turn (load drifts hit all alike): wall p50/p99 and the server's took p50."""
    wall: dict[str, list[float]] = {p: [] for p in paths}
    took: dict[str, list[float]] = {p: [] for p in paths}
    for n, text in enumerate(texts):
        for path, (searcher, options) in paths.items():
            result = searcher.search(text, options)
            if n >= WARMUP:
                wall[path].append(result.latency_ms)
                took[path].append(result.took_ms)
    return {p: {**timed(wall[p]), "took_p50": statistics.median(took[p])} for p in paths}


def seismic_grid(cluster, rf: str, sv: str, texts: list[str], words, ids) -> list[dict]:
    """recall@10 of SEISMIC against the exact rank_features top 10 of the same query tokens, and both p50s: the
    client's wall time and the server's `took` (the search alone, without the round trip); and the p50 of a search
    that scores nothing (`match_none`, size 10): what every search costs besides its query phase."""
    word_tokens = {t: words(t) for t in texts}
    id_tokens = {t: ids(t) for t in texts}
    exact = Searcher(cluster, rf, sparse_encoder=word_tokens.__getitem__, encoding="local")
    seismic = Searcher(cluster, sv, sparse_encoder=id_tokens.__getitem__, encoding="local")
    options = QueryOptions(mode="sparse", k=10, source=())
    truth, exact_ms, exact_took, nothing_ms = {}, [], [], []
    for n, text in enumerate(texts):
        result = exact.search(text, options)
        truth[text] = {h.id for h in result.hits}
        began = time.perf_counter()
        cluster.request("POST", f"/{sv}/_search", {"size": 10, "_source": False, "query": {"match_none": {}}})
        if n >= WARMUP:
            exact_ms.append(result.latency_ms)
            exact_took.append(result.took_ms)
            nothing_ms.append((time.perf_counter() - began) * 1000)
    rows = []
    for top_n in GRID["top_n"]:
        for heap_factor in GRID["heap_factor"]:
            point = replace(options, seismic=SeismicQuery(top_n=top_n, heap_factor=heap_factor))
            found, ms, took = [], [], []
            for n, text in enumerate(texts):
                result = seismic.search(text, point)
                if truth[text]:
                    found.append(len(truth[text] & {h.id for h in result.hits}) / len(truth[text]))
                if n >= WARMUP:
                    ms.append(result.latency_ms)
                    took.append(result.took_ms)
            rows.append({"top_n": top_n, "heap_factor": heap_factor, "recall@10": round(statistics.mean(found), 4),
                         "p50_ms": round(statistics.median(ms), 2), "took_p50_ms": statistics.median(took),
                         "exact_rank_features_p50_ms": round(statistics.median(exact_ms), 2),
                         "exact_rank_features_took_p50_ms": statistics.median(exact_took),
                         "match_none_p50_ms": round(statistics.median(nothing_ms), 2)})  # fmt: skip
    return rows


def seismic_with(conn: Connection, rf: str, sparse_dir: Path, seismic: Seismic, texts: list[str], words, ids) -> dict:
    """A sparse_vector copy of the rank_features index built with `seismic`'s index parameters (refresh off while
    copying, so SEISMIC clusters once, at the merge, not at every refresh and merge), its build time and size, and
    its grid."""
    cluster = conn.transport(timeout=3600)
    built_with = seismic.parameters()
    sv = "scale-sparse-vector-" + built_label(built_with).replace(", ", "-").replace(" ", "")
    delete_index(cluster, sv, missing_ok=True)
    began = time.perf_counter()
    model = IndexMeta.read(cluster, rf).sparse.model_id
    create_index(cluster, sv, model, sparse_type="sparse_vector", sparse_encoder=sparse_dir, seismic=seismic)
    cluster.request("PUT", f"/{sv}/_settings", {"index": {"refresh_interval": "-1"}})
    copy_as_token_ids(conn, rf, sv, sparse_dir)
    cluster.request("PUT", f"/{sv}/_settings", {"index": {"refresh_interval": None}})
    merged(cluster, sv)
    built = time.perf_counter() - began
    docs = count(cluster, sv)
    out = {"index": built_with, "build_s": round(built, 1), "bytes_per_doc": round(store_bytes(cluster, sv) / docs, 1)}
    out["grid"] = seismic_grid(cluster, rf, sv, texts, words, ids)
    delete_index(cluster, sv)
    return out


def seismic_builds(n_postings: str, cluster_ratios: str, summary_prune_ratios: str) -> list[Seismic]:
    """One Seismic per combination of the comma-separated values (an empty list: neural-search's default); none
    when all three are empty."""
    values = [[cast(v) for v in text.split(",") if v.strip()] or [None] for text, cast in (
        (n_postings, int), (cluster_ratios, float), (summary_prune_ratios, float))]  # fmt: skip
    if values == [[None]] * 3:
        return []
    return [Seismic(n, c, p) for n, c, p in itertools.product(*values)]


def brief(ingested: dict) -> dict:
    return {f: ingested[f] for f in ("indexed", "rejected", "seconds", "docs_per_s", "warm_up")}


def copy_as_token_ids(conn: Connection, source: str, dest: str, sparse_dir: Path) -> None:
    """The sparse_vector index from the rank_features one: the same weights, keyed by token id (no re-encoding)."""
    from opensearchpy.helpers import bulk, scan
    from tokenizers import Tokenizer

    from opensearch_kit.artifact import Artifact

    vocab = Tokenizer.from_file(str(Artifact.locate(sparse_dir, "sparse").tokenizer_file))
    client = conn.client()

    def actions():
        for hit in scan(client, index=source, query={"query": {"match_all": {}}}, _source_excludes=["dense_embedding"]):
            doc = hit["_source"]
            doc["sparse_embedding"] = {str(vocab.token_to_id(w)): v for w, v in doc["sparse_embedding"].items()}
            yield {"_index": dest, "_id": hit["_id"], "_source": doc, "pipeline": "_none"}

    bulk(client, actions(), chunk_size=500, request_timeout=600)


def engines(conn: Connection, ids: dict, dirs: dict, corpus: Path, docs: int) -> dict:
    """In-process client mode and --engine ray (2 actors) on the same first `docs` documents, sparse + dense."""
    from opensearch_kit.ingest.ray_engine import ingest_ray

    cluster = conn.transport(timeout=600)
    head = corpus.with_name(f"{corpus.stem}-head-{docs}.jsonl")
    head.write_text("".join(corpus.open(encoding="utf-8").readlines()[:docs]), encoding="utf-8")
    out = {}
    for engine in ("in-process", "ray"):
        index = f"scale-engine-{engine}"
        delete_index(cluster, index, missing_ok=True)
        create_index(cluster, index, ids["sparse"], dense_model=ids["dense"])
        kwargs = {"sparse_encoder": dirs["sparse"], "dense_encoder": dirs["dense"], "workers": 2}
        if engine == "ray":
            done = ingest_ray(conn, index, head, **kwargs)
        else:
            done = ingest(cluster, index, head, mode="client", **kwargs)
        out[engine] = brief(done.to_dict())
        delete_index(cluster, index)
    out["ray overhead"] = round(out["ray"]["seconds"] / out["in-process"]["seconds"] - 1, 3)
    return out


def built_label(parameters: dict) -> str:
    """`n_postings 800, cluster_ratio 0.2`: the index parameters a SEISMIC copy was built with."""
    return ", ".join(f"{k} {v:g}" for k, v in parameters.items() if k != "approximate_threshold") or "default index"


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    lat = report["latency_ms"]
    names = list(lat)
    left.barh(names, [lat[n]["p50"] for n in names], color="tab:blue")
    left.set_xlabel("p50 ms (wall, query encoding included)")
    left.set_title(f"{report['docs']} documents: query latency per path")
    left.invert_yaxis()
    builds = [("default index", report["seismic"])]
    builds += [(built_label(b["index"]), b["grid"]) for b in report.get("seismic_builds", [])]
    for label, grid in builds:
        right.scatter([r["p50_ms"] for r in grid], [r["recall@10"] for r in grid], label=label)
        for r in grid:
            right.annotate(f"n{r['top_n']} h{r['heap_factor']:g}", (r["p50_ms"], r["recall@10"]), fontsize=7)
    exact = report["seismic"][0]["exact_rank_features_p50_ms"]
    right.axvline(exact, color="gray", ls="--", label="rank_features (exact) p50")
    right.set_xlabel("SEISMIC p50 ms")
    right.set_ylabel("recall@10 vs exact")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:9200")
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--load-seconds", type=float, default=8.0)
    parser.add_argument("--ray-docs", type=int, default=1000, help="in-process vs --engine ray on this many (0: skip)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep both indexes when they already hold --docs documents, and the ingest and size figures --out holds "
        "from the run that made them (measure the queries again)",
    )
    parser.add_argument(
        "--field-sizes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bytes per document of each vector field (a reindexed copy without it per field: minutes at 10^5)",
    )
    parser.add_argument(
        "--n-postings",
        default="",
        help="comma-separated SEISMIC n_postings values: a sparse_vector copy built with each (and each value of "
        "the next two), gridded like the default one (neural-search's default keeps max(0.0005 x N, 160) documents "
        "per token)",
    )
    parser.add_argument("--cluster-ratio", default="", help="comma-separated SEISMIC cluster_ratio values, as above")
    parser.add_argument(
        "--summary-prune-ratio", default="", help="comma-separated SEISMIC summary_prune_ratio values, as above"
    )
    parser.add_argument("--out", type=Path, default=Path("bench_scale.json"))
    parser.add_argument("--chart", type=Path, default=Path("bench_scale.png"))
    args = parser.parse_args()
    quiet(verbose=False)
    conn = Connection(args.url)
    cluster = conn.transport(timeout=600)
    work = default_cache().parent / "bench-scale"
    corpus = write_corpus(args.docs, work / f"corpus-v2-{args.docs}.jsonl")
    texts = queries(args.queries + WARMUP)
    report: dict = {"docs": args.docs, "queries": len(texts) - WARMUP, "corpus": str(corpus), "heap_mb": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every phase: a run cut short keeps what it measured
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    exports = {
        "sparse": export_model("sparse", str(wheel_model_path("tiny-splade")), work / "splade-int8",
                               format="onnx", quantize="int8", name="bench-scale-splade-int8"),
        "dense": export_model("dense", str(wheel_model_path("all-minilm-l6-v2")), work / "minilm",
                              format="onnx", name="bench-scale-minilm"),
    }  # fmt: skip
    ids = {kind: deploy_artifact(cluster, a, progress=False).model_id for kind, a in exports.items()}
    dirs = {kind: a.dir for kind, a in exports.items()}
    report["heap_mb"]["models deployed"] = heap_mb(cluster)

    rf, sv = "scale-rank-features", "scale-sparse-vector"
    reused = args.reuse and all(count(cluster, index) == args.docs for index in (rf, sv))
    earlier = json.loads(args.out.read_text(encoding="utf-8")) if reused and args.out.exists() else {}
    if reused:  # what the ingesting run measured stays in the report (from --out), marked as reused
        report["ingest"] = {**earlier.get("ingest", {}), "reused": f"{rf} and {sv} as an earlier run left them"}
        report["heap_mb"] = {**earlier.get("heap_mb", {}), **report["heap_mb"]}
    else:
        for index in (rf, sv):
            delete_index(cluster, index, missing_ok=True)
        create_index(cluster, rf, ids["sparse"], dense_model=ids["dense"])
        done = ingest(cluster, rf, corpus, mode="client", sparse_encoder=dirs["sparse"], dense_encoder=dirs["dense"])
        report["ingest"] = {"in-process client mode, sparse + dense": brief(done.to_dict())}
        report["heap_mb"]["after ingest"] = heap_mb(cluster)
        create_index(cluster, sv, ids["sparse"], sparse_type="sparse_vector", sparse_encoder=dirs["sparse"])
        copy_as_token_ids(conn, rf, sv, dirs["sparse"])
    if args.ray_docs:
        report["ingest"]["engines"] = engines(conn, ids, dirs, corpus, args.ray_docs)
    save()
    for index in (rf, sv):
        merged(cluster, index)
    report["heap_mb"]["merged, warmed up"] = heap_mb(cluster)
    save()
    report["seismic_index"] = Seismic().parameters()
    fields = {rf: ["sparse_embedding", "dense_embedding"], sv: ["sparse_embedding"]}
    report["bytes_per_doc"] = earlier.get("bytes_per_doc") or {
        index: field_bytes(cluster, index, names if args.field_sizes else [], args.docs)
        for index, names in fields.items()
    }

    words, dense = local_sparse_encoder(dirs["sparse"]), local_dense_encoder(dirs["dense"])
    token_ids = local_sparse_encoder(dirs["sparse"], token_ids=True)
    local = {"sparse_encoder": words, "dense_encoder": dense, "encoding": "local"}
    searchers = {
        ("rf", "cluster"): Searcher(cluster, rf, encoding="cluster"),
        ("rf", "local"): Searcher(cluster, rf, **local),
        ("rf", "local, server fusion"): Searcher(cluster, rf, **local, fusion="server"),
        ("sv", "cluster"): Searcher(cluster, sv, encoding="cluster"),
        ("sv", "local"): Searcher(cluster, sv, sparse_encoder=token_ids, encoding="local"),
    }
    paths = {"bm25": (searchers["rf", "cluster"], QueryOptions.parse("bm25", k=10, source=()))}
    for where in ("cluster", "local"):
        for mode in MODES[1:]:
            paths[f"{mode} ({where} encoding)"] = (searchers["rf", where], QueryOptions.parse(mode, k=10, source=()))
        sparse = QueryOptions("sparse", 10, source=())
        paths[f"sparse on sparse_vector ({where} encoding)"] = (searchers["sv", where], sparse)
    for mode in ("hybrid", "hybrid+rrf"):  # the hybrid query itself, fused by its pipeline on the server
        where = "local encoding, server fusion"
        paths[f"{mode} ({where})"] = (
            searchers["rf", "local, server fusion"],
            QueryOptions.parse(mode, k=10, source=()),
        )
    report["latency_ms"] = latencies(paths, texts)
    save()
    report["breakdown_ms"] = {
        "local encode sparse": encode_ms(words, texts),
        "local encode dense": encode_ms(dense, texts),
        "ML Commons predict sparse": predict_ms(cluster, ids["sparse"], "sparse_encoding", texts),
        "ML Commons predict dense": predict_ms(cluster, ids["dense"], "text_embedding", texts),
        **{f"server took, {m}": report["latency_ms"][p]["took_p50"] for m, p in (
            ("bm25", "bm25"), ("sparse", "sparse (local encoding)"), ("dense", "dense (local encoding)"),
            ("hybrid, client fusion (slowest sub-query)", "hybrid (local encoding)"),
            ("hybrid, server fusion", "hybrid (local encoding, server fusion)"),
            ("hybrid+rrf, server fusion", "hybrid+rrf (local encoding, server fusion)"))},
    }  # fmt: skip
    lat = report["latency_ms"]
    report["hybrid_over_bm25_p50"] = {
        w: round(lat[f"hybrid ({w})"]["p50"] / lat["bm25"]["p50"], 2)
        for w in ("cluster encoding", "local encoding", "local encoding, server fusion")
    }
    load_texts = texts[WARMUP:]
    report["load"] = [
        run_load(searchers["rf", "local"], mode, load_texts, clients, args.load_seconds)
        for mode in ("bm25", "hybrid")
        for clients in (1, 4, 8)
    ]
    save()
    report["seismic"] = seismic_grid(cluster, rf, sv, texts, words, token_ids)
    save()
    builds = seismic_builds(args.n_postings, args.cluster_ratio, args.summary_prune_ratio)
    report["seismic_builds"] = [] if builds else earlier.get("seismic_builds", [])
    for seismic in builds:
        report["seismic_builds"].append(seismic_with(conn, rf, dirs["sparse"], seismic, texts, words, token_ids))
        save()
    report["heap_mb"]["end"] = heap_mb(cluster)
    save()
    chart(report, args.chart)
    print(json.dumps({k: report[k] for k in ("ingest", "bytes_per_doc", "hybrid_over_bm25_p50", "breakdown_ms")},
                     indent=1))  # fmt: skip
    for path, v in lat.items():
        print(f"{path:44} p50 {v['p50']:7.1f}  p99 {v['p99']:7.1f}  took {v['took_p50']:5.1f}")
    for row in report["load"]:
        print(f"load {row['mode']:7} {row['clients']} clients: {row['qps']:6.1f} QPS, p50 {row['p50_ms']:.1f} ms, "
              f"errors {row['errors']}")  # fmt: skip
    for built in [{"index": {}, "grid": report["seismic"]}] + report["seismic_builds"]:
        for row in built["grid"]:
            print(f"seismic {built_label(built['index'])}: top_n {row['top_n']:2} heap {row['heap_factor']:g}: "
                  f"recall@10 {row['recall@10']:.3f}, p50 {row['p50_ms']:.1f} ms, took {row['took_p50_ms']:.1f} "
                  f"(exact {row['exact_rank_features_p50_ms']:.1f}, "
                  f"took {row['exact_rank_features_took_p50_ms']:.1f}; "
                  f"match_none {row['match_none_p50_ms']:.1f})")  # fmt: skip
    print(f"wrote {args.out} and {args.chart}")


if __name__ == "__main__":
    main()
