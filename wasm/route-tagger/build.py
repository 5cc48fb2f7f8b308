"""Build route_tagger.wasm with zig's C compiler (PyPI `ziglang`): no Rust, TinyGo or Docker needed.

    python wasm/route-tagger/build.py [--out FILE]

Prints the output path and its sha256 (the digest a WasmPlugin `sha256:` field pins).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "ziglang", "cc",
        "--target=wasm32-freestanding", "-nostdlib", "-O2", "-Wall", "-Wextra", "-Werror",
        "-fno-builtin", "-Wl,--no-entry", "-Wl,--export-dynamic", "-Wl,--strip-all",
        "-o", str(out), str(HERE / "route_tagger.c"),
    ]
    subprocess.run(cmd, check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "build" / "route_tagger.wasm")
    path = build(ap.parse_args().out)
    print(path, hashlib.sha256(path.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
