"""The guest tier: tests that need a kernel with kprobes and fentry.

They run only inside the QEMU guest that scripts/test-kernels boots
(tests/kernels/qemu.py sets PYTRACE_KERNEL_GUEST=1) on a kernel that has the
kprobe PMU.  Elsewhere tests/conftest.py does not collect this directory at
all; if it is collected anyway (PYTRACE_KERNEL_GUEST=1 on another machine),
every test is skipped with the reason.  Tests marked ``slow`` are left out
of ``scripts/test-kernels --fast`` (CI).  When the guest session ends, no
pytrace BPF program (named ``pt*``) may be left in the guest's kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).parent
GUEST_ENV = "PYTRACE_KERNEL_GUEST"
KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"
# The host's bpftool, seen through the guest's shared root.
BPFTOOL = "/usr/sbin/bpftool"


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


def pytrace_programs() -> dict[int, str]:
    """Every loaded BPF program named like pytrace's (``pt*``) by id, with
    the processes holding it.  In the guest nothing else runs pytrace, so a
    program still held by a live process is a leak too (a tracer that never
    ended), not only one that outlived its process."""
    out = subprocess.run([BPFTOOL, "-j", "prog", "show"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"bpftool prog show failed: {out.stderr.strip()}"
    progs = json.loads(out.stdout or "[]")
    return {p["id"]: p.get("name", "") + "".join(f' ({o.get("comm")}[{o.get("pid")}])' for o in p.get("pids", []))
            for p in progs if p.get("name", "").startswith("pt")}


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """At the end of the guest session: every pytrace program is gone.  A
    leftover fails the session (an error at the last test's teardown)."""
    if in_guest() is not None:
        yield
        return
    assert os.path.exists(BPFTOOL), f"{BPFTOOL} is needed to check for leftover BPF programs"
    before = set(pytrace_programs())
    yield
    left = {i: d for i, d in pytrace_programs().items() if i not in before}
    # A tracer that is exiting has closed its fds while the kernel frees its
    # programs (RCU): look again for a few seconds before calling it a leak.
    deadline = time.monotonic() + 10
    while left and time.monotonic() < deadline:
        time.sleep(1)
        now = pytrace_programs()
        left = {i: now[i] for i in left if i in now}
    assert not left, f"pytrace BPF programs left behind in the guest: {sorted(f'{d}#{i}' for i, d in left.items())}"


@pytest.fixture()
def data(tmp_path: Path) -> str:
    """A 250-block file to read.  /tmp is the overlay (upper layer tmpfs):
    reads go through ovl_read_iter."""
    from .workload import make_file
    return make_file(str(tmp_path / "data"), 250)
