"""iter probes (BPF iterators) against facts the test controls.

bpftrace 0.17 refuses iter probes on this machine (its feature check reads
available_filter_functions first, which is EPERM here), so there is no
oracle to compare with: a child process started here, with a unique name,
three named threads, a file open at a known fd and a file mapped at a known
address, is what iter:task, iter:task_file and iter:task_vma must report,
exactly once each, next to what /proc says of it.  The tasks of pid 1 are
hidden from the task iterator on this kernel (the sandbox's supervisor),
so nothing here counts on seeing every task of /proc.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

from .test_teardown import Run, _bpftool, assert_all_gone, run_pytrace

pytestmark = pytest.mark.kernel

PID = os.getpid()
TAG = f"pti{PID % 100000}"  # comm prefix of the child: at most 15 characters with its suffixes
PAGES = 3

CHILD = r"""
import ctypes, mmap, os, sys, threading, time
libc = ctypes.CDLL(None)
def name(n): libc.prctl(15, n.encode(), 0, 0, 0)   # PR_SET_NAME: this thread's comm
tag, path, pages = sys.argv[1], sys.argv[2], int(sys.argv[3])
name(tag + "m")
tids, go = [], threading.Event()
def run(i):
    name(f"{tag}t{i}")
    tids.append(threading.get_native_id())
    go.wait()
threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(3)]
for t in threads: t.start()
while len(tids) < 3: time.sleep(0.005)
fd = os.open(path, os.O_RDWR)
os.ftruncate(fd, pages * mmap.PAGESIZE)
m = mmap.mmap(fd, pages * mmap.PAGESIZE)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
print(os.getpid(), fd, addr, *sorted(tids), flush=True)
sys.stdin.readline()
"""


class Child:
    """The sleeping child: pid, the fd of its open file, the address of its
    mapping of that file, the tids of its three threads."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, f"{TAG}-file")
        with open(self.path, "wb"):
            pass
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, TAG, self.path, str(PAGES)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        pid, fd, addr, *tids = map(int, self.proc.stdout.readline().split())
        self.pid, self.fd, self.addr, self.tids = pid, fd, addr, tids

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def child() -> Iterator[Child]:
    d = tempfile.mkdtemp(prefix="pytrace-iter-")
    c = Child(d)
    try:
        yield c
    finally:
        c.close()
        shutil.rmtree(d, ignore_errors=True)


def run(script: str, *params: object, args: tuple[str, ...] = (), rc: int = 0) -> Run:
    """pytrace on an iterator script, which ends by itself; nothing it
    loaded may be left afterwards."""
    r = run_pytrace([*args, "-e", script, *map(str, params)], stop=None, timeout=30)
    assert r.rc == rc, f"exit {r.rc}:\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr
    assert_all_gone(r.seen, r.pid)
    return r


def lines(r: Run) -> list[str]:
    """The iterator's output: stdout without the 'Attaching' line and the
    blank lines of the (empty) map printing at exit."""
    return [ln for ln in r.stdout.split("\n") if ln and not ln.startswith("Attaching ")]


# ------------------------------------------------------------------ what the iterators see

def test_task_lists_this_process_and_each_thread_of_the_child_once(child: Child) -> None:
    r = run('iter:task { printf("%d %d %s\\n", ctx->task->tgid, ctx->task->pid, ctx->task->comm); }')
    assert r.stdout.startswith("Attaching 1 probe...\n")
    out = lines(r)
    mine = [ln for ln in out if ln.split()[0] == str(child.pid)]
    expected = [f"{child.pid} {child.pid} {TAG}m"] + [f"{child.pid} {tid} {TAG}t{i}"
                                                      for i, tid in enumerate(child.tids)]
    assert sorted(mine) == sorted(expected)
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    assert out.count(f"{PID} {PID} {comm}") == 1
    # The iterator's final call (task NULL) printed nothing.
    assert not [ln for ln in out if ln.startswith("0 ")]


def test_task_maps_count_once_per_task_and_the_final_call_is_skipped(child: Child) -> None:
    r = run('iter:task { @all = count(); printf("x\\n"); '
            'if (ctx->task->tgid == $1) { @threads = count(); @names[ctx->task->comm] = count(); } }', child.pid)
    xs = lines(r).count("x")
    assert re.search(rf"^@all: {xs}$", r.stdout, re.M), r.stdout
    assert "@threads: 4\n" in r.stdout
    for name in [f"{TAG}m"] + [f"{TAG}t{i}" for i in range(3)]:
        assert f"@names[{name}]: 1\n" in r.stdout


