"""The CLI edge: an exception the toolkit did not foresee is one line naming it and --verbose, never a
traceback; with --verbose the traceback is shown. Progress without a terminal is whole lines, no frames."""

from __future__ import annotations

import os
import subprocess
import sys

from opensearch_kit.verify.samples import SAMPLE_TEXTS

FORCED = """
import errno, os, sys
import opensearch_kit.opensearch.info as info
def boom(transport):
    if os.environ.get("FORCE_DISK_FULL"):
        raise OSError(errno.ENOSPC, "No space left on device", "/exports/model.onnx.data")
    raise ZeroDivisionError("forced for the test")
info.cluster_status = boom
from opensearch_kit.cli import run
run()
"""


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", FORCED, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


def test_an_unexpected_exception_is_one_line_without_verbose():
    out = _cli("cluster", "status")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert lines[0].startswith("error: unexpected ZeroDivisionError") and "forced for the test" in lines[0]
    assert "--verbose" in out.stderr and len(lines) == 2


def test_a_full_disk_is_an_error_with_its_fix():
    out = _cli("cluster", "status", FORCE_DISK_FULL="1")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: the disk is full writing /exports/model.onnx.data" in out.stderr
    assert "fix: free disk space" in out.stderr


def test_verbose_shows_the_traceback():
    out = _cli("--verbose", "cluster", "status")
    assert out.returncode == 1
    assert "Traceback (most recent call last)" in out.stderr and "ZeroDivisionError: forced for the test" in out.stderr


def test_progress_without_a_terminal_writes_whole_lines():
    code = (
        "from opensearch_kit.progress import progress_bar\n"
        "with progress_bar(1000, desc='work', unit='doc') as bar:\n"
        "    for _ in range(1000): bar.update()\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stderr
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[0].startswith("work:   0%") and lines[-1].startswith("work: 100% 1000/1000")
    assert len(lines) == 11  # the start and each further tenth


def test_json_runs_without_a_terminal_write_no_progress(tiny_splade, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(f'{{"_id": "d{i}", "text": "document {i}"}}\n' for i in range(50)))
    runs = {}
    for flags in ((), ("--json",)):
        out = tmp_path / f"out{len(flags)}"
        args = ["export", "sparse-tokenizer", tiny_splade, "--idf", str(corpus), "--out", str(out)]
        runs[flags] = subprocess.run(
            [sys.executable, "-c", "from opensearch_kit.cli import run; run()", *args, *flags],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert runs[flags].returncode == 0, runs[flags].stderr
    assert "idf: 50" in runs[()].stderr and "\r" not in runs[()].stderr  # plain lines for people
    assert runs[("--json",)].stderr == ""  # nothing but the JSON record for scripts


def test_export_counts_the_runs_of_its_long_steps(tiny_splade, tmp_path):
    args = ["export", "sparse", tiny_splade, "--out", str(tmp_path / "out"), "--name", "counted"]
    out = subprocess.run(
        [sys.executable, "-c", "from opensearch_kit.cli import run; run()", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    n = len(SAMPLE_TEXTS)
    for step, total in (("reference outputs", n), ("parity", n + 1), ("expected outputs", n)):
        lines = [line for line in out.stderr.splitlines() if line.startswith(f"export counted: {step}:")]
        assert f" 0/{total} " in lines[0] and f" {total}/{total} " in lines[-1], lines
        assert any(f" 3/{total} " in line for line in lines), lines  # "parity: 3/9", not only the start and end
