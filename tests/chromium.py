"""Test helpers for pages loaded in headless Chromium (the browser runner itself is
meshctl.reports.screenshot, shared with `meshctl demo --screenshots`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from meshctl.reports.screenshot import NOT_FOUND, find_chromium, run_chromium


def chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run headless Chromium with `args`, its profile under tmp_path (parallel tests never share one)."""
    assert find_chromium(), f"{NOT_FOUND}: run ./scripts/setup.sh"
    return run_chromium(args, profile=tmp_path / "profile")


def screenshot_stats(png: Path) -> tuple[tuple[int, int], int, int]:
    """(size, pixels differing from white, distinct colours) of a screenshot."""
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB")).astype(np.int16)
    ink = int((np.abs(img - 255).sum(axis=2) > 30).sum())
    q = img // 16  # colours to 4 bits a channel, counted as one integer each (np.unique(axis=0) takes seconds)
    colours = len(np.unique((q[..., 0] << 8) | (q[..., 1] << 4) | q[..., 2]))
    return (img.shape[1], img.shape[0]), ink, colours


def colour_pixels(png: Path, colour: str, tolerance: int = 12) -> int:
    """Pixels of a screenshot within `tolerance` (per channel) of a `#rrggbb` colour."""
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB")).astype(np.int16)
    want = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return int((np.abs(img - want).max(axis=2) <= tolerance).sum())


def assert_self_contained(page: str) -> None:
    """Nothing the page would fetch: no src/href to another host, no stylesheet link, no @import."""
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page, re.I)
    assert "<link" not in page.lower() and "@import" not in page and "url(http" not in page
