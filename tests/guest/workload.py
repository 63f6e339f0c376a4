"""Workloads the guest tests control: exact numbers of kernel calls made by
a forked child with its own comm, so a script filtered on
``comm == "ptwork"`` sees only them (the test process itself reads the
tracers' pipes, which would count as vfs_read calls of its own)."""

from __future__ import annotations

import os
from typing import Callable, Sequence

from tests.kernel.difflib_pt import fork_named, reap

COMM = "ptwork"
# Appended to differential scripts: the workload child ends with getppid(2),
# and both tracers exit on their own.  Stopping them with SIGINT instead is
# flaky under TCG: bpftrace 0.17 takes over a second to exit, and the
# harness's second SIGINT (difflib_pt._finish) kills it before it prints.
END_PROBE = f'tracepoint:syscalls:sys_enter_getppid /comm == "{COMM}"/ {{ exit(); }}'



def in_child(fn: Callable[[], None], comm: str = COMM) -> int:
    """Run ``fn`` in a forked child named ``comm``; wait; return its pid."""
    def work() -> None:
        fn()
        os.getppid()   # the end of the workload, for END_PROBE
    pid = fork_named(comm, work)
    reap(pid)
    return pid


def pause(seconds: float) -> Callable[[], None]:
    def run() -> None:
        import time
        time.sleep(seconds)
    return run


def make_file(path: str, size: int) -> str:
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * (size // 256) + bytes(size % 256))
    return path


def preads(path: str, calls: Sequence[tuple[int, int]]) -> Callable[[], None]:
    """pread64(fd, size, offset) for each (size, offset): one vfs_read each."""
    def run() -> None:
        fd = os.open(path, os.O_RDONLY)
        for size, offset in calls:
            os.pread(fd, size, offset)
        os.close(fd)
    return run


def reads(path: str, n: int, size: int) -> Callable[[], None]:
    """n read(2) calls of ``size`` bytes (through ksys_read)."""
    def run() -> None:
        fd = os.open(path, os.O_RDONLY)
        for _ in range(n):
            os.lseek(fd, 0, os.SEEK_SET)
            os.read(fd, size)
        os.close(fd)
    return run


def readvs(path: str, n: int, size: int) -> Callable[[], None]:
    """n readv(2) calls (vfs_readv: nothing else in the guest calls it)."""
    def run() -> None:
        fd = os.open(path, os.O_RDONLY)
        for _ in range(n):
            os.lseek(fd, 0, os.SEEK_SET)
            os.readv(fd, [bytearray(size)])
        os.close(fd)
    return run


def fsyncs(path: str, n: int) -> Callable[[], None]:
    """n fsync(2) calls (vfs_fsync, then vfs_fsync_range)."""
    def run() -> None:
        fd = os.open(path, os.O_WRONLY)
        for _ in range(n):
            os.fsync(fd)
        os.close(fd)
    return run


def connects(n: int) -> Callable[[], None]:
    """n TCP connections over lo to a listener of the child's own."""
    def run() -> None:
        import socket
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(n)
            for _ in range(n):
                with socket.create_connection(srv.getsockname()):
                    srv.accept()[0].close()
    return run


def raw_sockets(n: int) -> Callable[[], None]:
    """n raw ICMP sockets: a CAP_NET_RAW check (cap_capable) each."""
    def run() -> None:
        import socket
        for _ in range(n):
            socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
    return run


def unix_messages(messages: Sequence[bytes]) -> Callable[[], None]:
    """Send and receive each message over a UNIX stream socketpair."""
    def run() -> None:
        import socket
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with a, b:
            for m in messages:
                a.sendall(m)
                b.recv(len(m))
    return run


def lookups(root: str, n: int) -> Callable[[], None]:
    """stat() of a three-level path that exists and of one that does not."""
    def run() -> None:
        os.makedirs(os.path.join(root, "d1", "d2"), exist_ok=True)
        for _ in range(n):
            os.stat(os.path.join(root, "d1", "d2"))
            try:
                os.stat(os.path.join(root, "d1", "nope"))
            except FileNotFoundError:
                pass
    return run


def direct_reads(device: str, calls: Sequence[tuple[int, int]]) -> Callable[[], None]:
    """One O_DIRECT pread of ``size`` bytes at ``offset`` per (size, offset):
    one block request each (no page cache, sizes under max_sectors_kb)."""
    def run() -> None:
        import mmap
        fd = os.open(device, os.O_RDONLY | os.O_DIRECT)
        try:
            for size, offset in calls:
                with mmap.mmap(-1, size) as buf:   # page-aligned, as O_DIRECT needs
                    assert os.preadv(fd, [buf], offset) == size
        finally:
            os.close(fd)
    return run


def reads_completed(device: str) -> int:
    """The device's completed read requests (the first field of
    /sys/block/<dev>/stat)."""
    with open(f"/sys/block/{os.path.basename(device)}/stat") as f:
        return int(f.read().split()[0])


def chain(*steps: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        for step in steps:
            step()
    return run
