"""The `opensearch-kit` command line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from opensearch_kit.client import DEFAULT_URL, Connection
from opensearch_kit.errors import KitError
from opensearch_kit.local_cluster import DEFAULT_HEAP, LocalCluster, default_cache
from opensearch_kit.maven import MAVEN_REPO_ENV, MavenCache


def emit(record: dict | list, as_json: bool, text: str) -> None:
    """Print `record` as JSON for scripts, or `text` for people."""
    click.echo(json.dumps(record, indent=2, ensure_ascii=False) if as_json else text)


json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON record for scripts.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--url", envvar="OPENSEARCH_URL", default=DEFAULT_URL, show_default=True, help="Cluster URL (env OPENSEARCH_URL)."
)
@click.option("--user", envvar="OPENSEARCH_USER", help="Basic-auth user (env OPENSEARCH_USER).")
@click.option("--password", envvar="OPENSEARCH_PASSWORD", help="Basic-auth password (env OPENSEARCH_PASSWORD).")
@click.option(
    "--ca-certs",
    envvar="OPENSEARCH_CA_CERTS",
    type=click.Path(exists=True, dir_okay=False),
    help="CA bundle for TLS verification.",
)
@click.option("--insecure", is_flag=True, help="Skip TLS certificate verification (not recommended).")
@click.option("--aws-sigv4", is_flag=True, help="Sign requests with AWS SigV4 (needs boto3).")
@click.pass_context
def main(ctx: click.Context, url, user, password, ca_certs, insecure, aws_sigv4) -> None:
    """Hugging Face retrieval models into OpenSearch: export, deploy, index, search, evaluate."""
    ctx.obj = Connection(url, user, password, ca_certs, insecure, aws_sigv4)


@main.group()
def cluster() -> None:
    """A local OpenSearch (ML Commons, neural-search, k-NN, nori) assembled from Maven Central."""


def _local(ctx: click.Context, maven_repo: str | None = None, home: Path | None = None) -> LocalCluster:
    return LocalCluster.for_url(ctx.obj.url, home=home, cache=MavenCache(default_cache(), maven_repo))


home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OPENSEARCH_KIT_HOME",
    help="Install and node-data directory (env OPENSEARCH_KIT_HOME).",
)


@cluster.command("start")
@click.option("--nodes", default=1, show_default=True, type=click.IntRange(1, 5), help="Nodes on loopback ports.")
@click.option("--heap", default=DEFAULT_HEAP, show_default=True, help="JVM heap per node.")
@click.option("--maven-repo", envvar=MAVEN_REPO_ENV, help=f"Maven repository or mirror (env {MAVEN_REPO_ENV}).")
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait for a healthy cluster.")
@home_option
@json_option
@click.pass_context
def cluster_start(ctx, nodes, heap, maven_repo, timeout, home, as_json) -> None:
    """Download (once), assemble and start the local cluster; wait until it is healthy."""
    local = _local(ctx, maven_repo, home)
    began = time.monotonic()
    rec = local.start(nodes=nodes, heap=heap, timeout=timeout)
    record = {
        "url": rec.url,
        "nodes": rec.nodes,
        "pids": rec.pids,
        "java_home": rec.java_home,
        "home": rec.home,
        "downloaded": local.maven.downloaded,
        "seconds": round(time.monotonic() - began, 1),
        "logs": [str(local.log_file(i)) for i in range(rec.nodes)],
    }
    fetched = f"downloaded {len(local.maven.downloaded)} artifact(s)" if local.maven.downloaded else "cache only"
    emit(
        record,
        as_json,
        f"cluster up at {rec.url}: {rec.nodes} node(s), pids {rec.pids} "
        f"({record['seconds']}s, {fetched})\nlogs: {', '.join(record['logs'])}",
    )


@cluster.command("stop")
@home_option
@json_option
@click.pass_context
def cluster_stop(ctx, home, as_json) -> None:
    """Stop the local cluster's nodes cleanly."""
    pids = _local(ctx, home=home).stop()
    emit({"stopped": pids}, as_json, f"stopped pids {pids}" if pids else "no local cluster was running")