def test_task_file_shows_the_childs_open_file_at_its_fd(child: Child) -> None:
    r = run('iter:task_file /ctx->task->tgid == $1/ { @n = count(); '
            'printf("%d %s %s\\n", ctx->fd, str(ctx->file->f_path.dentry->d_name.name), '
            'path(&ctx->file->f_path)); }', child.pid)
    out = [ln for ln in lines(r) if not ln.startswith("@n")]
    assert out.count(f"{child.fd} {os.path.basename(child.path)} {os.path.realpath(child.path)}") == 1
    # Every open fd of the (idle) child, each once: threads share the table.
    fds = sorted(int(fd) for fd in os.listdir(f"/proc/{child.pid}/fd"))
    assert sorted(int(ln.split()[0]) for ln in out) == fds
    assert f"@n: {len(fds)}\n" in r.stdout


def test_task_vma_shows_each_mapping_of_the_child_once(child: Child) -> None:
    r = run('iter:task_vma /ctx->task->tgid == $1/ { '
            'printf("%lx-%lx %s\\n", ctx->vma->vm_start, ctx->vma->vm_end, '
            'str(ctx->vma->vm_file->f_path.dentry->d_name.name)); }', child.pid)
    out = lines(r)
    end = child.addr + PAGES * os.sysconf("SC_PAGE_SIZE")
    assert out.count(f"{child.addr:x}-{end:x} {os.path.basename(child.path)}") == 1
    with open(f"/proc/{child.pid}/maps") as f:
        ranges = [ln.split()[0] for ln in f if "[vsyscall]" not in ln]  # the gate page is no VMA of the mm
    assert sorted(ln.split()[0] for ln in out) == sorted(ranges)


def test_printf_of_an_iterator_in_json() -> None:
    r = run('iter:task /ctx->task->pid == $1/ { printf("%d %s|\\n", ctx->task->pid, ctx->task->comm); }', PID,
            args=("-f", "json"))
    records = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    assert records == [{"type": "attached_probes", "data": {"probes": 1}},
                       {"type": "printf", "data": f"{PID} {comm}|\n"}]


# ------------------------------------------------------------------ when iterators run

def test_iterator_runs_after_begin_and_before_end() -> None:
    r = run('BEGIN { printf("begin\\n"); } iter:task /ctx->task->pid == $1/ { printf("task %d\\n", '
            'ctx->task->pid); @it = count(); } END { printf("end @it=%d\\n", @it); }', PID)
    assert r.stdout.startswith(f"Attaching 3 probes...\nbegin\ntask {PID}\nend @it=1\n"), r.stdout


def test_exit_in_an_iterator_stops_it() -> None:
    r = run('iter:task { @n = count(); if (@n == 5) { exit(); } } END { printf("end\\n"); }')
    assert "end\n" in r.stdout and "@n: 5\n" in r.stdout


def test_exit_in_begin_skips_the_iterator() -> None:
    r = run('BEGIN { exit(); } iter:task { printf("x\\n"); }')
    assert "x" not in lines(r)


def test_iterator_next_to_other_probes_runs_once_then_tracing_goes_on() -> None:
    r = run('iter:task /ctx->task->pid == $1/ { printf("iter\\n"); } '
            'interval:ms:50 { @ticks = count(); if (@ticks == 10) { printf("tick\\n"); exit(); } }', PID)
    assert lines(r)[:3] == ["iter", "tick", "@ticks: 10"]


# ------------------------------------------------------------------ errors and teardown

def test_unknown_iterator_is_a_diagnostic_with_the_closest_name() -> None:
    r = run("iter:task_fil { }", rc=1)
    assert r.stderr == ("stdin:1:6: error: iterator not found: task_fil\niter:task_fil { }\n"
                        "     ^~~~~~~~\nhint: did you mean 'task_file'?\n")


def test_wildcards_and_two_iterators_in_one_probe_are_refused() -> None:
    r = run("iter:task* { }", rc=1)
    assert r.stderr.splitlines()[0] == "stdin:1:6: error: iter probes do not support wildcards"
    r = run("iter:task, iter:task_file { @ = count(); }", rc=1)
    assert r.stderr.splitlines()[0] == "stdin:1:12: error: an iter probe has one attach point"


def test_verifier_rejection_is_reported_at_the_statement() -> None:
    r = run("iter:task { $i = 0; while ($i < 100000000) { $i++; @x[$i] = 1; } }", rc=1)
    assert r.stderr.startswith("stdin:1:"), r.stderr
    assert "the kernel's verifier rejected" in r.stderr.splitlines()[0]


