"""The Korean sparse encoder's shape, with a vocabulary padded past its tokenizer, deploys in both formats and
the cluster returns what the export recorded (tiny here; the real size is exported in tests/export and deployed by
scripts/bench_seed_scale.py); so does the 1.7B embedder's shape exported memory-bounded as int8 ONNX."""

from __future__ import annotations

import pytest
from helpers import deployed, force_memory_bounded
from seed_models import seed_embedder, seed_sparse
from tokenizers import Tokenizer

from opensearch_kit.errors import KitError, Timeout
from opensearch_kit.export import export_model
from opensearch_kit.runtime.sparse import decoded_vocab
from opensearch_kit.verify.cluster import PredictClock, check_in_cluster, cluster_sparse_weights
from opensearch_kit.verify.samples import SAMPLE_TEXTS

pytestmark = pytest.mark.export


@pytest.fixture(scope="module")
def tiny_padded(tmp_path_factory):
    return str(seed_sparse(tmp_path_factory.mktemp("tiny-padded") / "model", tiny=True))


def assert_deploys_with_parity(ml, model: str, out, fmt: str, name: str) -> None:
    """Export with the padded ids masked, deploy, in-cluster parity; every token the cluster returns is one the
    tokenizer has."""
    export = export_model("sparse", model, out, format=fmt, trust_remote_code=True, name=name, progress=False)
    assert export.report["masked_missing_ids"] > 0 and export.report["parity"]["ok"]
    tokens = set(decoded_vocab(Tokenizer.from_file(str(export.tokenizer_file))).values())
    with deployed(ml, export) as model_id:
        check = check_in_cluster(ml, model_id, export)
        assert check["ok"], check
        weights = cluster_sparse_weights(ml, model_id, SAMPLE_TEXTS[:4])
        assert all(weights) and all(set(w) <= tokens for w in weights)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_tiny_padded_vocabulary_sparse_in_cluster(ml, tiny_padded, tmp_path, fmt):
    assert_deploys_with_parity(ml, tiny_padded, tmp_path, fmt, f"test-padded-tiny-{fmt}")


def test_memory_bounded_int8_embedder_in_cluster(ml, tmp_path, monkeypatch):
    """The int8 graph made from the fp16-stored one runs on the server's ONNX Runtime 1.16 as it ran here."""
    force_memory_bounded(monkeypatch)
    model = seed_embedder(tmp_path / "model", tiny=True)
    export = export_model("dense", str(model), tmp_path / "out", format="onnx", quantize="int8", progress=False)
    assert export.report["memory_bounded"]
    with deployed(ml, export) as model_id:
        check = check_in_cluster(ml, model_id, export)
        assert check["ok"] and check["min_cosine"] >= 0.995, check


def test_a_slow_model_ends_the_check_with_the_truth(ml, tiny_padded, tmp_path):
    """A predict past its read timeout is a Timeout (not 'cannot reach'), never retried; a check past its budget
    stops with the measured per-passage time and the ways to serve the model."""
    export = export_model("sparse", tiny_padded, tmp_path, trust_remote_code=True, name="test-padded-slow")
    with deployed(ml, export) as model_id:
        with pytest.raises(Timeout, match="no answer from .* within the read timeout"):
            ml.predict(model_id, {"text_docs": SAMPLE_TEXTS}, "sparse_encoding", timeout=0.001)
        with pytest.raises(KitError, match=r"in-cluster check stopped after 0 s: 1 of 6 passages took") as err:
            check_in_cluster(ml, model_id, export, budget=0.01)
        assert "s per passage" in err.value.message and "cannot reach" not in err.value.message
        assert "serve start" in err.value.fix and "deploy --remote" in err.value.fix


def test_the_check_predicts_the_longest_passage_first():
    """The longest sample bounds what any sample takes: a model too slow for the budget is found on the first call."""
    calls: list[str] = []
    clock = PredictClock("m", budget=60)
    answers = clock.each(["a b", "a b c d", "a"], lambda text, timeout: calls.append(text) or text.upper(), len)
    assert calls == ["a b c d", "a b", "a"]
    assert answers == ["A B", "A B C D", "A"] and len(clock.times) == 3
