"""The memory and disk an export needs, estimated from the parameter count before any weight is loaded, and the
refusal when the machine has less: a KitError with the figure and the alternatives, never an OOM kill or a
writer aborting on a full disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from opensearch_kit.errors import KitError
from opensearch_kit.runtime import sizing

AVAILABLE_ENV = "OPENSEARCH_KIT_AVAILABLE_MEMORY"  # bytes; overrides /proc/meminfo (tests, containers)
# Peak RSS as a multiple of the fp32 weights, measured on the seed shapes: a memory-bounded fp16 or int8 export
# holds the fp32 model, then its fp16 graph and runtime (1.7B: 7.6 GB TorchScript, 7.9 GB ONNX, 8.6 GB ONNX int8,
# 1.1x to 1.25x); the full path holds the fp32 model and the loaded fp32 graph (TorchScript 2x), ONNX also the
# exporter's copy and the runtime session (2.5x).
PEAK_FACTOR = {"lean": 1.2, "torchscript": 2.0, "onnx": 2.5}
RUNTIME_BYTES = 2 << 30  # python, torch, onnxruntime and activations (a 150M sparse ONNX export: 3.6 GB peak)


DISK_MARGIN = 256 * 1024**2  # the tokenizer, reports and the file system's own slack


def available_memory() -> int:
    """Bytes the machine can give without swapping: $OPENSEARCH_KIT_AVAILABLE_MEMORY, else the runtime's figure
    (MemAvailable, bounded by a cgroup limit)."""
    if os.environ.get(AVAILABLE_ENV):
        return int(float(os.environ[AVAILABLE_ENV]))
    return sizing.available_memory()


def free_disk(folder: Path) -> int:
    """Bytes free on the file system that holds `folder`."""
    return shutil.disk_usage(folder).free


def release_memory() -> None:
    """Collect dropped objects and hand the freed heap back to the system: glibc keeps freed blocks under its
    mmap threshold (raised to 32 MB once big tensors are freed, so a 1.7B model's layers land there) in the
    process, where the next step's allocations would come on top of them."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_bytes(fp32_bytes: int, fmt: str, lean: bool) -> int:
    """Estimated peak RSS of an export whose model holds `fp32_bytes` of fp32 weights."""
    return int(fp32_bytes * PEAK_FACTOR["lean" if lean else fmt]) + RUNTIME_BYTES


def check_memory(source: str, fp32_bytes: int, form: str, lean: bool, lean_possible: bool) -> int:
    """The estimated peak of exporting `source` as `form` ("onnx fp16"; `lean`: memory-bounded, which an fp16
    export of this model would be when `lean_possible`); a KitError naming it and the alternatives when the
    machine's available memory is below it."""
    fmt = form.split()[0]
    need = peak_bytes(fp32_bytes, fmt, lean)
    have = available_memory()
    if need <= have:
        return need
    gb = 1e9
    lean_need = peak_bytes(fp32_bytes, fmt, True)
    options = [f"--dtype fp16 (memory-bounded: about {lean_need / gb:.1f} GB)"] if lean_possible and not lean else []
    raise KitError(
        f"exporting {source} ({fp32_bytes / 4 / 1e9:.2f}B parameters) as {form} needs about {need / gb:.1f} GB of "
        f"memory; {have / gb:.1f} GB is available",
        "; ".join(
            options
            + [
                "free memory (stop other exports, models or OpenSearch nodes on this machine) and run it again",
                "export on a machine with more memory and copy the export folder here",
                f"if the figure is wrong for this machine, set {AVAILABLE_ENV}=<bytes>",
            ]
        ),
    )


def check_disk(out_dir: Path, artifact_bytes: int) -> None:
    """A KitError naming the figures when `out_dir` lacks room for an export of about `artifact_bytes`: its
    graph, then the zip that stores the graph again."""
    need = 2 * artifact_bytes + DISK_MARGIN
    have = free_disk(out_dir)
    if need <= have:
        return
    gb = 1e9
    raise KitError(
        f"the export needs about {need / gb:.1f} GB of disk in {out_dir} (its graph and the zip of it); "
        f"{have / gb:.1f} GB is free there",
        "free disk space there, or pass --out on a disk with room, and run it again",
    )
