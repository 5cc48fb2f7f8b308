"""Small helpers shared by the benchmark scripts: timing, peak RSS, figure printing."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of its waited-for children), in MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


def wall_times(cmd: Sequence[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall time of `cmd` (a subprocess) over `runs` runs, after one warm-up run."""
    full_env = {**os.environ, **(env or {})}
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full_env, check=True)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full_env, check=True)
        out.append(time.perf_counter() - t0)
    return out


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def figure(name: str, value: float, unit: str, note: str = "") -> None:
    print(f"{name:<44} {value:>12.3f} {unit:<8} {note}".rstrip(), flush=True)
