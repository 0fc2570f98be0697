"""The evaluation chart: a PNG of every metric per mode, and p50/p95 latency per mode (matplotlib, `[eval]`)."""

from __future__ import annotations

from pathlib import Path

from opensearch_kit.errors import KitError
from opensearch_kit.evaluate.metrics import METRICS


def write_chart(report: dict, path: Path) -> None:
    """A PNG: grouped bars of every metric per mode, and p50/p95 latency per mode."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise KitError("the eval chart needs matplotlib", "pip install 'opensearch-kit[eval]'") from e
    modes = list(report["modes"])
    fig, (quality, latency) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / max(len(modes), 1)
    for i, mode in enumerate(modes):
        values = [report["modes"][mode]["metrics"][m] for m in METRICS]
        quality.bar([x + i * width for x in range(len(METRICS))], values, width, label=mode)
    quality.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(METRICS))], METRICS, rotation=30)
    quality.set_ylim(0, 1.02)
    quality.set_title(f"{report['index']}: {report['queries']} queries, top {report['k']}")
    quality.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(len(modes), 6))
    for j, name in enumerate(("p50", "p95")):
        values = [report["modes"][mode]["latency_ms"][name] for mode in modes]
        latency.bar([x + j * 0.4 for x in range(len(modes))], values, 0.4, label=name)
    latency.set_xticks([x + 0.2 for x in range(len(modes))], modes, rotation=30)
    latency.set_ylabel("ms")
    latency.set_title("latency")
    latency.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
