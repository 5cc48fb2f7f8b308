"""Pictures of a canary judgment: latency distributions and error rates, baseline beside canary.

matplotlib is imported here only (it costs ~0.3 s), with the non-interactive Agg backend. The file
type follows the extension: .svg or .png.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

FORMATS = (".svg", ".png")
COLORS = ("#4c72b0", "#dd8452")  # baseline, canary


def check_path(path: str) -> None:
    if Path(path).suffix.lower() not in FORMATS:
        raise ValueError(f"--plot writes {' or '.join(FORMATS)} files, not {Path(path).suffix or 'no extension'}")


def plot(result: Any, path: str) -> None:
    check_path(path)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    latency = result.samples.get("latency")
    arrays = {k: v for k, v in result.samples.items() if k != "latency"}
    if latency is not None:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [2.2, 1, 1.3]})
        _latency_cdf(axes[0], latency, result.labels)
        _error_bars(axes[1], result)
        _quantile_bars(axes[2], latency, result.labels)
    else:
        n = max(1, min(len(arrays), 6))
        fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False)
        for ax, (name, pair) in zip(axes[0], list(arrays.items())[:n], strict=False):
            _strip(ax, name, pair, result)
    from meshctl.reports.canary_format import title

    fig.suptitle(f"{title(result)} — score {result.score:g}", fontsize=12, fontweight="bold")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _latency_cdf(ax: Any, latency: Any, labels: tuple[str, str]) -> None:
    import numpy as np

    for s, lab, color in zip(latency, labels, COLORS, strict=True):
        if s.empty:
            continue
        y = np.cumsum(s.counts) / s.n
        ax.step(np.maximum(s.values, 1e-3), y, where="post", color=color, label=f"{lab} (n={s.n:,})")
        for q, style in ((0.5, ":"), (0.9, "--"), (0.99, "-.")):
            ax.axvline(max(s.quantile(q), 1e-3), color=color, linestyle=style, alpha=0.6, linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("request duration (ms, log scale)")
    ax.set_ylabel("share of requests at or below")
    ax.set_title("latency distribution (dotted p50, dashed p90, dash-dot p99)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")


def _error_bars(ax: Any, result: Any) -> None:
    from analyzers.canary.proportions import wilson

    c = result.cohorts
    rates, lows, highs = [], [], []
    for side in ("baseline", "canary"):
        n, e = c.get(side, {}).get("requests", 0), c.get(side, {}).get("errors", 0)
        r = e / n if n else math.nan
        lo, hi = wilson(e, n, 1.959964) if n else (math.nan, math.nan)
        rates.append(r * 100)
        lows.append(max(0.0, (r - lo) * 100) if n else 0)
        highs.append(max(0.0, (hi - r) * 100) if n else 0)
    ax.bar(result.labels, rates, color=COLORS, yerr=[lows, highs], capsize=6)
    for i, r in enumerate(rates):
        if r == r:
            ax.annotate(f"{r:.3g}%", (i, r), textcoords="offset points", xytext=(0, 4), ha="center")
    ax.set_ylabel("error rate (%), 95% Wilson interval")
    ax.set_title("error rate")
    ax.grid(axis="y", alpha=0.3)


def _quantile_bars(ax: Any, latency: Any, labels: tuple[str, str]) -> None:
    import numpy as np

    qs = (0.5, 0.9, 0.99)
    x = np.arange(len(qs))
    width = 0.38
    for i, (s, lab, color) in enumerate(zip(latency, labels, COLORS, strict=True)):
        vals = [s.quantile(q) if not s.empty else math.nan for q in qs]
        ax.bar(x + (i - 0.5) * width, vals, width, label=lab, color=color)
    ax.set_xticks(x, [f"p{q * 100:g}" for q in qs])
    ax.set_ylabel("ms")
    ax.set_title("latency quantiles")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()


def _strip(ax: Any, name: str, pair: Any, result: Any) -> None:
    import numpy as np

    b, c = (np.asarray(v, dtype=float) for v in pair)
    data = [b[~np.isnan(b)], c[~np.isnan(c)]]
    ax.boxplot(data, showfliers=False)
    ax.set_xticks([1, 2], list(result.labels))
    rng = np.random.default_rng(0)
    for i, (d, color) in enumerate(zip(data, COLORS, strict=True), start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, d.size), d, s=8, alpha=0.6, color=color)
    m = next((r for r in result.metrics if r.name == name), None)
    ax.set_title(f"{name}: {m.classification if m else ''}")
    ax.grid(axis="y", alpha=0.3)
