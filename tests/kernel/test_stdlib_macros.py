"""The stdlib's snippets in the kernel: each macro's results against a
workload the test controls, macros and imports end to end, and every example
of docs/stdlib.md compiling against this kernel."""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pytrace import sysinfo
from pytrace.stdlib_docs import markdown, snippets

ROOT = Path(__file__).resolve().parents[2]
STDLIB = ROOT / "stdlib"
sys.path.insert(0, str(ROOT / "scripts"))
import gen_stdlib  # noqa: E402


def pytrace(script: str, command: str | None = None, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytrace", "-q", *extra, "-e", script]
    if command is not None:
        argv += ["-c", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def py(code: str) -> str:
    """A -c command running ``code`` in a fresh Python."""
    return f"{sys.executable} -c {shlex.quote(code)}"


def test_user_macros_run_in_the_kernel() -> None:
    script = """
macro add_one($x) { $x += 1 }
macro twice(e) { e * 2 }
macro swap($a, $b) { let $t = $a; $a = $b; $b = $t; }
macro bump(@m, k) { @m[k] = @m[k] + 1; @m[k] }
macro square(x) { let $t = x; $t * $t }
BEGIN {
  $a = 1; $b = 5; $t = 100;
  add_one($a);
  swap($a, $b);
  printf("%d %d %d %d\\n", $a, $b, $t, twice($a + 1));
  printf("%d %d %d\\n", square(7), bump(@hits, 3), bump(@hits, 3));
  exit();
}"""
    r = pytrace(script)
    assert r.returncode == 0, r.stderr
    # swap swapped 2 and 5, the caller's $t kept its value (hygiene), and
    # each bump() saw the map the previous one changed.
    assert r.stdout.split("\n")[:2] == ["5 2 100 12", "49 1 2"]
    assert "@hits[3]: 2" in r.stdout


def test_base_family_macros() -> None:
    script = ('import "base"; tracepoint:syscalls:sys_enter_getppid /pid == cpid/ '
              '{ printf("probe %d %s %d %s %d\\n", ppid, pcomm, leader_tid, leader_comm, tid); }')
    code = ("import os, threading, sys\n"
            "parent = open(f'/proc/{os.getppid()}/comm').read().strip()\n"
            "print('child', os.getppid(), os.getpid(), parent, flush=True)\n"
            "t = threading.Thread(target=os.getppid, name='worker'); t.start(); t.join()\n")
    r = pytrace(script, py(code))
    assert r.returncode == 0, r.stderr
    child = next(ln.split() for ln in r.stdout.splitlines() if ln.startswith("child "))
    parent_pid, own_pid, parent_comm = int(child[1]), int(child[2]), child[3]
    probes = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("probe ")]
    assert len(probes) == 3, r.stdout  # two getppid() calls in the main thread, one in the worker
    for _, ppid, pcomm, leader_tid, leader_comm, tid in probes:
        assert (int(ppid), pcomm, int(leader_tid), leader_comm) == (parent_pid, parent_comm, own_pid,
                                                                    Path(sys.executable).name[:15])
    assert sorted(int(p[5]) == own_pid for p in probes) == [False, True, True]  # the worker is not the leader


def test_assert_stops_with_exit_code_1() -> None:
    r = pytrace('import "base"; BEGIN { assert(1 + 1 == 2, "arithmetic works"); '
                'assert(2 < 1, "two is not below one"); printf("not reached\\n"); }')
    assert r.returncode == 1
    assert r.stdout.strip("\n") == "assertion failed: two is not below one"


def test_errno_name_on_failing_opens(tmp_path: Path) -> None:
    script = ('import "errno"; tracepoint:syscalls:sys_exit_openat /pid == cpid && args.ret < 0/ '
              '{ printf("%d %s\\n", -args.ret, errno_name(-args.ret)); }')
    code = ("import os\n"
            f"for path, flags in (('{tmp_path}/missing', os.O_RDONLY), ('{tmp_path}', os.O_WRONLY), "
            "('/etc/hostname/x', os.O_RDONLY)):\n"
            "    try: os.open(path, flags)\n"
            "    except OSError: pass\n")
    r = pytrace(script, py(code))
    assert r.returncode == 0, r.stderr
    # Python's start-up has failing opens of its own first: the workload's are the last three.
    got = [ln for ln in r.stdout.splitlines() if ln][-3:]
    assert got == [f"{errno.ENOENT} ENOENT", f"{errno.EISDIR} EISDIR", f"{errno.ENOTDIR} ENOTDIR"]


def test_errno_and_signal_names_for_every_number() -> None:
    """Every number up to past the tables' ends, cast in one program and
    printed with %s: the names are Linux's, a number without one prints as
    itself, and the enumerators are constants too."""
    script = ('import "errno"; import "signal"; BEGIN { $i = 0; while ($i <= 140) { '
              'printf("e%d %s\\n", $i, errno_name($i)); $i++; } $i = 0; while ($i <= 70) { '
              'printf("s%d %s\\n", $i, signal_name($i)); $i++; } '
              'printf("c %d %d\\n", ENOENT, SIGKILL); exit(); }')
    r = pytrace(script, timeout=120)
    assert r.returncode == 0, r.stderr
    got = dict(ln.split(" ", 1) for ln in r.stdout.splitlines() if ln)
    for n in range(141):
        expected = errno.errorcode.get(n, str(n))
        assert got[f"e{n}"] == gen_stdlib.ERRNO_ALIASES.get(expected, expected), n
    signals = dict(gen_stdlib.signal_entries())
    for n in range(71):
        assert got[f"s{n}"] == signals.get(n, str(n)), n
    assert signals[15] == "SIGTERM" and signals[34] == "SIGRT_2" and got["s64"] == "SIGRTMAX"
    for n in range(1, 32):
        assert got[f"s{n}"] == sysinfo.signal_name(n)
    assert got["c"] == f"{errno.ENOENT} {signal.SIGKILL.value}"


def test_signal_name_on_a_signal_the_test_sends() -> None:
    script = ('import "signal"; tracepoint:signal:signal_generate /args.pid == cpid/ '
              '{ printf("%s\\n", signal_name(args.sig)); }')
    code = ("import os, signal\n"
            "signal.signal(signal.SIGUSR1, lambda *a: None)\n"
            "signal.signal(signal.SIGUSR2, lambda *a: None)\n"
            "os.kill(os.getpid(), signal.SIGUSR1); os.kill(os.getpid(), signal.SIGUSR2)\n")
    r = pytrace(script, py(code))
    assert r.returncode == 0, r.stderr
    assert [ln for ln in r.stdout.splitlines() if ln.startswith("SIGUSR")] == ["SIGUSR1", "SIGUSR2"]


def test_syscall_name_counts_a_workload() -> None:
    script = 'import "syscalls"; tracepoint:raw_syscalls:sys_enter /pid == cpid/ { @[syscall_name(args.id)] = count(); }'
    r = pytrace(script, py("import os\nfor _ in range(7): os.getppid()\nfor _ in range(3): os.umask(0o22)\n"))
    assert r.returncode == 0, r.stderr
    assert "@[getppid]: 7\n" in r.stdout and "@[umask]: 3\n" in r.stdout
    assert not re.search(r"^@\[\d+\]", r.stdout, re.M)  # every syscall it made has a name


def test_syscall_table_is_this_kernels() -> None:
    """stdlib/syscalls.pt is what the generator makes from this kernel's
    tracepoints (regenerate it with scripts/gen_stdlib.py when it is not)."""
    from pytrace.kernel.tracefs import tracefs_root as ensure_tracefs
    assert (STDLIB / "syscalls.pt").read_text() == gen_stdlib.syscall_snippet(ensure_tracefs())


def test_open_flags_and_file_modes() -> None:
    # A short path: str() keeps 63 bytes, and pytest's tmp_path can be longer.
    short = Path(tempfile.mkdtemp(prefix="ptf", dir="/tmp"))
    target = short / "f"
    script = ('import "file"; '
              'tracepoint:syscalls:sys_enter_openat /pid == cpid && str(args.filename) == "' + str(target) + '"/ '
              '{ print_open_flags(args.flags); printf(" %s\\n", open_accmode(args.flags)); } '
              'tracepoint:syscalls:sys_enter_chmod,tracepoint:syscalls:sys_enter_fchmodat /pid == cpid/ '
              '{ printf("mode "); print_file_mode(args.mode); printf("\\n"); } '
              'tracepoint:syscalls:sys_enter_mknodat /pid == cpid/ { printf("type %s\\n", file_type(args.mode)); }')
    code = ("import os\n"
            f"p = '{target}'\n"
            "os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC))\n"
            "os.close(os.open(p, os.O_RDWR | os.O_APPEND | os.O_NONBLOCK | os.O_SYNC))\n"
            "os.close(os.open(p, os.O_RDONLY | os.O_NOFOLLOW))\n"
            "os.chmod(p, 0o4754); os.chmod(p, 0o1640); os.chmod(p, 0o2711)\n"
            "os.mkfifo(p + '.fifo')\n")
    try:
        r = pytrace(script, py(code))
    finally:
        shutil.rmtree(short)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln]
    # Python opens every file with O_CLOEXEC (PEP 446).
    assert lines == [
        "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC O_WRONLY",
        "O_RDWR|O_APPEND|O_NONBLOCK|O_SYNC|O_CLOEXEC O_RDWR",
        "O_RDONLY|O_NOFOLLOW|O_CLOEXEC O_RDONLY",
        "mode rwsr-xr--", "mode rw-r----T", "mode rwx--s--x",
        "type fifo",
    ], r.stdout
    for line in lines[:3]:
        flags = line.split()[0]
        assert sysinfo.open_flags(_flag_value(flags)) == flags


