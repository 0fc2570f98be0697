"""The tuning chart: the tuned metric of every compared setting on the dev and the held-out queries (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from opensearch_kit.errors import KitError

if TYPE_CHECKING:
    from opensearch_kit.tune.run import TuneReport


def write_chart(report: TuneReport, path: Path) -> None:
    """A PNG: grouped bars (dev, held-out) of the tuned metric per setting."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise KitError("the tune chart needs matplotlib", "pip install 'opensearch-kit[eval]'") from e
    labels = list(report.results)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(labels)), 4.5))
    for i, part in enumerate(("dev", "test")):
        values = [report.results[label][part][report.metric] for label in labels]
        name = f"dev ({len(report.dev_queries)})" if part == "dev" else f"held-out ({len(report.test_queries)})"
        ax.bar([x + i * 0.4 for x in range(len(labels))], values, 0.4, label=name)
    ax.set_xticks([x + 0.2 for x in range(len(labels))], [label.replace(": ", ":\n") for label in labels], fontsize=7)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel(report.metric)
    ax.set_title(f"{report.index}: hybrid fusion tuned on dev, {report.grid_size} settings")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
