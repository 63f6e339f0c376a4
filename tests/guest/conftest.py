"""The guest tier: tests that need a kernel with kprobes and fentry.

They run only inside the QEMU guest that scripts/test-kernels boots
(tests/kernels/qemu.py sets PYTRACE_KERNEL_GUEST=1) on a kernel that has the
kprobe PMU.  Everywhere else, including the normal suite (scripts/test runs
``pytest tests``), every test here is skipped with the reason.  Tests marked
``slow`` are left out of ``scripts/test-kernels --fast`` (CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent
GUEST_ENV = "PYTRACE_KERNEL_GUEST"
KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"


def in_guest() -> str | None:
    """None inside the guest, else why these tests cannot run here."""
    if os.environ.get(GUEST_ENV) != "1":
        return "kernel-matrix guest test: runs only under scripts/test-kernels (QEMU, Debian 6.1 kernel)"
    if not os.path.exists(KPROBE_PMU):
        return "kernel-matrix guest test: this guest kernel has no kprobe PMU"
    if os.geteuid() != 0:
        return "kernel-matrix guest test: needs root"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: left out of scripts/test-kernels --fast")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    why = in_guest()
    if why is None:
        return
    skip = pytest.mark.skip(reason=why)
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(skip)