def test_iterator_the_kernel_will_not_run_is_one_sentence() -> None:
    """The map-element iterators: this kernel refuses their programs at
    load (EPERM); others would refuse the link without a map to walk."""
    r = run("iter:bpf_map_elem { @ = count(); }", rc=1)
    assert len(r.stderr.splitlines()) <= 2, r.stderr
    assert re.match(r"pytrace: cannot (load|attach) iter:bpf_map_elem: ", r.stderr), r.stderr


def test_ctrl_c_during_an_iteration_stops_it_and_tears_everything_down() -> None:
    # 50 records per kernel symbol: millions of lines, far longer than the 0.2 s given.
    r = run_pytrace(["-e", 'iter:ksym { unroll(50) { printf("%lx\\n", ctx->ksym->value); } @n = count(); } '
                           'END { printf("end\\n"); }'], stop=signal.SIGINT, after_ready=0.2, timeout=60)
    assert r.rc == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert r.seen.links and r.seen.progs
    n = int(re.search(r"^@n: (\d+)$", r.stdout, re.M).group(1))  # type: ignore[union-attr]
    with open("/proc/kallsyms") as f:
        total = sum(1 for _ in f)
    assert 0 < n < total // 2, "the iteration was not interrupted"
    assert "end\n" in r.stdout
    assert_all_gone(r.seen, r.pid)


# ------------------------------------------------------------------ pinned iterators

@pytest.fixture
def bpffs() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="pytrace-bpffs-")
    if subprocess.run(["mount", "-t", "bpf", "bpf", d]).returncode != 0:
        os.rmdir(d)
        pytest.skip("cannot mount a bpf file system")
    try:
        yield d
    finally:
        for name in os.listdir(d):
            if not name.endswith(".debug"):
                os.unlink(os.path.join(d, name))
        subprocess.run(["umount", d], check=True)
        os.rmdir(d)


def test_pinned_iterator_prints_through_the_kernel_what_pytrace_prints(child: Child, bpffs: str) -> None:
    body = ('/ctx->task->tgid == $1/ { printf("[%-16s|%5d|%05d|%x|%X|%c|%lu|%hhd|%hu|%d%%|%lld]\\n", '
            'ctx->task->comm, ctx->task->pid, ctx->task->pid, ctx->task->pid, 255, 65, '
            'ctx->task->tgid, 300, 70000, 7, -5); }')
    read = run(f"iter:task {body}", child.pid)
    pin = os.path.join(bpffs, "tasks")
    r = run_pytrace(["-e", f"iter:task:{pin} {body}", str(child.pid)], stop=None, timeout=30)
    assert r.rc == 0, r.stderr
    assert r.stdout.startswith(f"Attaching 1 probe...\nProgram pinned to {pin}\n"), r.stdout
    # pytrace is gone; its program lives on in the pinned iterator link.
    links = [lk for lk in _bpftool("link", "show") if lk.get("prog_id") in r.seen.progs]
    assert [lk.get("type") for lk in links] == ["iter"], links
    with open(pin) as f:
        text = f.read()
    assert sorted(text.splitlines()) == sorted(lines(read))
    assert len(text.splitlines()) == 4
    os.unlink(pin)
    r.seen.links |= {lk["id"] for lk in links}
    assert_all_gone(r.seen, r.pid)


def test_pinned_iterator_refuses_what_only_pytrace_can_print(bpffs: str) -> None:
    pin = os.path.join(bpffs, "x")
    r = run(f'iter:task:{pin} {{ printf("%o\\n", 1); }}', rc=1)
    assert "'%o' cannot be printed by a pinned iterator" in r.stderr.splitlines()[0]
    r = run(f"iter:task:{pin} {{ @[1] = count(); print(@); }}", rc=1)
    assert "print() cannot run in a pinned iterator" in r.stderr.splitlines()[0]
    assert not os.path.exists(pin)


def test_pin_outside_a_bpf_file_system_is_one_sentence() -> None:
    d = tempfile.mkdtemp(prefix="pytrace-notbpffs-")
    try:
        r = run(f"iter:task:{d}/x {{ @ = count(); }}", rc=1)
        assert r.stderr.startswith(f"pytrace: cannot pin iter:task:{d}/x: {d} is not in a BPF file system "
                                   f"(mount -t bpf bpf {d}) (BPF_OBJ_PIN: "), r.stderr
    finally:
        os.rmdir(d)