@cluster.command("status")
@json_option
@click.pass_context
def cluster_status(ctx, as_json) -> None:
    """Version, plugins, nodes and health of the cluster at --url."""
    from opensearch_kit.cluster_info import cluster_status as status

    info = status(ctx.obj)
    plugins = ", ".join(sorted({p["component"] for p in info["plugins"]}))
    emit(
        info,
        as_json,
        f"{ctx.obj.url}: OpenSearch {info['version']}, health {info['health']['status']}, "
        f"{info['health']['number_of_nodes']} node(s)\nplugins: {plugins}\n"
        f"k-NN engine: {info['knn_engine']}",
    )


@main.command()
@click.option("--sparse-model", help="Sparse encoder (local path or hub id); default: the tiny SPLADE from PyPI.")
@click.option("--dense-model", help="Dense embedder (local path or hub id); default: all-MiniLM-L6-v2 from PyPI.")
@click.option("--reranker", help="Optional reranker (local path or hub id); adds hybrid+rerank.")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where exports are kept between runs (default: the user cache).",
)
@json_option
@click.pass_context
def demo(ctx, sparse_model, dense_model, reranker, work_dir, as_json) -> None:
    """The whole path on small real models: local cluster, export + deploy, index + ingest, hybrid search, eval."""
    from opensearch_kit.client import cluster_errors
    from opensearch_kit.demo import DemoModels, run_demo

    work_dir = work_dir or default_cache() / "demo"
    with cluster_errors(ctx.obj):
        record = run_demo(ctx.obj, DemoModels(sparse_model, dense_model, reranker), work_dir, progress=not as_json)
    lines = [f"cluster {record['cluster']}" + (" (started locally)" if record["started_cluster"] else "")]
    for kind, m in record["models"].items():
        how = "reused" if m["reused"] else f"uploaded {m['uploaded_bytes'] / 1e6:.1f} MB"
        lines.append(f"  {kind:<9} {m['model_id']}  {m['name']}: {how}, in-cluster parity OK")
    ingest = record["ingest"]
    lines.append(
        f"index {record['index']['index']}: {ingest['indexed']} documents indexed, {ingest['rejected']} rejected"
    )
    for search in record["searches"]:
        lines.append(f"\nhybrid: {search['query']}  ({search['latency_ms']} ms)")
        for hit in search["hits"]:
            signals = ", ".join(f"{k} {v:.3f}" for k, v in (hit["signals"] or {}).items())
            lines.append(f"  {hit['score']:.4f}  {hit['id']:<6} {hit['title']}  [{signals}]")
    lines.append("\nsample-set evaluation (NDCG@10 / Recall@10 / p50 ms):")
    for mode, m in record["evaluation"].items():
        lines.append(f"  {mode:<12} {m['NDCG@10']:.3f} / {m['Recall@10']:.3f} / {m['p50_ms']:.0f}")
    lines.append(
        '\nnext: opensearch-kit search opensearch-kit-demo "your query"; stop with opensearch-kit cluster stop'
    )
    emit(record, as_json, "\n".join(lines))


@main.group()
def export() -> None:
    """Export Hugging Face models to the form ML Commons runs, with a parity check."""


@export.command("sparse")
@click.argument("model")
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), default="torchscript", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--name", help="Artifact name (default: the model folder name).")
@click.option(
    "--prune-ratio",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Zero weights below this fraction of each text's largest weight, in the graph.",
)
@click.option("--quantize", type=click.Choice(["int8"]), help="Dynamic int8 (ONNX only), with a quality report.")
@click.option("--max-length", type=int, help="Truncation length (default: the model's, at most 512).")
@click.option("--trust-remote-code", is_flag=True, help="Allow models that ship their own modeling code.")
@json_option
def export_sparse_cmd(model, fmt, out_dir, name, prune_ratio, quantize, max_length, trust_remote_code, as_json):
    """Export a SPLADE-style sparse encoder (MODEL: local path or hub id) as a SPARSE_ENCODING zip."""
    from opensearch_kit.sparse_export import export_sparse

    result = export_sparse(model, fmt, out_dir, name, prune_ratio, quantize, trust_remote_code, max_length)
    parity = result.report["parity"]
    lines = [
        f"wrote {result.zip_path} and {result.register_path}",
        f"parity {parity['name']}: max|diff| {parity['max_abs_diff']:.2e}, non-zero mismatches "
        f"{parity['nonzero_mismatch']} ({'OK' if parity['ok'] else 'FAILED'}); report {result.report_path}",
    ]
    if "int8_quality" in result.report:
        q = result.report["int8_quality"]
        lines.append(
            f"int8 vs fp32: top-20 overlap {q['top20_overlap_mean']:.3f}, "
            f"score rank correlation {q['score_spearman']:.4f}"
        )
    if fmt == "onnx":
        lines.append(
            "ONNX: ML Commons 3.6 serves SPARSE_ENCODING from ONNX (inputs input1.input_ids, "
            "input1.attention_mask); the same file powers opensearch_kit.SparseEncoder locally"
        )
    record = {"zip": str(result.zip_path), "register": str(result.register_path), **result.report}
    emit(record, as_json, "\n".join(lines))


