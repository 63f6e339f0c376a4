"""The built wheel carries the grammar and the stdlib inside the package, and
the installed ``pytrace`` command works from it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_grammar_and_stdlib(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("pytrace-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "pytrace/grammar/pytrace.lark" in names
    assert "pytrace/stdlib/__init__.py" in names
    # Snippets, script tools and Python-driven tools.
    for snippet in ("base.pt", "errno.pt", "syscalls.pt", "tools/execsnoop.pt", "tools/strace.py"):
        assert f"pytrace/stdlib/{snippet}" in names, snippet
    assert "pytrace/frontend/parser.py" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "pytrace = pytrace.cli:entry" in zipfile.ZipFile(wheel).read(entry).decode()


def test_module_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "pytrace", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("pytrace v")
