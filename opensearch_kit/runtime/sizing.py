"""How an encoder sizes itself: threads from the cores this process may use, batches from the model's shape and
the memory this process may take, so a batch of long texts never holds more activations than the budget."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The activations of one run stay under this share of the memory available, and under the cap: past a few
# thousand tokens per run a CPU gains nothing from larger matrices, and a pod's limit is not ours alone.
MEMORY_SHARE = 0.25
ACTIVATION_CAP = 512 * 1024**2
MAX_BATCH = 64
FLOAT = 4


def cores() -> int:
    """CPUs this process may run on: its affinity mask, bounded by a cgroup v2 CPU quota."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            count = min(count, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, count)


def available_memory() -> int:
    """Bytes this process can still take: the kernel's MemAvailable, bounded by a cgroup v2 memory limit."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            left = int(limit) - used
            available = left if available is None else min(available, left)
    except (OSError, ValueError):
        pass
    return available if available is not None else 4 * 1024**3


@dataclass(frozen=True)
class ModelShape:
    """What sets a transformer's activation memory: widths per token, attention heads, and the widest per-token
    output (a sparse head's vocabulary block, the whole vocabulary for an unblocked head)."""

    hidden: int
    intermediate: int
    heads: int
    output_width: int

    @classmethod
    def of(cls, report: dict) -> ModelShape | None:
        """The shape an export report records (None for reports written before it did)."""
        shape = report.get("shape")
        if not shape:
            return None
        hidden = int(shape["hidden_size"])
        if report.get("kind") == "sparse":
            width = report.get("head_block_width") or report.get("vocab_size") or shape["vocab_size"]
        else:
            width = hidden
        return cls(hidden, int(shape.get("intermediate_size") or 4 * hidden), int(shape["num_attention_heads"]),
                   int(width))  # fmt: skip

    def activation_bytes(self, batch: int, length: int) -> int:
        """Peak fp32 activations of one layer (hidden states, feed-forward, attention scores and probabilities)
        and of the output, for `batch` texts padded to `length`."""
        tokens = batch * length
        per_token = FLOAT * (8 * self.hidden + 2 * self.intermediate + self.output_width)
        attention = FLOAT * 3 * self.heads * tokens * length
        return tokens * per_token + attention

    def batch_limit(self, length: int, budget: int) -> int:
        """The most texts of `length` tokens one run may hold within `budget` bytes of activations, at least 1."""
        return max(1, min(MAX_BATCH, budget // self.activation_bytes(1, max(1, length))))


def activation_budget() -> int:
    """Bytes of activations one run may hold: a share of the memory available now, capped."""
    return min(int(available_memory() * MEMORY_SHARE), ACTIVATION_CAP)
