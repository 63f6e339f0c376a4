"""Kernel tests need root and BPF; every pytrace program they load must be
gone when the session ends (checked with bpftool)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest


def _pytrace_progs() -> list[str]:
    if not shutil.which("bpftool"):
        return []
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    try:
        progs = json.loads(out.stdout or "[]")
    except json.JSONDecodeError:
        return []
    # A program still owned by a live process is in use (another pytrace, a
    # test still running); one with no owner outlived the process that loaded
    # it, which is a leak.
    return [f'{p.get("name", "")}#{p.get("id")}' for p in progs
            if p.get("name", "").startswith("pt") and not p.get("pids")]


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():  # type: ignore[no-untyped-def]
    before = set(_pytrace_progs())
    yield
    after = set(_pytrace_progs()) - before
    if after:
        # A process that is exiting has dropped its fds (no owner shown) while
        # the kernel still frees its programs: look again a moment later.
        import time
        time.sleep(2)
        after &= set(_pytrace_progs())
    assert not after, f"BPF programs left behind by the tests: {sorted(after)}"
