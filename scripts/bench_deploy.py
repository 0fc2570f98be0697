"""Upload + deploy time in ML Commons for the real tiny SPLADE and a ~100 MB random sparse model.

python scripts/bench_deploy.py [--url http://localhost:9200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from opensearch_kit.client import Connection
from opensearch_kit.deploy import Artifact, deploy_artifact
from opensearch_kit.ml_commons import MLCommons
from opensearch_kit.sparse_export import export_sparse
from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model


def random_100mb(root: Path) -> str:
    """A random BertForMaskedLM of ~28M parameters (~110 MB in fp32) with the tiny SPLADE's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    config = BertConfig(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048)
    BertForMaskedLM(config).save_pretrained(root)
    AutoTokenizer.from_pretrained(fetch_wheel_model(TINY_SPLADE)).save_pretrained(root)
    return str(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:9200")
    args = parser.parse_args()
    ml = MLCommons(Connection(args.url).client(timeout=300))
    with tempfile.TemporaryDirectory() as tmp:
        models = {"tiny-splade": str(fetch_wheel_model(TINY_SPLADE)), "random-110mb": random_100mb(Path(tmp) / "m")}
        for label, model in models.items():
            export = export_sparse(model, "torchscript", Path(tmp) / label, name=f"bench-{label}")
            artifact = Artifact.locate(export.zip_path)
            first = deploy_artifact(ml, artifact, "sparse", progress=False)
            start = time.perf_counter()
            again = deploy_artifact(ml, artifact, "sparse", check=False, progress=False)
            rerun = time.perf_counter() - start
            ml.delete(first["model_id"])
            mb = export.zip_path.stat().st_size / 1e6
            print(
                f"{label:12} zip {mb:7.1f} MB  upload {first['upload_seconds']:6.2f}s  "
                f"deploy {first['deploy_seconds']:6.2f}s  in-cluster parity max|diff| "
                f"{first['cluster_parity']['max_abs_diff']:.1e}  re-run {rerun:.2f}s "
                f"({again['uploaded_bytes']} bytes uploaded, same id: {again['model_id'] == first['model_id']})"
            )


if __name__ == "__main__":
    main()
