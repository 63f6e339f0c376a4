"""pytrace.bpf.syscalls on the live kernel, plus what every test_bpf_* module shares.

The shared part: ``TAG`` (a prefix for the names of every program and map
the tests create, unique to this test process), the autouse ``bpf_clean``
fixture that fails a test which leaves an fd open or a tagged program
loaded, and builders of the small hand-assembled programs the tests load.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import pickle
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytrace.bpf import insn as I
from pytrace.bpf.maps import BpfMap
from pytrace.bpf.syscalls import (
    BpfError,
    BpfPermissionError,
    MapType,
    make_error,
    online_cpus,
    parse_cpu_list,
    possible_cpus,
    sanitize_name,
)
from pytrace.errors import EnvironmentProblem

pytestmark = pytest.mark.kernel

# Program and map names start with this; 9 characters leave 6 for a suffix.
TAG = f"pyt{os.getpid() % 100000:05d}_"
SYS_GETPID = 39  # x86_64
HELPER_MAP_LOOKUP, HELPER_MAP_UPDATE, HELPER_PID_TGID = 1, 2, 14
HELPER_GET_STACKID, HELPER_RINGBUF_OUTPUT = 27, 130
HELPER_RINGBUF_RESERVE, HELPER_RINGBUF_SUBMIT, HELPER_RINGBUF_DISCARD = 131, 132, 133

_LIBC = ctypes.CDLL(None, use_errno=True)


def raw_getpid() -> int:
    """getpid(2) straight through syscall(2), bypassing any libc caching."""
    return int(_LIBC.syscall(SYS_GETPID))


def open_fds() -> set[tuple[str, str]]:
    """(fd, what it refers to) for every open fd.  Pairs, not numbers, so a
    leaked fd that reuses a number free at the start is still seen; the fd
    of the listing itself is gone by the time we readlink it."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:
            pass
    return out


def tagged_programs() -> list[str]:
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True)
    return [p.get("name", "") for p in json.loads(out.stdout or "[]") if p.get("name", "").startswith(TAG)]


@pytest.fixture(autouse=True)
def bpf_clean() -> Iterator[None]:
    """Every fd a test opens is closed by its end, and none of its programs
    stays loaded (checked with bpftool, as an outside observer)."""
    before = open_fds()
    yield
    leaked = sorted(open_fds() - before)
    assert not leaked, f"fds leaked: {leaked}"
    # Freeing a program whose last reference went away in RCU context is deferred.
    deadline = time.monotonic() + 2.0
    while (left := tagged_programs()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"programs still loaded: {left}"


def counter_prog(map_fd: int, *, pid: int | None = None, syscall_nr: int | None = None,
                 sum_ctx_off: int | None = None) -> bytes:
    """A program that adds 1 to u64 key/index 0 of ``map_fd`` (u32 keys) and,
    with ``sum_ctx_off``, the u64 at that ctx offset to key 1.  ``pid`` keeps
    only that process; ``syscall_nr`` keeps only raw_tp sys_enter events of
    that syscall (args[1] is the id).  Works for hash maps whose keys exist
    and for array maps."""
    a = I.Asm()
    a.emit(I.mov64_reg(I.R6, I.R1))
    if syscall_nr is not None:
        a.emit(I.ldx(8, I.R2, I.R6, 8)).jmp(I.JNE, I.R2, "out", imm=syscall_nr)
    if pid is not None:
        a.emit(I.call(HELPER_PID_TGID), I.alu64_imm(I.RSH, I.R0, 32)).jmp(I.JNE, I.R0, "out", imm=pid)
    slots = [(0, None)] + ([(1, sum_ctx_off)] if sum_ctx_off is not None else [])
    for key, ctx_off in slots:
        a.emit(I.st_imm(4, I.R10, -4, key), I.ld_map_fd(I.R1, map_fd), I.mov64_reg(I.R2, I.R10),
               I.alu64_imm(I.ADD, I.R2, -4), I.call(HELPER_MAP_LOOKUP))
        a.jmp(I.JEQ, I.R0, "out", imm=0)
        a.emit(I.ldx(8, I.R1, I.R6, ctx_off) if ctx_off is not None else I.mov64_imm(I.R1, 1),
               I.atomic_add64(I.R0, 0, I.R1))
    a.label("out").emit(I.mov64_imm(I.R0, 0), I.exit_insn())
    return a.assemble()


def u64_at(m: BpfMap, key: int) -> int:
    raw = m.lookup(key.to_bytes(4, "little"))
    return 0 if raw is None else int.from_bytes(raw, "little")


# --- tests of the syscall layer ---------------------------------------------------


def test_cpu_lists() -> None:
    assert parse_cpu_list("0-3,5,7-8\n") == [0, 1, 2, 3, 5, 7, 8]
    assert parse_cpu_list("0") == [0]
    assert possible_cpus() >= len(online_cpus()) >= 1
    assert possible_cpus() == len(parse_cpu_list(Path("/sys/devices/system/cpu/possible").read_text()))
    assert 0 in online_cpus()


def test_names_are_sanitised() -> None:
    assert sanitize_name("hist:@us/by pid!") == b"hist__us_by_pid"
    assert sanitize_name("ok.name_1") == b"ok.name_1"
    assert len(sanitize_name("x" * 40)) == 15
    with BpfMap.create(MapType.HASH, 4, 4, 1, "a-b c/d:@e" * 3) as m:
        assert m.name == "a_b_c_d__ea_b_c"
        with BpfMap.from_fd(os.dup(m.fd)) as same:
            assert same.name == m.name  # the kernel stored what we sent


def test_errors_are_readable_oserrors() -> None:
    with pytest.raises(BpfError) as info:
        BpfMap.create(MapType.HASH, 0, 8, 16, TAG + "zero")  # key_size 0 is EINVAL
    e = info.value
    assert isinstance(e, OSError) and e.errno == errno.EINVAL and e.cmd == "BPF_MAP_CREATE"
    assert "cannot create hash map" in str(e) and "EINVAL" in str(e)
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is BpfError and str(again) == str(e)
    perm = make_error(errno.EPERM, "BPF_PROG_LOAD", "no")
    assert isinstance(perm, BpfPermissionError) and isinstance(perm, EnvironmentProblem)
    assert perm.hint and "root" in perm.hint


def test_unprivileged_process_gets_a_permission_error() -> None:
    """A child that drops root sees BpfPermissionError, an EnvironmentProblem
    with a hint (kernel.unprivileged_bpf_disabled is set on Debian)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                BpfMap.create(MapType.HASH, 4, 4, 1, "unpriv").close()
                msg = "created"
            except BpfPermissionError as exc:
                msg = f"perm:{isinstance(exc, EnvironmentProblem)}:{exc}"
            except BaseException as exc:  # noqa: BLE001 - report anything to the parent
                msg = f"other:{exc!r}"
            os.write(w, msg.encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        msg = fh.read().decode()
    os.waitpid(pid, 0)
    assert msg.startswith("perm:True:"), msg
    assert "EPERM" in msg


def test_getpid_reaches_the_kernel() -> None:
    """Both ways of calling getpid the other tests use are real syscalls."""
    assert raw_getpid() == os.getpid()
