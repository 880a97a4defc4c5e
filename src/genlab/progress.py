"""Progress of a long loop, on stderr: a tqdm bar on a terminal; elsewhere (a log file, CI, a notebook) one line
every ~10 s with an ETA, so that no long step runs silently. Every long loop of genlab reports through here."""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self, TextIO, TypeVar

from tqdm import tqdm

EVERY_SECONDS = 10.0  # between two progress lines when the stream is not a terminal
Item = TypeVar("Item")


def duration(seconds: float) -> str:
    """'45 s', '3 min 05 s', '2 h 07 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def plural(unit: str) -> str:
    return unit + ("es" if unit.endswith(("ch", "s")) else "s")


class ProgressLines:
    """tqdm's update, set_description, clear and close, written as one line every `every` seconds:
    'epoch 2/10: 300/1000 steps (30%), 20 s elapsed, ETA 47 s'. The rate counts only this object's updates."""

    def __init__(self, total: int | None, desc: str, unit: str, stream: TextIO, initial: int = 0,
                 clock: Callable[[], float] = time.monotonic, every: float = EVERY_SECONDS) -> None:
        self.total, self.desc, self.unit, self.stream, self.clock, self.every = total, desc, unit, stream, clock, every
        self.n = self.first = initial
        self.started = self.last = clock()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float) -> str:
        elapsed, done = now - self.started, self.n - self.first
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        left = (self.total - self.n) * elapsed / done if self.total and done > 0 else math.nan
        eta = duration(left) if math.isfinite(left) else "unknown"
        head = f"{self.desc}: " if self.desc else ""
        return f"{head}{count} {plural(self.unit)}{share}, {duration(elapsed)} elapsed, ETA {eta}"

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def clear(self) -> None:
        """Nothing to clear: the lines stay, as a log's should."""

    def close(self) -> None:
        """Nothing to close: a loop ending in under `every` seconds writes nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: int | None, desc: str = "", unit: str = "step", enabled: bool = True, initial: int = 0,
             stream: TextIO | None = None, clock: Callable[[], float] | None = None,
             every: float | None = None) -> tqdm | ProgressLines:
    """A bar for a loop of `total` units on `stream` (default stderr): tqdm on a terminal, timed lines elsewhere
    (every `every` seconds of `clock`, default EVERY_SECONDS of time.monotonic), a silent tqdm when not `enabled`
    (another torchrun rank, or a caller that asked for none)."""
    stream = stream or sys.stderr
    clock, every = clock or time.monotonic, EVERY_SECONDS if every is None else every
    if not enabled:
        return tqdm(total=total, disable=True)
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, leave=False, file=stream)
    return ProgressLines(total, desc, unit, stream, initial, clock, every)


def track(items: Iterable[Item], total: int | None, desc: str = "", unit: str = "batch", enabled: bool = True,
          **options: Any) -> Iterator[Item]:
    """The items, with progress_bar() counting one unit as each is done."""
    with progress_bar(total, desc, unit, enabled, **options) as bar:
        for item in items:
            yield item
            bar.update(1)
