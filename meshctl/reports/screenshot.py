"""Headless Chromium, for pictures of the HTML and SVG pages meshctl writes.

One place that knows how to find and call the browser: `meshctl demo --screenshots` shoots its pages
with it and the tests load pages with it (screenshot pixels, `--dump-dom` after the page's script
ran). scripts/setup.sh installs Debian's `chromium-headless-shell`; a full `chromium` works too
(with `--headless`). Each call gets its own profile directory, so parallel calls never share one.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from meshctl.errors import MeshctlError

NOT_FOUND = "headless Chromium not found (scripts/setup.sh installs chromium-headless-shell)"


def find_chromium() -> str | None:
    """The browser binary: chromium-headless-shell, else chromium; None when neither is installed."""
    return shutil.which("chromium-headless-shell") or shutil.which("chromium")


def run_chromium(args: list[str], *, profile: Path | None = None, exe: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium with `args` (e.g. `--screenshot=FILE URL`, `--dump-dom URL`).

    `profile` is the user-data directory (a fresh temporary one when None). Raises MeshctlError when
    no browser is installed; the caller reads the return code and output."""
    exe = exe or find_chromium()
    if exe is None:
        raise MeshctlError(NOT_FOUND)
    with tempfile.TemporaryDirectory(prefix="meshctl-chromium-") as tmp:
        cmd = [exe, "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile or Path(tmp)}", *args]
        if Path(exe).name == "chromium":
            cmd.insert(1, "--headless")
        return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)


def page_url(page: str | Path) -> str:
    """A file path as a file:// URL; URLs are returned unchanged."""
    text = str(page)
    if "://" in text:
        return text
    return Path(text).resolve().as_uri()


def screenshot(page: str | Path, png: Path, size: tuple[int, int], *, profile: Path | None = None,
               exe: str | None = None) -> Path:
    """A PNG of `page` (a file or URL) in a `size` (width, height) window; MeshctlError if none came out."""
    png = Path(png)
    png.unlink(missing_ok=True)
    proc = run_chromium([f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", page_url(page)],
                        profile=profile, exe=exe)
    if proc.returncode != 0 or not png.exists():
        raise MeshctlError(f"headless Chromium could not take {png.name}: "
                           f"{proc.stderr.decode(errors='replace')[-300:]}")
    return png


def dump_dom(page: str | Path, *, profile: Path | None = None, exe: str | None = None) -> str:
    """The page's DOM after its scripts ran (Chromium's `--dump-dom`)."""
    proc = run_chromium(["--dump-dom", page_url(page)], profile=profile, exe=exe)
    if proc.returncode != 0:
        raise MeshctlError(f"headless Chromium could not load {page}: {proc.stderr.decode(errors='replace')[-300:]}")
    return proc.stdout.decode(errors="replace")