@export.command("sparse-tokenizer")
@click.argument("model")
@click.option(
    "--idf",
    "idf_source",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="idf.json, or a JSONL / BEIR corpus to compute it from.",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--name", help="Artifact name (default: <model folder>-tokenizer).")
@json_option
def export_sparse_tokenizer_cmd(model, idf_source, out_dir, name, as_json):
    """Build the inference-free query side: a SPARSE_TOKENIZE zip with tokenizer.json and idf.json."""
    from opensearch_kit.artifact import default_name
    from opensearch_kit.sparse_tokenizer import export_sparse_tokenizer

    zip_path, register = export_sparse_tokenizer(model, idf_source, out_dir, name or f"{default_name(model)}-tokenizer")
    emit({"zip": str(zip_path), "register": str(register)}, as_json, f"wrote {zip_path} and {register}")


@main.group("index")
def index_group() -> None:
    """Hybrid indexes: text, sparse and dense vector fields, their ingest and search pipelines."""


@index_group.command("create")
@click.argument("index")
@click.option("--sparse-model", required=True, help="Id of the deployed SPARSE_ENCODING model.")
@click.option("--dense-model", help="Id of a deployed TEXT_EMBEDDING model (adds a Lucene HNSW knn_vector field).")
@click.option("--rerank-model", help="Id of a deployed TEXT_SIMILARITY model (adds the rerank search pipeline).")
@click.option("--language", type=click.Choice(["en", "ko"]), default="en", show_default=True, help="Text analyzer.")
@click.option("--chunking", help="Chunk texts in the ingest pipeline: TOKEN_LIMIT[:OVERLAP_RATE], e.g. 384:0.1.")
@click.option(
    "--sparse-type",
    type=click.Choice(["rank_features", "sparse_vector"]),
    default="rank_features",
    show_default=True,
    help="sparse_vector: SEISMIC approximate search (neural-search 3.3+).",
)
@click.option("--prune", help="Prune document vectors at ingest: TYPE:RATIO (top_k, max_ratio, alpha_mass, abs_value).")
@click.option("--weights", help="Hybrid sub-query weights summing to 1, e.g. 0.3,0.7 (default: equal).")
@click.option("--shards", default=1, show_default=True, type=click.IntRange(1))
@json_option
@click.pass_context
def index_create(
    ctx,
    index,
    sparse_model,
    dense_model,
    rerank_model,
    language,
    chunking,
    sparse_type,
    prune,
    weights,
    shards,
    as_json,
):
    """Create INDEX and its pipelines for the given models (their ids, kinds and dimensions read from the cluster)."""
    from opensearch_kit.client import cluster_errors
    from opensearch_kit.index import Chunking, create_index
    from opensearch_kit.prune import Prune

    try:
        weight_list = [float(w) for w in weights.split(",")] if weights else None
    except ValueError as e:
        raise KitError(f"bad --weights {weights!r}", "write numbers separated by commas, e.g. 0.3,0.7") from e
    with cluster_errors(ctx.obj):
        result = create_index(
            ctx.obj.client(),
            index,
            sparse_model,
            dense_model,
            rerank_model,
            language,
            Chunking.parse(chunking) if chunking else None,
            sparse_type,
            Prune.parse(prune) if prune else None,
            weight_list,
            shards,
        )
    meta = result["meta"]
    lines = [f"created index {index} ({language}, analyzer {meta['analyzer']}, sparse {sparse_type})"]
    if meta["dense"]:
        lines.append(f"dense field: {meta['dense']['dimension']} dims, {meta['dense']['space_type']}, lucene hnsw")
    lines.append("pipelines: " + ", ".join(meta["pipelines"].values()))
    emit(result, as_json, "\n".join(lines))


@index_group.command("delete")
@click.argument("index")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def index_delete(ctx, index, yes, as_json):
    """Delete INDEX (made by opensearch-kit) and its pipelines; the models stay."""
    from opensearch_kit.client import cluster_errors
    from opensearch_kit.index import delete_index

    if not yes:
        click.confirm(f"delete index {index} and its pipelines?", abort=True)
    with cluster_errors(ctx.obj):
        result = delete_index(ctx.obj.client(), index)
    emit(result, as_json, f"deleted {index} and pipelines {', '.join(result['pipelines']) or '(none)'}")


@index_group.command("info")
@click.argument("index")
@json_option
@click.pass_context
def index_info_cmd(ctx, index, as_json):
    """What INDEX was built with (its _meta), its document count, pipelines and models."""
    from opensearch_kit.client import cluster_errors
    from opensearch_kit.index import index_info

    with cluster_errors(ctx.obj):
        info = index_info(ctx.obj.client(), index)
    meta = info["meta"]
    lines = [
        f"{index}: {info['documents']} documents, language {meta['language']} ({meta['analyzer']})",
        f"sparse: {meta['sparse']['type']} {meta['sparse']['field']} <- model {meta['sparse']['model_id']}",
    ]
    if meta["dense"]:
        d = meta["dense"]
        lines.append(f"dense: {d['field']} {d['dimension']} dims {d['space_type']} <- model {d['model_id']}")
    if meta["chunking"]:
        lines.append(f"chunking: {meta['chunking']['token_limit']} tokens, overlap {meta['chunking']['overlap_rate']}")
    lines.append("models: " + ", ".join(f"{m} {state}" for m, state in info["models"].items()))
    lines.append("pipelines: " + ", ".join(f"{p}{'' if ok else ' (MISSING)'}" for p, ok in info["pipelines"].items()))
    emit(info, as_json, "\n".join(lines))


@main.command("ingest")
@click.argument("index")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["pipeline", "client"]),
    default="pipeline",
    show_default=True,
    help="pipeline: the cluster encodes; client: local ONNX encoders compute the vectors.",
)
@click.option(
    "--sparse-encoder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="ONNX export dir of the sparse model (client mode; in pipeline mode it counts over-length texts).",
)
@click.option(
    "--dense-encoder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="ONNX export dir of the dense model (client mode, index with a dense field).",
)
@click.option("--id-field", default="_id", show_default=True)
@click.option("--text-field", default="text", show_default=True)
@click.option("--title-field", default="title", show_default=True, help="Prepended to the text; '' for none.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1), help="Documents per bulk.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1), help="Bulk requests in flight.")
@click.option(
    "--failures",
    "failure_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where rejected lines go, with reasons (default <index>.failures.jsonl).",
)
@click.option("--resume", is_flag=True, help="Skip documents the index already holds (after a crash or kill).")
@click.option("--limit", type=click.IntRange(1), help="Read only the first N lines.")
@json_option
@click.pass_context
def ingest_cmd(
    ctx,
    index,
    source,
    mode,
    sparse_encoder,
    dense_encoder,
    id_field,
    text_field,
    title_field,
    batch_size,
    workers,
    failure_file,
    resume,
    limit,
    as_json,
):
    """Index SOURCE (a JSONL file or BEIR directory) into INDEX; bad lines are reported, never fatal."""
    from opensearch_kit.client import cluster_errors
    from opensearch_kit.ingest import ingest

    with cluster_errors(ctx.obj):
        report = ingest(
            ctx.obj.client(),
            index,
            source,
            mode,
            sparse_encoder,
            dense_encoder,
            id_field,
            text_field,
            title_field or None,
            batch_size,
            workers,
            failure_file,
            resume,
            limit=limit,
            progress=not as_json,
        )
    emit(report.to_dict(), as_json, report.summary())
    if not report.count_ok:
        raise KitError("the count check failed: read != indexed + rejected + skipped", "report this as a bug")


