"""Shared fixtures: a fake kernel built from the tracefs fixture, compile helpers.

Kernel tests (marked ``kernel``) need root and a BPF-capable kernel.  They are
skipped with a reason only when that is missing; CI runs as root on a kernel
with BPF, so there they always run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytrace.diagnostics import Diagnostics
from pytrace.kernel.info import FakeKernel
from pytrace.semantic.pipeline import CompileOptions, Compilation, run
from pytrace.source import SourceFile

import sys

DATA = Path(__file__).parent / "data"
# pipeline.run raises the limit too; doing it up front keeps hypothesis from
# warning that the limit changed during a test.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
IS_ROOT = os.geteuid() == 0
# tests/guest needs a kernel with kprobes and fentry: scripts/test-kernels
# runs it inside a QEMU guest (which sets PYTRACE_KERNEL_GUEST=1); the host
# suite does not collect it at all rather than reporting 31 skips.
collect_ignore = [] if os.environ.get("PYTRACE_KERNEL_GUEST") == "1" else ["guest"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="kernel test: needs root")
    for item in items:
        if "kernel" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fake_kernel() -> FakeKernel:
    return FakeKernel(DATA / "tracefs")


def compile_text(text: str, kernel, *, name: str = "stdin", **kw) -> tuple[Compilation, Diagnostics]:  # type: ignore[no-untyped-def]
    diags = Diagnostics()
    comp = run(SourceFile(name, text), CompileOptions(kernel=kernel, environ={}, **kw), diags)
    return comp, diags