def _flag_value(names: str) -> int:
    table = dict((name, bits) for bits, name in sysinfo.OPEN_FLAGS)
    table.update({"O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2})
    return sum(table[n] for n in names.split("|"))


def test_socket_addresses() -> None:
    script = ('import "net"; tracepoint:syscalls:sys_enter_connect /pid == cpid/ '
              '{ printf("%d %s %d\\n", sockaddr_family(args.uservaddr), sockaddr_ntop(args.uservaddr), '
              'sockaddr_port(args.uservaddr)); }')
    code = ("import socket\n"
            "for fam, addr in ((socket.AF_INET, ('127.0.0.1', 40123)), (socket.AF_INET6, ('::1', 40124))):\n"
            "    s = socket.socket(fam); s.connect_ex(addr); s.close()\n")
    r = pytrace(script, py(code))
    assert r.returncode == 0, r.stderr
    assert [ln for ln in r.stdout.splitlines() if ln] == ["2 127.0.0.1 40123", "10 ::1 40124"]


def test_imports_from_pytrace_path_and_files(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "mine.pt").write_text('import "errno";\nmacro failure(ret) { errno_name(ret < 0 ? -ret : 0) }\n')
    script = tmp_path / "s.pt"
    script.write_text('import "mine";\nBEGIN { printf("%s %s\\n", failure(-2), failure(-13)); exit(); }\n')
    r = subprocess.run([sys.executable, "-m", "pytrace", "-q", str(script)], capture_output=True, text=True,
                       env=dict(os.environ, PYTRACE_PATH=str(lib)), cwd=ROOT, timeout=60)
    assert (r.returncode, r.stdout.strip()) == (0, "ENOENT EACCES"), r.stderr
    (lib / "mine.pt").chmod(0o666)
    r = subprocess.run([sys.executable, "-m", "pytrace", "-q", str(script)], capture_output=True, text=True,
                       env=dict(os.environ, PYTRACE_PATH=str(lib)), cwd=ROOT, timeout=60)
    assert r.returncode == 1 and "is writable by every user" in r.stderr and "Traceback" not in r.stderr


def test_docs_are_generated_from_the_snippets() -> None:
    assert (ROOT / "docs" / "stdlib.md").read_text() == markdown(snippets(STDLIB))
    assert (STDLIB / "errno.pt").read_text() == gen_stdlib.errno_snippet()
    assert (STDLIB / "signal.pt").read_text() == gen_stdlib.signal_snippet()


@pytest.mark.parametrize("snippet", [s.name for s in snippets(STDLIB)])
def test_every_macro_is_documented_and_its_examples_compile(snippet: str) -> None:
    doc = next(s for s in snippets(STDLIB) if s.name == snippet)
    defined = re.findall(r"^macro\s+(\w+)", (STDLIB / f"{snippet}.pt").read_text(), re.M)
    assert [m.name for m in doc.macros] == defined
    for m in doc.macros:
        assert m.summary and m.examples, f"{m.name} needs a summary and an example"
        for example in m.examples:
            r = pytrace(f'import "{snippet}";\n{example}', None, "--dry-run")
            assert r.returncode == 0, f"{m.name}: {example}\n{r.stderr}"