def _model_export_options(command):
    """The options export dense and export reranker share."""
    options = [
        click.argument("model"),
        click.option(
            "--format", "fmt", type=click.Choice(["torchscript", "onnx"]), default="torchscript", show_default=True
        ),
        click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True),
        click.option("--name", help="Artifact name (default: the model folder name)."),
        click.option(
            "--quantize",
            type=click.Choice(["int8"]),
            help="Dynamic per-channel int8 (ONNX only), with a quality report.",
        ),
        click.option(
            "--dtype",
            type=click.Choice(["fp32", "fp16"]),
            default="fp32",
            show_default=True,
            help="fp16: TorchScript computes in fp16 (the server's CPU libtorch runs it); ONNX stores fp16 weights "
            "and computes in fp32. Halves the zip (ML Commons takes at most 4 GiB).",
        ),
        click.option("--max-length", type=int, help="Truncation length (default: the model's, at most 512)."),
        click.option("--trust-remote-code", is_flag=True, help="Allow models that ship their own modeling code."),
        json_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _emit_model_export(result, as_json: bool, details: list[str]) -> None:
    """Print what an export dense / reranker wrote and how close it came to the original."""
    report = result.report
    lines = [
        f"wrote {result.zip_path} and {result.register_path}",
        f"parity {report['parity']['name']}: {'OK' if report['parity']['ok'] else 'FAILED'}, "
        f"max|diff| {report['parity']['max_abs_diff']:.2e}; report {result.report_path}",
        *details,
    ]
    if "reduced_quality" in report:
        quality = ", ".join(f"{k} {v:.4f}" for k, v in report["reduced_quality"].items() if k != "name")
        lines.append(f"{report['reduced_quality']['name']} vs fp32 original: {quality}")
    record = {"zip": str(result.zip_path), "register": str(result.register_path)}
    record.update({k: v for k, v in report.items() if k != "expected"})
    emit(record, as_json, "\n".join(lines))


