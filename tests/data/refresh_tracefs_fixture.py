#!/usr/bin/env python3
"""Regenerate tests/data/tracefs from the running kernel's tracefs.

Copies the ``format`` and ``id`` file of every event in the categories the
unit tests use, so FakeKernel sees a real kernel's tracepoints without root.
Run as root from anywhere: ``sudo python3 tests/data/refresh_tracefs_fixture.py``.
Categories are replaced wholesale, so events the new kernel dropped go away.
"""

from __future__ import annotations

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from pytrace.kernel.tracefs import list_tracepoints, tracefs_root  # noqa: E402

CATEGORIES = (
    "syscalls", "raw_syscalls", "sched", "block", "skb", "writeback", "signal", "task",
    "sock", "tcp", "net", "irq", "timer", "kmem", "oom",
)
FILES = ("format", "id")


def refresh(dest: str = os.path.join(HERE, "tracefs")) -> int:
    """Copy the fixture categories into ``dest``; returns how many events were copied."""
    root = tracefs_root()
    wanted = set(CATEGORIES)
    events = [(c, e) for c, e in list_tracepoints(root) if c in wanted]
    for cat in CATEGORIES:
        shutil.rmtree(os.path.join(dest, "events", cat), ignore_errors=True)
    for cat, ev in events:
        out_dir = os.path.join(dest, "events", cat, ev)
        os.makedirs(out_dir, exist_ok=True)
        for name in FILES:
            src = os.path.join(root, "events", cat, ev, name)
            try:
                with open(src, encoding="utf-8") as fh:
                    text = fh.read()
            except FileNotFoundError:
                continue
            # tracefs reports size 0 for these files, so copy by reading.
            with open(os.path.join(out_dir, name), "w", encoding="utf-8") as fh:
                fh.write(text)
    return len(events)


if __name__ == "__main__":
    print(f"copied {refresh()} events")
