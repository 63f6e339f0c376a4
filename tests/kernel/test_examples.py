"""Every ``examples/*.pt`` runs under pytrace against a workload that
triggers it and prints what its header comment promises.

Where the workload makes the output deterministic (lines about the test's
own process or a child it starts) the expected line is checked exactly;
otherwise the structure is (a histogram header and its buckets, map lines
of the promised shape).  Each example is stopped like a user would: Ctrl-C
(SIGINT) shortly after it attached, or by the script's own exit().
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kernel.test_teardown import REPO, Run, assert_all_gone, run_pytrace

pytestmark = pytest.mark.kernel

EXAMPLES = REPO / "examples"
HIST_LINE = re.compile(r"^[\[(].*[\])]\s+\d+ \|[@ ]{52}\|$")
TIME = r"\d\d:\d\d:\d\d"


def _comm() -> str:
    with open("/proc/self/comm") as fh:
        return fh.read().strip()


def _header_attaching(name: str) -> int:
    text = (EXAMPLES / name).read_text()
    m = re.search(r"Attaching (\d+) probes?\.\.\.", text)
    assert m, f"{name}: the header promises no 'Attaching' line"
    return int(m.group(1))


def _example(name: str, *, args: tuple[str, ...] = (), **kw) -> Run:  # type: ignore[no-untyped-def]
    r = run_pytrace([str(EXAMPLES / name), *args], **kw)
    assert r.ready_after is not None, f"{name} did not start:\n{r.stdout}\n{r.stderr}"
    assert r.rc == 0, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    n = _header_attaching(name)
    first = r.stdout.split("\n", 1)[0]
    assert first == (f"Attaching {n} probe..." if n == 1 else f"Attaching {n} probes..."), first
    assert_all_gone(r.seen, r.pid)
    return r


def _map_lines(text: str, name: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(rf"^@{name}\[(.*)\]: (\d+)$", text, re.MULTILINE)}


def _hist(text: str, name: str) -> list[str]:
    """The bucket lines of histogram ``@name`` (asserting its header is there)."""
    lines = text.split("\n")
    at = next((i for i, ln in enumerate(lines) if re.fullmatch(rf"@{name}: ?", ln)), None)
    assert at is not None, f"no @{name} histogram in:\n{text}"
    buckets = []
    for ln in lines[at + 1:]:
        if not HIST_LINE.match(ln):
            break
        buckets.append(ln)
    assert buckets, f"@{name} has no buckets:\n{text}"
    return buckets


def test_every_example_has_a_test() -> None:
    tested = {n[len("test_"):] + ".pt" for n in globals() if n.startswith("test_")}
    missing = sorted(p.name for p in EXAMPLES.glob("*.pt") if p.name not in tested)
    assert not missing, f"examples without a test here: {missing}"


# ---------------------------------------------------------------- the examples

def test_hello() -> None:
    r = _example("hello.pt", stop=None)
    assert r.stdout == "Attaching 1 probe...\nHello, world!\n\n\n"


def test_hello_as_an_executable_with_its_shebang(tmp_path: Path) -> None:
    if shutil.which("pytrace") is None:
        pytest.skip("the pytrace command is not on PATH")
    script = tmp_path / "hello.pt"
    shutil.copy(EXAMPLES / "hello.pt", script)
    script.chmod(0o755)
    r = subprocess.run([str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Attaching 1 probe...\nHello, world!\n\n\n"


def test_bashreadline() -> None:
    command = "echo pytrace-readline-test"

    def interactive_bash() -> None:
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child
            os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"],
                      {"PATH": "/usr/bin:/bin", "TERM": "dumb", "HOME": "/tmp"})
        try:
            time.sleep(0.3)
            os.write(fd, f"{command}\n".encode())
            time.sleep(0.2)
            os.write(fd, b"exit\n")
            end = time.monotonic() + 5
            while time.monotonic() < end:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    try:
                        if not os.read(fd, 4096):
                            break
                    except OSError:
                        break
        finally:
            os.waitpid(pid, 0)
            os.close(fd)
        interactive_bash.pid = pid  # type: ignore[attr-defined]

    r = _example("bashreadline.pt", workload=interactive_bash)
    lines = r.stdout.split("\n")
    assert lines[1:3] == ["Tracing bash commands... Hit Ctrl-C to end.", "TIME     PID    COMMAND"]
    pid = interactive_bash.pid  # type: ignore[attr-defined]
    assert re.search(rf"^{TIME} {pid:<6} {command}$", r.stdout, re.MULTILINE), r.stdout
    assert re.search(rf"^{TIME} {pid:<6} exit$", r.stdout, re.MULTILINE), r.stdout


def test_config_block(tmp_path: Path) -> None:
    # A 100-character path: cut at 63 by default, whole with max_strlen = 128.
    long_dir = tmp_path / ("d" * max(1, 100 - len(str(tmp_path)) - len("/f")))
    long_dir.mkdir()
    path = long_dir / "f"
    path.write_text("x")
    assert 64 < len(str(path)) < 128

    def workload() -> None:
        for _ in range(3):
            path.read_text()
        # Some kernel work for the profile probe's stacks.
        subprocess.run(["/bin/sh", "-c", "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done"], check=True)

    r = _example("config_block.pt", workload=workload, after_ready=0.5)
    assert f"\n{path}\n" in r.stdout
    assert re.search(r"^\]: \d+$", r.stdout, re.MULTILINE), "no stacks were counted"
    # stack_mode = perf: bpftrace 0.17's perf format for kernel frames is
    # "<tab><hex address> <symbol>+<offset>" (checked against 0.17 in test_diff_probes).
    assert re.search(r"^\t[0-9a-f]{16} \S+\+\d+$", r.stdout, re.MULTILINE), r.stdout[-2000:]


def test_execsnoop() -> None:
    comm = _comm()
    started: list[int] = []

    def workload() -> None:
        p = subprocess.Popen(["/bin/echo", "pytrace-example-arg"], stdout=subprocess.DEVNULL)
        started.append(p.pid)
        p.wait()

    r = _example("execsnoop.pt", workload=workload)
    assert r.stdout.split("\n")[1] == "TIME     PID    COMM             ARGS"
    # When the exec starts, comm is still the parent's name.
    assert re.search(rf"^{TIME} {started[0]:<6} {re.escape(comm[:15]):<16} /bin/echo pytrace-example-arg$",
                     r.stdout, re.MULTILINE), r.stdout[-2000:]


def test_killsnoop() -> None:
    me, comm = os.getpid(), _comm()
    target = subprocess.Popen(["sleep", "5"])

    def workload() -> None:
        os.kill(target.pid, 0)
        os.kill(target.pid, 15)

    try:
        r = _example("killsnoop.pt", workload=workload)
    finally:
        target.kill()
        target.wait()
    assert r.stdout.split("\n")[1] == "PID    COMM             SIG  TARGET"
    assert f"\n{me:<6} {comm:<16} {0:<4} {target.pid}\n" in r.stdout
    assert f"\n{me:<6} {comm:<16} {15:<4} {target.pid}\n" in r.stdout


def test_newprocs_per_sec() -> None:
    def workload() -> None:
        for _ in range(5):
            subprocess.run(["/bin/true"], check=True)

    r = _example("newprocs_per_sec.pt", workload=workload, after_ready=2.3)
    lines = r.stdout.split("\n")
    assert lines[1] == "Counting new processes... Hit Ctrl-C to end."
    per_second = [int(m.group(1)) for m in re.finditer(rf"^{TIME} new processes: (\d+)$", r.stdout, re.MULTILINE)]
    assert len(per_second) >= 2, r.stdout
    assert sum(per_second) >= 5
    assert "@forks" not in r.stdout  # cleared in END


def test_oncpu_kstacks() -> None:
    def workload() -> None:
        subprocess.run(["/bin/sh", "-c", "i=0; while [ $i -lt 5000 ]; do i=$((i+1)); done"], check=True)

    r = _example("oncpu_kstacks.pt", workload=workload)
    blocks = re.findall(r"^@\[\n((?:    \S+\n)*)\]: (\d+)$", r.stdout, re.MULTILINE)
    assert blocks, r.stdout
    assert any(frames for frames, _ in blocks), "no kernel frames at all"
    assert all(re.fullmatch(r"(    [\w.]+\+\d+\n)*", frames) for frames, _ in blocks), r.stdout


def test_opensnoop(tmp_path: Path) -> None:
    me, comm = os.getpid(), _comm()
    path = tmp_path / "opensnoop-target"
    path.write_text("x")

    def workload() -> None:
        path.read_text()

    r = _example("opensnoop.pt", workload=workload)
    assert r.stdout.split("\n")[1] == "PID    COMM             FILE"
    assert f"\n{me:<6} {comm:<16} {path}\n" in r.stdout


def test_pagefaults() -> None:
    started: list[int] = []

    def workload() -> None:
        p = subprocess.Popen(["/bin/true"])
        started.append(p.pid)
        p.wait()

    r = _example("pagefaults.pt", workload=workload)
    faults = _map_lines(r.stdout, "faults")
    assert faults.get(f"true, {started[0]}", 0) > 0, r.stdout[-2000:]


def test_percpu() -> None:
    r = _example("percpu.pt", after_ready=5.4)
    ncpus = os.cpu_count() or 1
    # The interval prints the map and a blank line, then clears it.
    m = re.search(r"^((?:@syscalls\[\d+\]: \d+\n)+)\n", r.stdout, re.MULTILINE)
    assert m, r.stdout
    cpus = [int(c) for c in re.findall(r"\[(\d+)\]", m.group(1))]
    assert cpus and all(0 <= c < ncpus for c in cpus)


def test_predicate_if(tmp_path: Path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    small.write_text("x" * 10)
    large.write_bytes(b"y" * 4096)

    def workload() -> None:
        for f in (small, large):
            subprocess.run(["cat", str(f)], stdout=subprocess.DEVNULL, check=True)

    r = _example("predicate_if.pt", workload=workload)
    by_kind = _map_lines(r.stdout, "by_kind")
    eof, sml, lrg = (_map_lines(r.stdout, n) for n in ("eof", "small", "large"))
    assert eof.get("cat", 0) >= 2 and sml.get("cat", 0) >= 1 and lrg.get("cat", 0) >= 1, r.stdout
    # Every successful read is counted once by kind and once by size.
    assert by_kind.get("0", 0) == sum(eof.values()) + sum(sml.values())
    assert by_kind.get("1", 0) == sum(lrg.values())


def test_printf_format() -> None:
    me, comm = os.getpid(), _comm()
    fds: list[int] = []

    def workload() -> None:
        fds.append(os.open("/etc/hostname", os.O_RDONLY))
        try:
            os.open("/nonexistent/pytrace-example", os.O_RDONLY)
        except FileNotFoundError:
            pass

    try:
        r = _example("printf_format.pt", workload=workload)
    finally:
        for fd in fds:
            os.close(fd)
    assert r.stdout.split("\n")[1] == "COMM               PID  FD   FD(hex)"
    fd = fds[0]
    assert f"\n{comm:<16} {me:>5} {fd:>3} 0x{fd:06x}\n" in r.stdout
    assert f"\n{comm:<16} {me:>5}  -2 0xfffffffe\n" in r.stdout
    assert "\nSummary: 100% of the opens seen, in 2 maps\n" in r.stdout
    assert _map_lines(r.stdout, "opens").get(f"{comm}, {me}", 0) >= 2
    # The test process keeps opening files (/proc, while it watches pytrace): any last result.
    assert re.search(rf"^@last\[{me}\]: \({re.escape(comm)}, -?\d+\)$", r.stdout, re.MULTILINE), r.stdout[-3000:]


def _reads() -> None:
    for _ in range(20):
        subprocess.run(["cat", "/etc/hostname", "/etc/os-release"], stdout=subprocess.DEVNULL, check=True)


def test_read_latency() -> None:
    r = _example("read_latency.pt", workload=_reads)
    _hist(r.stdout, "usecs")
    assert "@start" not in r.stdout  # cleared in END


def test_read_size_hist() -> None:
    r = _example("read_size_hist.pt", workload=_reads)
    buckets = _hist(r.stdout, "bytes")
    assert all(not b.startswith("[0]") for b in buckets)  # only ret > 0


def test_read_stats() -> None:
    r = _example("read_stats.pt", workload=_reads)
    one = {name: int(v) for name, v in re.findall(r"^@(avg|max|min|total): (\d+)$", r.stdout, re.MULTILINE)}
    m = re.search(r"^@stats: count (\d+), average (\d+), total (\d+)$", r.stdout, re.MULTILINE)
    assert m and len(one) == 4, r.stdout
    count, average, total = map(int, m.groups())
    # All five maps are updated by the same probe: they agree.
    assert total == one["total"] and average == one["avg"] == total // count
    assert 1 <= one["min"] <= average <= one["max"]


def test_sched_switch() -> None:
    r = _example("sched_switch.pt", workload=_reads)
    switches = _map_lines(r.stdout, "switches")
    assert switches and all(", " in k for k in switches), r.stdout


def test_syscount_by_id() -> None:
    r = _example("syscount_by_id.pt", workload=_reads)
    ids = {int(k): int(v) for k, v in re.findall(r"^@\[(\d+)\]: (\d+)$", r.stdout, re.MULTILINE)}
    assert ids.get(0, 0) > 0 and ids.get(1, 0) > 0, r.stdout  # read and write


def test_syscount_by_process() -> None:
    r = _example("syscount_by_process.pt", workload=_reads)
    head, _, tail = r.stdout.partition("\nTop 10 processes by system calls:\n")
    assert tail, r.stdout
    lines = tail.rstrip("\n").split("\n")
    assert 1 <= len(lines) <= 10 and all(re.fullmatch(r"@syscalls\[.*\]: \d+", ln) for ln in lines), tail
    counts = [int(ln.rsplit(" ", 1)[1]) for ln in lines]
    assert counts == sorted(counts)
    assert "@syscalls" not in head  # cleared in END: not printed again at exit


def test_ustack_pid() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.2)
        with open(f"/proc/{busy.pid}/comm") as fh:
            comm = fh.read().strip()
        r = _example("ustack_pid.pt", args=(str(busy.pid),), after_ready=1.0)
    finally:
        busy.kill()
        busy.wait()
    keys = re.findall(r"^@\[\n((?:    .*\n)*), (\S+)\]: (\d+)$", r.stdout, re.MULTILINE)
    assert keys, r.stdout
    assert {c for _, c, _ in keys} == {comm}  # only the process given as $1


def test_write_lhist() -> None:
    def workload() -> None:
        subprocess.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=100", "count=50", "status=none"], check=True)

    r = _example("write_lhist.pt", workload=workload)
    buckets = _hist(r.stdout, "bytes")
    m = [b for b in buckets if b.startswith("[64, 128)")]
    assert m and int(m[0].split()[2]) >= 50, buckets