@export.command("dense")
@_model_export_options
@click.option(
    "--pooling",
    type=click.Choice(["mean", "cls", "max", "mean-sqrt-len", "weighted-mean", "last-token"]),
    help="How token outputs become the embedding (default: from the sentence-transformers config; required for "
    "plain Hugging Face encoders; decoder embedders such as Qwen3-Embedding use last-token).",
)
@click.option("--normalize/--no-normalize", default=None, help="L2-normalise embeddings (default: the model's config).")
@click.option(
    "--query-prompt",
    help="Text put before queries, e.g. $'Instruct: ...\\nQuery:' in bash (default: the sentence-transformers 'query' "
    "prompt); registered as the model's query_prefix.",
)
def export_dense_cmd(
    model, fmt, out_dir, name, quantize, dtype, max_length, trust_remote_code, as_json, pooling, normalize, query_prompt
):
    """Export a dense embedder (MODEL: local path or hub id) as a TEXT_EMBEDDING zip; pooling and normalisation
    run inside the graph."""
    from opensearch_kit.dense_export import export_dense

    result = export_dense(
        model,
        fmt,
        out_dir,
        name,
        pooling,
        normalize,
        query_prompt,
        quantize,
        trust_remote_code,
        max_length,
        dtype=dtype,
    )
    report = result.report
    details = [
        f"{report['dimension']} dims, {report['pooling']} pooling, "
        f"{'normalised' if report['normalize'] else 'not normalised'}, space_type {report['space_type']}"
    ]
    if report["query_prompt"] or report["passage_prompt"]:
        details.append(
            "prompted model: ML Commons prepends query_prefix / passage_prefix and needs "
            '"parameters": {"content_type": "query" | "passage"} on every _predict (neural queries and the '
            "text_embedding processor send it)"
        )
    _emit_model_export(result, as_json, details)


