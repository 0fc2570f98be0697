"""Progress of long work on stderr: a live bar on a terminal; without one (CI, `nohup`, `> log`) a few plain
lines — the start, every further 10 %, the end — and never a carriage-return frame."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

PLAIN_STEPS = 10  # a plain line each time another tenth of the total is done
PLAIN_EVERY_S = 30.0  # ... or, without a total, every 30 s
PLAIN_FORMAT = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
PLAIN_FORMAT_NO_TOTAL = "{desc}: {n_fmt} [{elapsed}, {rate_fmt}]"
PLAIN = {"quiet": False}  # True: no plain lines, bars only on a terminal (set while a `--json` command runs)


def progress_bar(
    total: float | None = None,
    *,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    unit_scale: bool = False,
    leave: bool = False,
) -> tqdm:
    """A progress bar for `total` units: tqdm on a terminal, `PlainProgress` lines otherwise, silent if not
    `enabled`. Use it as tqdm (`update`, `set_postfix_str`, context manager)."""
    if not enabled or (PLAIN["quiet"] and not sys.stderr.isatty()):
        return tqdm(total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, leave=leave, file=sys.stderr)
    return PlainProgress(total=total, desc=desc, unit=unit, unit_scale=unit_scale)


class PlainProgress(tqdm):
    """tqdm that writes whole lines: one at the start, one per further 1/`PLAIN_STEPS` of the total (or per
    `PLAIN_EVERY_S` without a total), one at the end."""

    def __init__(self, *args, **kwargs):
        self._printed_step = -1
        self._printed_n: float | None = None
        self._last_line = -PLAIN_EVERY_S
        self._ended = False
        total = kwargs.get("total")
        kwargs.update(
            file=sys.stderr,
            leave=False,
            mininterval=0,
            bar_format=PLAIN_FORMAT if total else PLAIN_FORMAT_NO_TOTAL,
        )
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None) -> None:
        if self._ended:
            return
        if self.total:
            step = int(self.n * PLAIN_STEPS // self.total)
            if step <= self._printed_step:
                return
            self._printed_step = step
        elif time.monotonic() - self._last_line < PLAIN_EVERY_S:
            return
        self._line()

    def close(self) -> None:
        if not self.disable and not self._ended and self.n != self._printed_n:
            self._line()  # stopped early or without a total: say where it ended
        self._ended = True
        super().close()

    def _line(self) -> None:
        self._last_line = time.monotonic()
        self._printed_n = self.n
        self.fp.write(self.format_meter(**self.format_dict) + "\n")
        self.fp.flush()
