"""Client mode: local ONNX encoders compute the vectors exactly as the index's ingest pipeline would (chunks from
the cluster's own text_chunking, pruning as neural-search prunes, token ids for sparse_vector fields), after a
check against the deployed models on a probe text."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from opensearch_kit.errors import KitError, ModelNotFound
from opensearch_kit.index.bodies import ingest_pipeline_body
from opensearch_kit.index.create import check_model
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.index.token_ids import check_token_ids
from opensearch_kit.opensearch.ml import SERVING
from opensearch_kit.opensearch.transport import Transport
from opensearch_kit.verify.cluster import check_local_encoder


def length_tokenizer(sparse_dir: Path | None):
    """The sparse export's tokenizer.json, which counts texts over the model's max length (None without one)."""
    if not sparse_dir:
        return None
    from tokenizers import Tokenizer

    from opensearch_kit.artifact import Artifact

    return Tokenizer.from_file(str(Artifact.locate(Path(sparse_dir), "sparse").tokenizer_file))


class LocalEncoding:
    """The local encoders of an index's models, checked against the deployed models; each runs on `threads`
    threads (by default every core this process may use)."""

    def __init__(
        self,
        transport: Transport,
        meta: IndexMeta,
        sparse_dir: Path | None,
        dense_dir: Path | None,
        threads: int | None = None,
    ):
        from opensearch_kit.export.locate import onnx_export_of
        from opensearch_kit.runtime import DenseEncoder, SparseEncoder

        if not sparse_dir:
            sparse_dir = onnx_export_of(transport.ml, meta.sparse.model_id, "sparse")
        if meta.dense and not dense_dir:
            dense_dir = onnx_export_of(transport.ml, meta.dense.model_id, "dense")
        self.transport, self.meta = transport, meta
        self.sparse = SparseEncoder.from_dir(Path(sparse_dir), threads)
        self.dense = DenseEncoder.from_dir(Path(dense_dir), threads) if meta.dense else None
        processors = ingest_pipeline_body(meta)["processors"]
        self.chunking = [p for p in processors if "text_chunking" in p]

    @property
    def tokenizer(self):
        return self.sparse.tokenizer

    def verify(self) -> str:
        """Compare the local encoders with the index's deployed models on a probe text; refuse a mismatch."""
        checked = []
        for kind, encoder in (("sparse", self.sparse), ("dense", self.dense)):
            if encoder is None:
                continue
            model_id = getattr(self.meta, kind).model_id
            model = self.transport.ml.get(model_id)
            if model.get("model_state") not in SERVING:
                checked.append(f"{kind} not checked (model {model_id} is {model.get('model_state')})")
                continue
            same, figure = check_local_encoder(self.transport.ml, model_id, kind, encoder, model)
            if not same:
                raise KitError(
                    f"the local {kind} encoder does not reproduce model {model_id} of index {self.meta.index} "
                    f"({figure})",
                    f"pass the ONNX export of the model deployed as {model_id}",
                )
            checked.append(f"{kind} matches {model_id} ({figure})")
        return "; ".join(checked)

    def encode(self, texts: list[str], sources: list[dict[str, Any]]) -> None:
        """Add the vectors to `sources` as the ingest pipeline would (one per chunk when chunking)."""
        f, chunked = self.meta.fields, self.meta.chunking is not None
        chunks = self.chunk(texts) if self.chunking else [[t] for t in texts]
        flat = [c for cs in chunks for c in cs]
        encode = self.sparse.encode_ids if self.meta.sparse.format == "TOKEN_ID" else self.sparse.encode
        sparse = encode(flat)
        if self.meta.sparse.prune:
            sparse = [self.meta.sparse.prune.apply(w) for w in sparse]
        sparse = [check_token_ids(w, self.meta.sparse.id_limit, "a document vector") for w in sparse]
        dense = self.dense.embed(flat).tolist() if self.dense else None
        start = 0
        for src, cs in zip(sources, chunks, strict=True):
            part = slice(start, start + len(cs))
            start += len(cs)
            if chunked:
                src[f.chunks] = cs
                src[f.sparse] = [{"sparse_encoding": w} for w in sparse[part]]
                if dense:
                    src[f.dense] = [{"knn": v} for v in dense[part]]
            else:
                src[f.sparse] = sparse[part][0]
                if dense:
                    src[f.dense] = dense[part][0]

    def chunk(self, texts: list[str]) -> list[list[str]]:
        """The cluster's own text_chunking of each text (its _simulate API, no model involved)."""
        f = self.meta.fields
        body = {"pipeline": {"processors": self.chunking}, "docs": [{"_source": {f.text: t}} for t in texts]}
        out = self.transport.request("POST", "/_ingest/pipeline/_simulate", body)["docs"]
        for d in out:
            if "error" in d:
                raise KitError(f"text_chunking failed: {d['error'].get('reason')}")
        return [d["doc"]["_source"][f.chunks] for d in out]


def check_pipeline_models(transport: Transport, meta: IndexMeta) -> None:
    """Pipeline mode: the index's models must exist and serve before anything is sent (served again first when
    a node restart unloaded them)."""
    for kind, model in (("sparse", meta.sparse), ("dense", meta.dense)):
        if model:
            with contextlib.suppress(ModelNotFound):  # check_model says what is missing
                transport.ml.restore(model.model_id)
            check_model(transport, model.model_id, kind)
