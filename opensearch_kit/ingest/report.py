"""What an ingest did, and the ledger that keeps it while bulks run on several threads."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import TextIO

from tqdm import tqdm

from opensearch_kit.ingest.corpus import Rejected


@dataclass
class IngestReport:
    """What an ingest did. `count_ok`: read = indexed + rejected + skipped."""

    index: str
    source: str
    mode: str
    read: int = 0
    indexed: int = 0
    rejected: int = 0
    skipped: int = 0
    blank_lines: int = 0
    duplicates: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    over_length: int | None = None
    max_length: int | None = None
    over_length_handling: str = "truncated"
    retries: int = 0
    encoder_check: str = "not applicable (pipeline mode)"
    failure_file: str | None = None
    seconds: float = 0.0
    docs_per_s: float = 0.0
    index_count: int | None = None
    warm_up: dict | None = None  # sparse_vector index: the SEISMIC warm-up's _shards answer

    @property
    def count_ok(self) -> bool:
        return self.read == self.indexed + self.rejected + self.skipped

    def to_dict(self) -> dict:
        return {**asdict(self), "count_ok": self.count_ok}

    def summary(self) -> str:
        """A few lines for people."""
        check = "OK" if self.count_ok else "MISMATCH"
        lines = [
            f"ingested {self.source} into {self.index} ({self.mode} mode): read {self.read} = indexed {self.indexed} "
            f"+ rejected {self.rejected} + skipped {self.skipped} (already indexed): {check}",
            f"{self.docs_per_s:.1f} docs/s over {self.seconds:.1f}s, {self.retries} retries; "
            f"the index holds {self.index_count} documents",
        ]
        if self.rejected:
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items(), key=lambda kv: -kv[1]))
            lines.append(f"rejected: {reasons}; every one with its reason in {self.failure_file}")
        if self.duplicates:
            shown = ", ".join(self.duplicates[:10]) + (" ..." if len(self.duplicates) > 10 else "")
            lines.append(f"{len(self.duplicates)} duplicate id(s), the last line won: {shown}")
        if self.over_length is None:
            lines.append("texts over the model's max length: not counted (pass the sparse encoder's export dir)")
        elif self.over_length:
            lines.append(
                f"{self.over_length} text(s) longer than the model's {self.max_length} tokens "
                f"({self.over_length_handling})"
            )
        if self.blank_lines:
            lines.append(f"{self.blank_lines} blank line(s) ignored")
        if self.mode == "client":
            lines.append(f"local encoder vs cluster model: {self.encoder_check}")
        if self.warm_up:
            lines.append(f"SEISMIC warm-up: {self.warm_up.get('successful')}/{self.warm_up.get('total')} shards loaded")
        return "\n".join(lines)


def category(text: str) -> str:
    """A rejection reason without its specifics, for the per-reason counts."""
    return text.split(":")[0]


class Ledger:
    """The report, the failure file and the progress bar, updated under one lock by every sender thread."""

    def __init__(self, report: IngestReport, failures: TextIO, bar: tqdm):
        self.report, self.failures, self.bar = report, failures, bar
        self.lock = threading.Lock()

    def reject(self, item: Rejected) -> None:
        """Count a rejected line and write it, with its reason, to the failure file at once."""
        with self.lock:
            self.report.rejected += 1
            key = category(item.reason)
            self.report.reasons[key] = self.report.reasons.get(key, 0) + 1
            self.failures.write(json.dumps(item.record(), ensure_ascii=False) + "\n")
            self.failures.flush()
            self.bar.update(1)
            self.bar.set_postfix(rejected=self.report.rejected, refresh=False)

    def done(self, indexed: int = 0, skipped: int = 0) -> None:
        with self.lock:
            self.report.indexed += indexed
            self.report.skipped += skipped
            self.bar.update(indexed + skipped)

    def retried(self) -> None:
        with self.lock:
            self.report.retries += 1

    def over_length(self, count: int) -> None:
        with self.lock:
            self.report.over_length += count
