"""Typed fields (ranges on integer and date fields, bad values rejected line by line with the reason) and
sparse_vector fields that cannot silently break: on a server whose SEISMIC folds token ids, a sparse model with
more than 32,768 token ids is refused, one within the limit indexes and answers."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import write_jsonl

from opensearch_kit.cli import main
from opensearch_kit.errors import KitError
from opensearch_kit.export import export_model
from opensearch_kit.index import IndexMeta, create_index, index_info
from opensearch_kit.index.fields import parse_fields
from opensearch_kit.index.token_ids import ID_LIMIT, probe_id_folding
from opensearch_kit.ingest import ingest
from opensearch_kit.search import QueryOptions, Searcher

DOCS = [
    {"_id": "a", "text": "kimchi is fermented cabbage", "year": 2019, "published": "2019-03-01", "lang": "ko"},
    {"_id": "b", "text": "black holes bend light", "year": "2021", "published": "2021-07-15T10:00:00Z", "lang": "en"},
    {"_id": "c", "text": "cats sleep all day", "year": 2023, "published": 1700000000000, "lang": "en", "src": "x"},
    {"_id": "d", "text": "dogs learn commands", "year": "twenty", "published": "2020-01-01", "lang": "en"},
    {"_id": "e", "text": "parrots imitate speech", "year": 2020, "published": "2020-13-45", "lang": "en"},
    {"_id": "f", "text": "exoplanets dim their stars", "year": 2**40, "published": "2022-02-02", "lang": "en"},
]


def test_typed_fields_take_ranges_and_reject_bad_values(transport, fresh, deployed_splade, tmp_path, conn):
    index = fresh("typed")
    fields = parse_fields(["year:integer", "published:date", "lang:keyword"])
    create_index(transport, index, deployed_splade[0], fields=fields)
    failures = tmp_path / "failures.jsonl"
    report = ingest(transport, index, write_jsonl(tmp_path / "docs.jsonl", DOCS), failure_file=failures, progress=False)
    assert (report.indexed, report.rejected) == (3, 3) and report.count_ok
    reasons = {r["id"]: r["reason"] for r in map(json.loads, failures.read_text().splitlines())}
    assert reasons.keys() == {"d", "e", "f"}
    assert "'year' (integer)" in reasons["d"] and "whole number" in reasons["d"]
    assert "'published' (date)" in reasons["e"] and "ISO 8601" in reasons["e"]
    assert "out of the integer range" in reasons["f"]

    mapping = transport.request("GET", f"/{index}/_mapping")[index]["mappings"]["properties"]
    assert {f: mapping[f]["type"] for f in fields} == fields
    assert IndexMeta.read(transport, index).typed_fields == fields
    assert "typed fields: year (integer), published (date), lang (keyword)" in index_info(transport, index).summary()

    searcher = Searcher(transport, index)

    def ids(*where):
        return {h.id for h in searcher.search("cabbage light cats", QueryOptions(k=10, filter=where)).hits}

    assert ids() == {"a", "b", "c"}
    assert ids("year>=2021") == {"b", "c"} and ids("year<2021") == {"a"}
    assert ids({"range": {"published": {"gte": "2020-01-01", "lt": "2023-01-01"}}}) == {"b"}
    assert ids("published>2023-01-01") == {"c"}
    assert ids("lang in ko,fr") == {"a"} and ids("lang!=ko", "year<=2021") == {"b"}
    assert ids("src=x") == {"c"}  # not a typed field: the metadata flat_object
    hit = searcher.search("cats", QueryOptions(k=1)).hits[0]
    assert hit.id == "c"
    doc = transport.request("GET", f"/{index}/_doc/c")["_source"]
    assert doc["year"] == 2023 and doc["metadata"] == {"src": "x"}

    runner = CliRunner()
    args = ["--url", conn.url, "search", index, "cats light", "--mode", "bm25", "--where", "year>=2021"]
    out = runner.invoke(main, [*args, "--filter", '{"term": {"lang": "en"}}', "--highlight", "--json"])
    assert out.exit_code == 0, out.output
    record = json.loads(out.output)
    assert {h["id"] for h in record["hits"]} == {"b", "c"} and record["total"] == 2
    assert all("<em>" in h["highlight"] for h in record["hits"])
    out = runner.invoke(main, [*args, "--from", "1", "--size", "1", "--json"])
    record = json.loads(out.output)
    assert len(record["hits"]) == 1 and record["hits"][0]["id"] in "bc" and (record["total"], record["from"]) == (2, 1)
    bad = runner.invoke(main, ["--url", conn.url, "search", index, "x", "--where", "year~2"])
    assert isinstance(bad.exception, KitError) and "NAME>=VALUE" in bad.exception.fix
    bad = runner.invoke(main, ["--url", conn.url, "index", "create", "x", "--sparse-model", "m", "--field", "y:int"])
    assert isinstance(bad.exception, KitError) and "unknown type 'int'" in str(bad.exception)


def big_vocab_mlm(out_dir):
    """A tiny random BERT MaskedLM whose WordPiece vocabulary has 40,000 ids."""
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + ["cabbage", "kimchi", "light"] + [f"w{i}" for i in range(39992)])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    names = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=64, **names)
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64,
    )  # fmt: skip
    transformers.BertForMaskedLM(config).save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir


@pytest.mark.export
def test_sparse_vector_is_refused_for_a_vocabulary_the_server_folds(transport, ml, fresh, tmp_path):
    from helpers import deployed

    assert probe_id_folding(transport)  # OpenSearch 3.6: neural-search #1926
    source = big_vocab_mlm(tmp_path / "big")
    export = export_model("sparse", str(source), tmp_path / "export", format="onnx", name="test-index-big-vocab")
    with deployed(ml, export) as model_id:
        with pytest.raises(KitError, match=r"has 40000 token ids.*ids below 32768") as refused:
            name = fresh("big-vocab")
            create_index(transport, name, model_id, sparse_type="sparse_vector", sparse_encoder=export.dir)
        assert refused.value.fix == "use --sparse-type rank_features"
        assert not transport.exists("/test-index-big-vocab")
        created = create_index(transport, fresh("big-vocab-rf"), model_id, sparse_encoder=export.dir)
        assert created.meta.sparse.type == "rank_features"


def test_sparse_vector_within_the_limit_indexes_and_answers(transport, fresh, deployed_splade, tmp_path):
    model_id, export_dir = deployed_splade
    index = fresh("seismic")
    created = create_index(
        transport, index, model_id, sparse_type="sparse_vector", sparse_encoder=export_dir, fields={"year": "integer"}
    )
    assert (created.meta.sparse.folds_ids, created.meta.sparse.id_limit) == (True, ID_LIMIT)
    assert f"sparse token ids below {ID_LIMIT}" in index_info(transport, index).summary()
    docs = [d for d in DOCS if d["_id"] in "abc"]
    assert ingest(transport, index, write_jsonl(tmp_path / "docs.jsonl", docs), progress=False).indexed == 3
    searcher = Searcher(transport, index)
    for doc in docs:
        assert searcher.search(doc["text"], QueryOptions(mode="sparse", k=3)).hits[0].id == doc["_id"]
    filtered = searcher.search("kimchi cabbage", QueryOptions(mode="sparse", k=3, filter=("year>=2021",))).hits
    assert filtered and {h.id for h in filtered} <= {"b", "c"}