@export.command("reranker")
@_model_export_options
@click.option(
    "--instruction",
    help="Task instruction of LLM yes/no rerankers (default: 'Given a web search query, retrieve relevant "
    "passages that answer the query').",
)
def export_reranker_cmd(
    model, fmt, out_dir, name, quantize, dtype, max_length, trust_remote_code, as_json, instruction
):
    """Export a cross-encoder or a Qwen3-Reranker-style yes/no LLM (MODEL: local path or hub id) as a
    TEXT_SIMILARITY zip for the rerank search processor."""
    from opensearch_kit.rerank_export import export_reranker

    result = export_reranker(
        model, fmt, out_dir, name, instruction, quantize, trust_remote_code, max_length, dtype=dtype
    )
    details = [f"{result.report['reranker']} reranker"]
    if result.report["reranker"] == "yes-no":
        details.append("prompt baked into tokenizer.json: the server's (query, document) pair encoding is the prompt")
    _emit_model_export(result, as_json, details)


def _ml(ctx: click.Context):
    from opensearch_kit.ml_commons import MLCommons

    return MLCommons(ctx.obj.client())


@main.command()
@click.argument("source")
@click.option("--kind", type=click.Choice(["sparse", "sparse-tokenizer", "dense", "reranker"]), required=True)
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), default="torchscript", show_default=True)
@click.option("--name", help="Model name (default: the model folder name).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where an export goes when SOURCE is a model (default: ./exports/<name>).",
)
@click.option("--idf", type=click.Path(exists=True, path_type=Path), help="sparse-tokenizer: idf.json or a corpus.")
@click.option("--trust-remote-code", is_flag=True, help="Allow models that ship their own modeling code.")
@click.option("--timeout", default=600, show_default=True, help="Seconds to wait for the deploy task.")
@click.option("--no-check", is_flag=True, help="Skip the in-cluster parity check.")
@json_option
@click.pass_context
def deploy(ctx, source, kind, fmt, name, out_dir, idf, trust_remote_code, timeout, no_check, as_json) -> None:
    """Register, deploy and verify a model in ML Commons; prints its model id.

    SOURCE is an exported zip (or its folder) from `opensearch-kit export`, or a model (local path or hub id),
    which is exported first. An identical model already in the cluster is reused: nothing is uploaded again.
    The cluster then predicts sample texts and must return what the original model returns.
    """
    from opensearch_kit.artifact import default_name
    from opensearch_kit.client import cluster_errors
    from opensearch_kit.deploy import Artifact, deploy_artifact, export_model, is_artifact

    if is_artifact(source):
        artifact = Artifact.locate(Path(source))
    else:
        out_dir = out_dir or Path("exports") / (name or default_name(source))
        artifact = export_model(kind, source, fmt, out_dir, name, idf=idf, trust_remote_code=trust_remote_code)
    with cluster_errors(ctx.obj):
        record = deploy_artifact(_ml(ctx), artifact, kind, timeout, check=not no_check, progress=not as_json)
    how = (
        "already registered, nothing uploaded"
        if record["reused"]
        else f"uploaded {record['uploaded_bytes'] / 1e6:.1f} MB in {record['upload_seconds']}s"
    )
    lines = [f"{record['model_id']}  {record['name']} ({kind}): {how}, deploy {record['deploy_seconds']}s"]
    if "cluster_parity" in record:
        p = record["cluster_parity"]
        detail = f"max|diff| {p['max_abs_diff']:.2e}" if "max_abs_diff" in p else f"min cosine {p['min_cosine']:.6f}"
        lines.append(f"in-cluster parity: OK ({detail} on {p['texts']} texts)")
    emit(record, as_json, "\n".join(lines))


@main.group()
def models() -> None:
    """List, undeploy and delete ML Commons models."""


@models.command("list")
@json_option
@click.pass_context
def models_list(ctx, as_json) -> None:
    """Every registered model: id, state, function, format, name."""
    from opensearch_kit.client import cluster_errors

    with cluster_errors(ctx.obj):
        found = _ml(ctx).list_models()
    keys = ("model_id", "name", "model_state", "algorithm", "model_format", "model_content_hash_value")
    rows = [{k: m.get(k) for k in keys} for m in found]
    table = "\n".join(
        f"{r['model_id']:<22} {r['model_state'] or '':<18} {r['algorithm'] or '':<18} {r['model_format'] or '':<13} "
        f"{r['name']}"
        for r in rows
    )
    emit(rows, as_json, table or "no models")


