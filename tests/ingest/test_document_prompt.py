"""Document prompts: an embedder with a passage prompt gets it on the document side in both ingest modes — ML
Commons' `passage_prefix` (the text_embedding processor asks for passages) and the local ONNX encoder — so a
document's vector is the same whichever side encodes it (live cluster)."""

from __future__ import annotations

import json
import shutil

import numpy as np
from helpers import deployed, write_jsonl

from opensearch_kit.export import export_model
from opensearch_kit.index import create_index
from opensearch_kit.ingest import ingest
from opensearch_kit.runtime.dense import DenseEncoder

DOCS = [
    {"_id": "kimchi", "title": "Kimchi", "text": "Kimchi is fermented napa cabbage with chili and garlic."},
    {"_id": "stars", "title": "Neutron stars", "text": "Neutron stars are the collapsed cores of massive stars."},
    {"_id": "ko", "title": "김치", "text": "김치는 배추를 소금에 절여 고춧가루와 함께 발효시킨 음식이다."},
]


def vectors(client, index: str) -> dict[str, np.ndarray]:
    hits = client.search(index=index, body={"size": 10, "query": {"match_all": {}}})["hits"]["hits"]
    return {h["_id"]: np.array(h["_source"]["dense_embedding"], dtype=np.float64) for h in hits}


def test_a_passage_prompt_reaches_the_index_identically_in_both_ingest_modes(
    transport, client, ml, minilm, deployed_splade, fresh, tmp_path
):
    source = tmp_path / "prompted-minilm"
    shutil.copytree(minilm, source)
    config = json.loads((source / "config_sentence_transformers.json").read_text())
    config["prompts"] = {"query": "query: ", "document": "passage: "}
    (source / "config_sentence_transformers.json").write_text(json.dumps(config))
    artifact = export_model("dense", str(source), tmp_path / "export", format="onnx", name="test-prompted-minilm")
    model_config = artifact.register_body["model_config"]
    assert model_config["passage_prefix"] == "passage: " and model_config["query_prefix"] == "query: "
    corpus = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    sparse_id, sparse_dir = deployed_splade
    with deployed(ml, artifact) as dense_id:
        found = {}
        for mode in ("pipeline", "client"):
            index = fresh(f"prompt-{mode}")
            create_index(transport, index, sparse_id, dense_model=dense_id)
            encoders = {"sparse_encoder": sparse_dir, "dense_encoder": artifact.dir} if mode == "client" else {}
            report = ingest(transport, index, corpus, mode=mode, progress=False, **encoders)
            assert report.indexed == len(DOCS) and report.rejected == 0
            client.indices.refresh(index=index)
            found[mode] = vectors(client, index)
    local = DenseEncoder.from_dir(artifact.dir)
    texts = [d["text"] for d in DOCS]
    unprompted = local.run(texts, 32)  # the bare texts: what a document side without its prompt would index
    for i, doc in enumerate(DOCS):
        server, here = found["pipeline"][doc["_id"]], found["client"][doc["_id"]]
        cosine = server @ here / np.linalg.norm(server) / np.linalg.norm(here)
        assert cosine >= 0.99999, (doc["_id"], cosine)
        bare = unprompted[i] / np.linalg.norm(unprompted[i])
        assert server @ bare / np.linalg.norm(server) < 0.999, doc["_id"]  # the prompt changes the vector
