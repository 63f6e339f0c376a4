"""pytrace.sysinfo: the syscall table (against the installed kernel headers
and the tracefs fixture of a real 6.18 kernel), errno/signal names and the
flag decoders (against the values Python's os/mmap modules and gcc's
headers give)."""

from __future__ import annotations

import errno
import mmap
import os
import re
import signal
from pathlib import Path

import pytest

from pytrace import sysinfo
from pytrace.sysinfo import Param

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "tracefs"
UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")


def test_table_shape() -> None:
    table = sysinfo.syscall_names()
    assert table[0] == "read" and table[257] == "openat" and table[231] == "exit_group"
    assert table[334] == "rseq" and table[424] == "pidfd_send_signal" and table[469] == "file_setattr"
    # 337..423 are holes on x86_64; nothing after the last known number.
    assert not any(337 <= nr <= 423 for nr in table) and max(table) == 469
    assert len(set(table.values())) == len(table)  # no name twice


@pytest.mark.skipif(not UNISTD.exists(), reason="needs linux-libc-dev's asm/unistd_64.h")
def test_table_agrees_with_the_installed_headers() -> None:
    defined = {m.group(1): int(m.group(2))
               for m in re.finditer(r"^#define __NR_(\w+)\s+(\d+)$", UNISTD.read_text(), re.M)}
    assert len(defined) > 300
    table = sysinfo.syscall_names()
    for name, nr in defined.items():
        assert table.get(nr) == name, (name, nr)
        assert sysinfo.syscall_number(name) == nr


def test_names_and_numbers() -> None:
    assert sysinfo.syscall_name(59) == "execve"
    assert sysinfo.syscall_name(400) == "syscall_400"
    assert sysinfo.syscall_number("openat") == 257
    assert sysinfo.syscall_number("sys_enter_newstat") == 4  # the tracepoint's name for stat(2)
    assert sysinfo.syscall_number("sys_exit_umount") == 166
    assert sysinfo.syscall_number("no_such_call") is None
    assert sysinfo.tracepoint_syscall("sys_enter_sendfile64") == "sendfile"
    assert sysinfo.tracepoint_syscall("read") == "read"


def test_every_fixture_tracepoint_has_a_number() -> None:
    calls = sysinfo.tracepoint_syscalls(str(FIXTURE))
    assert len(calls) > 300 and calls["stat"] == "sys_enter_newstat"
    missing = [name for name in calls if sysinfo.syscall_number(name) is None]
    assert missing == []


def test_params_from_the_format_files() -> None:
    root = str(FIXTURE)
    assert sysinfo.syscall_params(root, "openat") == [
        Param("int", "dfd"), Param("const char *", "filename"), Param("int", "flags"), Param("umode_t", "mode")]
    assert sysinfo.syscall_params(root, "stat") == [
        Param("const char *", "filename"), Param("struct stat *", "statbuf")]
    assert sysinfo.syscall_params(root, "execve") == [
        Param("const char *", "filename"), Param("const char *const *", "argv"),
        Param("const char *const *", "envp")]
    assert sysinfo.syscall_params(root, "getpid") == []
    assert sysinfo.syscall_params(root, "no_such_call") is None
    assert sysinfo.syscall_params("/nonexistent", "openat") is None


def test_parse_syscall_format_skips_common_fields() -> None:
    text = ("name: sys_enter_close\nID: 1\nformat:\n"
            "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
            "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n"
            "\tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;\n\nprint fmt: \"fd: 0x%08lx\"\n")
    assert sysinfo.parse_syscall_format(text) == [Param("unsigned int", "fd")]


def test_errno() -> None:
    assert sysinfo.errno_name(errno.ENOENT) == "ENOENT"
    assert sysinfo.errno_name(-errno.EACCES) == "EACCES"
    assert sysinfo.errno_name(512) == "ERESTARTSYS"
    assert sysinfo.errno_name(4000) == "E4000"
    assert sysinfo.strerror(errno.ENOENT) == "No such file or directory"
    assert sysinfo.strerror(516) == "Interrupted by signal"
    for e in (errno.EPERM, errno.EBADF, errno.EINVAL, errno.ENOSYS):
        assert sysinfo.errno_name(e) == errno.errorcode[e]


def test_returns() -> None:
    assert sysinfo.format_return(3) == "3"
    assert sysinfo.format_return(-2) == "-1 ENOENT (No such file or directory)"
    assert sysinfo.format_return(-4095).startswith("-1 E4095")
    assert sysinfo.format_return(-4096) == "-4096"  # not an errno: a negative value (lseek can return one)
    assert sysinfo.format_return(0x7F0000001000, hex_value=True) == "0x7f0000001000"
    assert sysinfo.format_return(-12, hex_value=True) == "-1 ENOMEM (Cannot allocate memory)"
    assert sysinfo.is_error_return(-1) and not sysinfo.is_error_return(0)


