"""Start-up cost of `meshctl --help` against `python -c "import click"`.

Prints the median wall time of each over N runs (default 15, after a warm-up) and their ratio.
Target (issue: render): ratio <= 1.5, i.e. meshctl adds at most half of click's own import.

    .venv/bin/python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import sys

from _common import BIN, figure, median, wall_times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    meshctl = str(BIN / "meshctl")
    # Interleave the two measurements in rounds so that machine noise hits both alike.
    base, help_, render_help = [], [], []
    for _ in range(args.runs):
        base += wall_times([sys.executable, "-c", "import click"], 1)
        help_ += wall_times([meshctl, "--help"], 1)
        render_help += wall_times([meshctl, "render", "--help"], 1)
    b, h, r = median(base), median(help_), median(render_help)
    print(f"runs per command: {args.runs} (median wall time)")
    figure("python -c 'import click'", b * 1000, "ms", "baseline")
    figure("meshctl --help", h * 1000, "ms")
    figure("meshctl render --help", r * 1000, "ms")
    figure("ratio meshctl --help / import click", h / b, "x", "target <= 1.5")
    figure("ratio meshctl render --help / import click", r / b, "x", "target <= 1.5")


if __name__ == "__main__":
    main()