@models.command("undeploy")
@click.argument("model_id")
@json_option
@click.pass_context
def models_undeploy(ctx, model_id, as_json) -> None:
    """Unload a model from every node (it stays registered)."""
    _model_action(ctx, model_id, "undeploy", as_json)


@models.command("delete")
@click.argument("model_id")
@json_option
@click.pass_context
def models_delete(ctx, model_id, as_json) -> None:
    """Undeploy and delete a model."""
    _model_action(ctx, model_id, "delete", as_json)


def _model_action(ctx: click.Context, model_id: str, action: str, as_json: bool) -> None:
    """Undeploy or delete a model that must exist."""
    from opensearch_kit.client import cluster_errors

    with cluster_errors(ctx.obj):
        ml = _ml(ctx)
        ml.get(model_id)
        getattr(ml, action)(model_id)
    done = {"undeploy": "undeployed", "delete": "deleted"}[action]
    emit({"model_id": model_id, done: True}, as_json, f"{done} {model_id}")


def _csv(kind: type):
    """A click callback turning "a,b,c" into a tuple of `kind`."""

    def parse(ctx, param, value):
        if value is None:
            return None
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError as e:
            raise click.BadParameter(f"expected comma-separated {kind.__name__} values, got {value!r}") from e

    return parse


def encoder_options(command):
    """--sparse-encoder / --dense-encoder / --encoding: where queries are encoded."""
    command = click.option(
        "--encoding",
        type=click.Choice(["auto", "local", "cluster"]),
        default="auto",
        show_default=True,
        help="Encode queries with the index's in-cluster models, or locally (auto: in-cluster when recorded).",
    )(command)
    command = click.option(
        "--dense-encoder",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Exported dense model directory for local query embedding.",
    )(command)
    return click.option(
        "--sparse-encoder",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="ONNX sparse export directory for local query encoding.",
    )(command)


def _encoders(sparse_dir: Path | None, dense_dir: Path | None) -> dict:
    from opensearch_kit.search import local_dense_encoder, local_sparse_encoder

    return {
        "sparse_encoder": local_sparse_encoder(sparse_dir) if sparse_dir else None,
        "dense_encoder": local_dense_encoder(dense_dir) if dense_dir else None,
    }


@main.command("search")
@click.argument("index")
@click.argument("text")
@click.option("--mode", type=click.Choice(["bm25", "sparse", "dense", "hybrid"]), default="hybrid", show_default=True)
@click.option("--k", default=10, show_default=True, type=click.IntRange(1), help="Hits to show.")
@click.option(
    "--hybrid", "sub_queries", callback=_csv(str), help="Hybrid sub-queries, e.g. bm25,sparse (default: all)."
)
@click.option("--weights", callback=_csv(float), help="Hybrid weights in sub-query order, summing to 1, e.g. 0.3,0.7.")
@click.option("--rrf", is_flag=True, help="Combine hybrid sub-queries by reciprocal rank fusion.")
@click.option("--rerank", is_flag=True, help="Rerank with the index's rerank pipeline.")
@click.option("--rerank-depth", type=click.IntRange(1), help="Hits the reranker sees (default: --k).")
@click.option("--two-phase", is_flag=True, help="Sparse mode: prune the query, then rescore the top hits in full.")
@click.option("--explain", is_flag=True, help="Show each hybrid signal's raw score per hit.")
@encoder_options
@json_option
@click.pass_context
def search_cmd(ctx, index, text, mode, k, sub_queries, weights, rrf, rerank, rerank_depth, two_phase, explain, **rest):
    """Search INDEX for TEXT in one retrieval mode."""
    from opensearch_kit.client import cluster_errors
    from opensearch_kit.query import QueryOptions
    from opensearch_kit.search import Searcher

    options = QueryOptions(
        mode=mode,
        k=k,
        hybrid=sub_queries or (),
        weights=weights,
        rrf=rrf,
        rerank=rerank,
        rerank_depth=rerank_depth,
        two_phase=two_phase,
        explain=explain,
    )
    as_json = rest.pop("as_json")
    with cluster_errors(ctx.obj):
        searcher = Searcher(
            ctx.obj.client(),
            index,
            encoding=rest["encoding"],
            **_encoders(rest["sparse_encoder"], rest["dense_encoder"]),
        )
        result = searcher.search(text, options)
    record = {
        "index": index,
        "mode": options.label,
        "latency_ms": round(result.latency_ms, 1),
        "took_ms": result.took_ms,
        "hits": [vars(hit) for hit in result.hits],
    }
    lines = [f"{options.label} on {index}: {len(result.hits)} hit(s) in {result.latency_ms:.0f} ms"]
    for rank, hit in enumerate(result.hits, 1):
        shown = [searcher.config.title_field, searcher.config.text_field, *hit.source]
        snippet = " | ".join(str(hit.source[f]) for f in dict.fromkeys(shown) if f in hit.source)
        signals = "  " + " ".join(f"{s}={v:.4g}" for s, v in hit.signals.items()) if hit.signals else ""
        lines.append(f"{rank:>3}. {hit.score:9.4f}  {hit.id}{signals}  {snippet[:80]}")
    emit(record, as_json, "\n".join(lines))