def test_signals() -> None:
    assert sysinfo.signal_name(signal.SIGTERM) == "SIGTERM"
    assert sysinfo.signal_name(9) == "SIGKILL"
    assert sysinfo.signal_name(0) == "0"
    assert sysinfo.signal_name(32) == "SIGRTMIN"
    assert sysinfo.signal_name(35) == "SIGRTMIN+3"
    assert sysinfo.signal_name(99) == "99"


def test_open_flags_match_the_os_module() -> None:
    assert sysinfo.open_flags(os.O_RDONLY) == "O_RDONLY"
    assert sysinfo.open_flags(os.O_WRONLY | os.O_CREAT | os.O_TRUNC) == "O_WRONLY|O_CREAT|O_TRUNC"
    assert sysinfo.open_flags(os.O_RDWR | os.O_APPEND | os.O_CLOEXEC) == "O_RDWR|O_APPEND|O_CLOEXEC"
    assert sysinfo.open_flags(os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK) == \
        "O_RDONLY|O_NONBLOCK|O_DIRECTORY|O_NOFOLLOW"
    assert sysinfo.open_flags(os.O_SYNC | os.O_WRONLY) == "O_WRONLY|O_SYNC"
    assert sysinfo.open_flags(os.O_DSYNC | os.O_WRONLY) == "O_WRONLY|O_DSYNC"
    assert sysinfo.open_flags(os.O_TMPFILE | os.O_RDWR) == "O_RDWR|O_TMPFILE"
    assert sysinfo.open_flags(os.O_PATH | os.O_CLOEXEC) == "O_CLOEXEC|O_PATH"
    assert sysinfo.open_flags(0o100000) == "O_RDONLY|O_LARGEFILE"  # the kernel's bit; os.O_LARGEFILE is 0
    assert sysinfo.open_flags(0x80000000 | 1) == "O_WRONLY|0x80000000"
    assert sysinfo.open_flags((1 << 64) - 1 & ~0xFFFFFFFF | os.O_RDWR) == "O_RDWR"  # upper register half


def test_modes() -> None:
    assert sysinfo.file_mode(0o644) == "0644"
    assert sysinfo.file_mode(0) == "000"
    assert sysinfo.file_mode(0o4755) == "04755"
    assert sysinfo.stat_mode(0o100644) == "S_IFREG|0644"
    assert sysinfo.stat_mode(0o040755) == "S_IFDIR|0755"
    assert sysinfo.stat_mode(0o020600) == "S_IFCHR|0600"
    assert sysinfo.stat_mode(0o600) == "0600"
    assert sysinfo.access_mode(os.F_OK) == "F_OK"
    assert sysinfo.access_mode(os.R_OK | os.W_OK) == "R_OK|W_OK"
    assert sysinfo.access_mode(os.X_OK) == "X_OK"


def test_at_fd_and_flags() -> None:
    assert sysinfo.at_fd(-100) == "AT_FDCWD"
    assert sysinfo.at_fd(0xFFFFFF9C) == "AT_FDCWD"           # a zero-extended int in a register
    assert sysinfo.at_fd(0xFFFFFFFFFFFFFF9C) == "AT_FDCWD"
    assert sysinfo.at_fd(3) == "3"
    assert sysinfo.at_fd(0xFFFFFFFF) == "-1"
    assert sysinfo.at_flags(0) == "0"
    assert sysinfo.at_flags(0x1000) == "AT_EMPTY_PATH"
    assert sysinfo.at_flags(0x100 | 0x1000) == "AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH"
    assert sysinfo.at_flags(0x200) == "AT_REMOVEDIR"
    assert sysinfo.at_flags(0x10000) == "0x10000"


def test_mmap_matches_the_mmap_module() -> None:
    assert sysinfo.mmap_prot(mmap.PROT_READ | mmap.PROT_WRITE) == "PROT_READ|PROT_WRITE"
    assert sysinfo.mmap_prot(mmap.PROT_READ | mmap.PROT_EXEC) == "PROT_READ|PROT_EXEC"
    assert sysinfo.mmap_prot(0) == "PROT_NONE"
    assert sysinfo.mmap_flags(mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS) == "MAP_PRIVATE|MAP_ANONYMOUS"
    assert sysinfo.mmap_flags(mmap.MAP_SHARED | mmap.MAP_POPULATE) == "MAP_SHARED|MAP_POPULATE"
    assert sysinfo.mmap_flags(mmap.MAP_PRIVATE | 0x10 | 0x800) == "MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE"
    assert sysinfo.mmap_flags(3) == "MAP_SHARED_VALIDATE"
    assert sysinfo.mmap_flags(0x22 | 0x20000) == "MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK"


def test_flag_names() -> None:
    table = ((1, "A"), (6, "BC"), (2, "B"))
    assert sysinfo.flag_names(0, table) == "0"
    assert sysinfo.flag_names(0, table, "NONE") == "NONE"
    assert sysinfo.flag_names(7, table) == "A|BC"          # a multi-bit entry first
    assert sysinfo.flag_names(3, table) == "A|B"
    assert sysinfo.flag_names(0x11, table) == "A|0x10"
