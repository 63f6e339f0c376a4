"""Build small C programs for tests (uprobe targets, symbol tables)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def build_c(directory: Path, source: str, name: str = "p", flags: tuple[str, ...] = ("-O1", "-no-pie")) -> Path:
    """Compile ``source`` to ``directory/name`` with gcc (non-PIE by default,
    so symbol addresses are the run-time ones); skips without gcc (CI
    installs it)."""
    if not shutil.which("gcc"):
        pytest.skip("needs gcc")
    (directory / f"{name}.c").write_text(source)
    subprocess.run(["gcc", *flags, "-o", str(directory / name), str(directory / f"{name}.c")], check=True)
    return directory / name