@main.command("eval")
@click.argument("index")
@click.argument("beir_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--modes",
    default="bm25,sparse,dense,hybrid,hybrid+rerank",
    show_default=True,
    help="Comma-separated modes; flags join with +: hybrid+rrf, hybrid+rerank, sparse+two-phase.",
)
@click.option("--k", default=100, show_default=True, type=click.IntRange(1), help="Hits retrieved per query.")
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to judge with.")
@click.option("--hybrid", "sub_queries", callback=_csv(str), help="Sub-queries of hybrid modes (default: all).")
@click.option("--weights", callback=_csv(float), help="Hybrid sub-query weights, e.g. 0.8,0.1,0.1 (sum 1).")
@click.option("--max-queries", type=click.IntRange(1), help="Evaluate only the first N judged queries.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report, runs included.")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG chart (needs [eval]).")
@encoder_options
@json_option
@click.pass_context
def eval_cmd(ctx, index, beir_dir, modes, k, split, sub_queries, weights, max_queries, out, chart, **rest):
    """Evaluate retrieval modes on a BEIR data set: NDCG@1/3/5/10, Recall@10/100, MRR@10, p50/p95 latency."""
    from opensearch_kit.client import cluster_errors
    from opensearch_kit.evaluate import evaluate
    from opensearch_kit.metrics import METRICS

    as_json = rest.pop("as_json")
    with cluster_errors(ctx.obj):
        report = evaluate(
            ctx.obj.client(),
            index,
            beir_dir,
            [m.strip() for m in modes.split(",") if m.strip()],
            k,
            split=split,
            hybrid=sub_queries or (),
            weights=weights,
            max_queries=max_queries,
            encoding=rest["encoding"],
            out=out,
            chart=chart,
            progress=not as_json,
            **_encoders(rest["sparse_encoder"], rest["dense_encoder"]),
        )
    width = max(len(m) for m in report["modes"])
    lines = [
        f"{index}: {report['queries']} queries, top {k}",
        " ".join([f"{'mode':<{width}}", *METRICS, "p50 ms  p95 ms"]),
    ]
    for mode, result in report["modes"].items():
        cells = [f"{result['metrics'][m]:>{len(m)}.4f}" for m in METRICS]
        latency = result["latency_ms"]
        lines.append(" ".join([f"{mode:<{width}}", *cells, f"{latency['p50']:6.1f}  {latency['p95']:6.1f}"]))
    lines += [f"report: {out}"] * bool(out) + [f"chart: {chart}"] * bool(chart)
    emit({key: value for key, value in report.items() if key != "runs"}, as_json, "\n".join(lines))


def run() -> None:
    """Entry point: turn KitErrors into a clear message and exit code 1."""
    try:
        main(standalone_mode=True)
    except KitError as e:
        click.secho(f"error: {e}", fg="red", err=True)
        sys.exit(1)
