"""Builtins and functions of the code generator, pytrace alone, exact numbers.

For what bpftrace 0.17 lacks (strcontains, pton, rawtracepoint, jiffies...)
or where comparing with it is awkward (cgroups, signals, stacks of a
sampled program, per-CPU aggregation), each test drives a workload it
controls and checks exact values.
"""

from __future__ import annotations

import mmap
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from .difflib_pt import Devnull, build_cprog, getpid_n, open_n, pytrace_only, run_both, syscall

pytestmark = pytest.mark.kernel

PID = os.getpid()


@pytest.fixture(scope="module")
def cprog(tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    return build_cprog(tmp_path_factory.mktemp("codegen"))


class Waiter:
    """A Python child that blocks until told to go, then runs ``code`` (so
    its pid can be passed to the tracer before it does anything)."""

    def __init__(self, code: str, **kw: object) -> None:
        prog = "import os, sys, time, signal\nsys.stdin.readline()\n" + code
        self.proc = subprocess.Popen([sys.executable, "-c", prog], stdin=subprocess.PIPE, **kw)  # type: ignore[call-overload]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def go(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        return self.proc.wait(timeout=20)

    def __enter__(self) -> "Waiter":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def jiffies_now() -> int:
    with open("/proc/timer_list") as f:
        for line in f:
            if line.startswith("jiffies:"):
                return int(line.split()[1])
    raise AssertionError("no jiffies in /proc/timer_list")


# ------------------------------------------------------------------ task and time builtins

def test_jiffies_nsecs_elapsed() -> None:
    marks: dict[str, int] = {}

    def work() -> None:
        marks["j0"], marks["t0"] = jiffies_now(), time.monotonic_ns()
        getpid_n(1)
        marks["j1"], marks["t1"] = jiffies_now(), time.monotonic_ns()
    out = pytrace_only('tracepoint:syscalls:sys_enter_getpid /pid == $1/ { printf("%lu %lu %d\\n", jiffies, nsecs,'
                       ' elapsed > 0 && elapsed < 60000000000); }', work, params=[PID])
    j, ns, el = map(int, out.split()[:3])
    assert marks["j0"] <= j <= marks["j1"]
    assert marks["t0"] <= ns <= marks["t1"]
    assert el == 1


def test_ncpus_cpu_numaid_rand_usermode() -> None:
    out = pytrace_only('BEGIN { printf("%d %d %d %d %d\\n", ncpus, cpu < ncpus, numaid, rand <= 4294967295,'
                       ' usermode); exit(); }', wait_exit=True)
    assert out.split()[:5] == [str(os.cpu_count()), "1", "0", "1", "0"]


def test_pid_tid_and_curtask() -> None:
    """tid of a second thread; curtask->pid / ->tgid / ->real_parent->tgid
    read through BTF-typed kernel pointers."""
    tids: list[int] = []

    def work() -> None:
        def run() -> None:
            tids.append(threading.get_native_id())
            getpid_n(3)
        t = threading.Thread(target=run)
        t.start()
        t.join()
        getpid_n(2)
    out = pytrace_only('tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @t[tid] = count();'
                       ' @c[curtask->pid == tid, curtask->tgid == pid] = count(); @p[pid] = count();'
                       ' @pp[curtask->real_parent->tgid] = count(); }', work, params=[PID])
    assert f"@t[{tids[0]}]: 3" in out
    assert f"@t[{threading.get_native_id()}]: 2" in out
    assert "@c[1, 1]: 5" in out
    assert f"@p[{PID}]: 5" in out
    assert f"@pp[{os.getppid()}]: 5" in out


def test_uid_gid_username() -> None:
    import pwd
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="pytrace-uid-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        exe = os.path.join(d, "pt-uid-true")
        shutil.copy("/bin/true", exe)
        os.chmod(exe, 0o755)

        def work() -> None:
            subprocess.run([exe], user=65534, group=65534, check=True)
            subprocess.run([exe], check=True)
        out = pytrace_only(f'tracepoint:sched:sched_process_exec /str(args->filename) == "{exe}"/'
                           ' { @[uid, gid, username] = count(); }', work)
    finally:
        shutil.rmtree(d)
    nobody = pwd.getpwuid(65534).pw_name
    assert f"@[65534, 65534, {nobody}]: 1" in out
    assert "@[0, 0, root]: 1" in out


def test_cgroup_and_cgroupid() -> None:
    """The cgroup v2 id of a task moved into a fresh cgroup is the inode of
    the cgroup's directory; cgroupid() of that path says the same."""
    root = "/sys/fs/cgroup/unified" if os.path.ismount("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
    cg = os.path.join(root, f"pytrace-test-{PID}")
    try:
        os.mkdir(cg)
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup v2 group: {exc}")
    try:
        ino = os.stat(cg).st_ino
        with Waiter("[os.getppid() for _ in range(4)]") as w:
            with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                f.write(str(w.pid))
            out = pytrace_only(f'tracepoint:syscalls:sys_enter_getppid /pid == $1/ {{ @[cgroup, cgroup == cgroupid("{cg}")]'
                               ' = count(); }', w.go, params=[w.pid])
        assert f"@[{ino}, 1]: 4" in out
    finally:
        os.rmdir(cg)


# ------------------------------------------------------------------ aggregations across CPUs

def test_aggregations_combine_per_cpu() -> None:
    """min/max/avg/stats/count/sum/hist with events on two CPUs: the
    per-CPU slots are combined exactly."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    old = os.sched_getaffinity(0)
    script = ("tracepoint:syscalls:sys_enter_write /pid == $1 && args->fd == $2/ { @mn = min(args->count);"
              " @mx = max(args->count); @a = avg(args->count); @s = stats(args->count); @c = count();"
              " @sum = sum(args->count); @h = hist(args->count); @cpu[cpu] = count(); }")
    with Devnull() as dn:
        def work() -> None:
            try:
                os.sched_setaffinity(0, {cpus[0]})
                dn.write([5, 7, 900])
                os.sched_setaffinity(0, {cpus[1]})
                dn.write([3, 1000, 12])
            finally:
                os.sched_setaffinity(0, old)
        out = pytrace_only(script, work, params=[PID, dn.fd])
    assert "@mn: 3\n" in out and "@mx: 1000\n" in out
    assert "@a: 321\n" in out and "@s: count 6, average 321, total 1927" in out
    assert "@c: 6\n" in out and "@sum: 1927\n" in out
    assert f"@cpu[{cpus[0]}]: 3" in out and f"@cpu[{cpus[1]}]: 3" in out
    assert re.search(r"\[512, 1K\)\s+2 ", out)


def test_hist_lhist_buckets_exact() -> None:
    """Known values land in the right hist/lhist buckets, counted exactly."""
    sizes = [0, 1, 1, 2, 3, 4, 1023, 1024, 1024, 70000]
    script = ("tracepoint:syscalls:sys_enter_write /pid == $1 && args->fd == $2/ { @h = hist(args->count);"
              " @l = lhist(args->count, 0, 1024, 256); @neg = hist(0 - (int64)args->count); }")
    with Devnull() as dn:
        out = pytrace_only(script, lambda: dn.write(sizes), params=[PID, dn.fd])
    h = out[out.index("@h:"):out.index("@l:")]
    for bucket, n in (("[0]", 1), ("[1]", 2), ("[2, 4)", 2), ("[4, 8)", 1), ("[512, 1K)", 1), ("[1K, 2K)", 2),
                      ("[64K, 128K)", 1)):
        assert re.search(re.escape(bucket) + rf"\s+{n} ", h), (bucket, h)
    lh = out[out.index("@l:"):out.index("@neg:")] if out.index("@l:") < out.index("@neg:") else out[out.index("@l:"):]
    for bucket, n in (("[0, 256)", 6), ("[768, 1K)", 1), ("[1K, ...)", 3)):
        assert re.search(re.escape(bucket) + rf"\s+{n} ", lh), (bucket, lh)
    assert re.search(r"\(\.\.\., 0\)\s+9 ", out)


# ------------------------------------------------------------------ string and address functions

def test_strcontains_and_str_length() -> None:
    script = ('tracepoint:syscalls:sys_enter_openat /pid == $1/ { @c[strcontains(str(args->filename), "needle")] ='
              ' count(); @s[str(args->filename, 12)] = count(); }')

    def work() -> None:
        open_n("/tmp/pt-hay-needle-1", 3)
        open_n("/tmp/pt-hay-other", 2)
    out = pytrace_only(script, work, params=[PID])
    assert "@c[1]: 3" in out and "@c[0]: 2" in out
    assert "@s[/tmp/pt-hay-]: 5" in out


def test_ntop_pton_from_sockaddr() -> None:
    """ntop() of an IPv4 address read from the user's struct sockaddr_in
    (a BTF struct through a user pointer), of pton() results, and bswap of
    the port."""
    script = ('tracepoint:syscalls:sys_enter_connect /pid == $1/ { $sa = (struct sockaddr_in *)args->uservaddr;'
              ' printf("%s %d %d\\n", ntop($sa->sin_addr.s_addr), bswap($sa->sin_port), $sa->sin_family); }'
              ' END { printf("%s %s\\n", ntop(pton("10.1.2.3")), ntop(pton("2001:db8::7"))); }')

    def work() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.2", 4321))
        s.close()
    out = pytrace_only(script, work, params=[PID])
    assert "127.0.0.2 4321 2\n" in out
    assert "10.1.2.3 2001:db8::7\n" in out


def test_ksym_kaddr_strerror_kptr() -> None:
    out = pytrace_only('BEGIN { printf("%s|%s|%s|%d\\n", ksym(kaddr("do_sys_openat2")), ksym(kaddr("vfs_read") + 1),'
                       ' strerror(2), kptr(7)); exit(); }', wait_exit=True)
    assert "do_sys_openat2|vfs_read|No such file or directory|7\n" in out


def test_buf_and_macaddr() -> None:
    script = ('tracepoint:syscalls:sys_enter_write /pid == $1 && args->fd == $2/ { printf("%r %rx %s\\n",'
              ' buf(args->buf, args->count), buf(args->buf, 2), macaddr(args->buf)); }')
    with Devnull() as dn:
        out = pytrace_only(script, lambda: os.write(dn.fd, b"\x00\x1a\x2b\x3c\x4d\x5e\x7f"), params=[PID, dn.fd])
    assert "\\x00\\x1a+<M^\\x7f \\x00\\x1a 00:1A:2B:3C:4D:5E\n" in out


def test_join_execve_argv() -> None:
    script = ('tracepoint:syscalls:sys_enter_execve /str(args->filename) == "/bin/echo"/ { join(args->argv, "+");'
              ' printf("%s\\n", str(args->filename, 6)); }')
    out = pytrace_only(script, lambda: subprocess.run(["/bin/echo", "a", "b c", "d"], stdout=subprocess.DEVNULL))
    assert "/bin/echo+a+b c+d\n/bin/e\n" in out


# ------------------------------------------------------------------ probe types

def test_rawtracepoint_sys_enter_arg1() -> None:
    out = pytrace_only("rawtracepoint:sys_enter /pid == $1 && (arg1 == 39 || arg1 == 110)/ { @[arg1] = count(); }",
                       lambda: (getpid_n(6), [os.getppid() for _ in range(4)]), params=[PID])
    assert "@[39]: 6" in out and "@[110]: 4" in out


def test_software_page_faults() -> None:
    pages = 64

    def work() -> None:
        m = mmap.mmap(-1, pages * mmap.PAGESIZE)
        for i in range(pages):
            m[i * mmap.PAGESIZE] = 1
        m.close()
    out = pytrace_only("software:page-faults:1 /pid == $1/ { @ = count(); }", work, params=[PID])
    n = int(re.search(r"@: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert pages <= n < pages + 200, n


def test_uprobe_uretprobe_counts_and_retval(cprog: str) -> None:
    from .difflib_pt import run_prog
    n = 25
    script = (f"uprobe:{cprog}:pt_add {{ @calls = count(); @args = sum(arg0 + arg1); }}"
              f" uretprobe:{cprog}:pt_add {{ @ret = sum(retval); @rmax = max(retval); }}"
              f" uretprobe:{cprog}:pt_six {{ @six = max(retval); }} uprobe:{cprog}:pt_six {{ @a5 = sum(arg5); }}"
              f" uretprobe:{cprog}:pt_neg {{ @neg = min((int32)retval); }}")
    out = pytrace_only(script, lambda: run_prog(cprog, n), params=[])
    total = sum(i + 10 for i in range(n))
    assert f"@calls: {n}\n" in out and f"@args: {total}\n" in out and f"@ret: {total}\n" in out
    assert f"@rmax: {n - 1 + 10}\n" in out
    assert f"@six: {(n - 1) * 100000 + 12345}\n" in out and f"@a5: {5 * n}\n" in out
    assert f"@neg: {-(n - 1)}\n" in out


def test_uprobe_ustack_usym_func(cprog: str) -> None:
    """User stacks and symbols resolve while the process is alive (at a
    function's first instruction the frame-pointer walk goes from the
    function straight to its caller's caller)."""
    procs: list[subprocess.Popen] = []

    def work() -> None:
        procs.append(subprocess.Popen([cprog, "2", "3000"]))
        time.sleep(0.5)
    try:
        out = pytrace_only(f'uprobe:{cprog}:pt_add {{ @[ustack] = count(); @s[ustack(1)] = count();'
                           f' printf("%s %s\\n", usym(reg("ip")), func); }}', work)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert "pt_add pt_add\npt_add pt_add\n" in out
    assert re.search(r"@\[\n\s+pt_add\+0\n\s+\S+\n", out), out
    assert "@s[\n    pt_add+0\n]: 2" in out


def test_profile_stacks_symbolised(cprog: str) -> None:
    """profile samples of a program busy in user mode then in syscalls,
    printed while it is still alive (user symbols need its mappings): user
    stacks name its functions, kernel stacks kernel functions, usermode
    tells the two apart."""
    script = ("profile:hz:499 /pid == cpid/ { @u[ustack] = count(); @k[kstack] = count(); @m[usermode] = count(); }"
              " interval:ms:1500 { print(@u); print(@k); print(@m); exit(); }")
    out = pytrace_only(script, tool_args=["-c", f"{cprog} 0 3000 0 500"], wait_exit=True)
    assert re.search(r"\n\s+pt_spin\+\d+\n\s+main\+\d+\n", out), out
    assert re.search(r"\n\s+pt_sys_spin\+\d+\n", out), out
    assert re.search(r"@k\[\n(\s+[A-Za-z_][\w.]*\+\d+\n)+\]", out), out
    assert re.search(r"@m\[0\]: \d+", out) and re.search(r"@m\[1\]: \d+", out), out


def test_dash_c_cpid(cprog: str) -> None:
    script = ('BEGIN { printf("cpid %d\\n", cpid); } tracepoint:sched:sched_process_exec /args->pid == cpid/'
              ' { printf("exec %d %s\\n", args->pid, str(args->filename)); }'
              f' uprobe:{cprog}:pt_add /pid == cpid/ {{ @ = count(); }}')
    out = pytrace_only(script, tool_args=["-c", f"{cprog} 7"], wait_exit=True)
    m1 = re.search(r"cpid (\d+)", out)
    m2 = re.search(r"exec (\d+) (\S+)", out)
    assert m1 and m2 and m1.group(1) == m2.group(1) and m2.group(2) == cprog
    assert "@: 7" in out


def test_dash_p_uprobe(cprog: str) -> None:
    """-p PID restricts uprobes to that process: another run of the same
    program is not counted."""
    from .difflib_pt import run_prog
    child = subprocess.Popen([cprog, "4", "0", "2500"])
    try:
        def work() -> None:
            run_prog(cprog, 3)
            child.wait()
        out = pytrace_only(f"uprobe:{cprog}:pt_add {{ @[pid] = count(); }}", work, tool_args=["-p", str(child.pid)],
                           wait_exit=True)
        assert out.strip().splitlines()[-1] == f"@[{child.pid}]: 4"
    finally:
        child.kill()
        child.wait()


def test_signal_unsafe() -> None:
    """signal("SIGUSR1") from a tracepoint reaches the task that hit it."""
    code = ("signal.signal(signal.SIGUSR1, lambda *a: os._exit(42))\n"
            "for _ in range(1000):\n    os.getppid(); time.sleep(0.01)\nos._exit(1)\n")
    with Waiter(code) as w:
        rc: list[int] = []
        out = pytrace_only('tracepoint:syscalls:sys_enter_getppid /pid == $1/ { signal("SIGUSR1"); @sent = count();'
                           ' exit(); }', lambda: rc.append(w.go()), params=[w.pid], tool_args=["--unsafe"],
                           wait_exit=True)
    assert rc == [42]
    assert "@sent: 1" in out


def test_system_unsafe() -> None:
    out = pytrace_only('tracepoint:syscalls:sys_enter_getpid /pid == $1/ { system("echo sys-%d", @n); @n++; }',
                       lambda: getpid_n(3), params=[PID], tool_args=["--unsafe"])
    assert "sys-0\nsys-1\nsys-2\n" in out


def test_cat_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "catme"
    f.write_text("line one\nline two\n")
    out = pytrace_only(f'BEGIN {{ cat("{f}"); cat("%s", "{tmp_path}/missing"); exit(); }}', wait_exit=True)
    assert "line one\nline two\n" in out
    assert "missing" in out


def test_has_key_and_print_value() -> None:
    out = pytrace_only('BEGIN { @m[1] = 2; printf("%d %d\\n", has_key(@m, 1), has_key(@m, 3)); print(@m[1]);'
                       ' exit(); }', wait_exit=True)
    assert out.startswith("1 0\n2\n")


def test_all_syscall_enter_tracepoints_by_probe() -> None:
    """tracepoint:syscalls:sys_enter_* (every syscall: one raw sys_enter
    program with a syscall-number filter) counted by probe name."""
    def work() -> None:
        getpid_n(7)
        for _ in range(3):
            os.getppid()
        for _ in range(4):
            os.getuid()
    out = pytrace_only("tracepoint:syscalls:sys_enter_* /pid == $1/ { @[probe] = count(); }", work, params=[PID])
    assert "@[tracepoint:syscalls:sys_enter_getpid]: 7\n" in out
    assert "@[tracepoint:syscalls:sys_enter_getppid]: 3\n" in out
    assert "@[tracepoint:syscalls:sys_enter_getuid]: 4\n" in out


# ------------------------------------------------------------------ len() and delete() of histograms

def test_len_of_maps_counts_entries() -> None:
    """len(@m) (bpf_for_each_map_elem with a callback subprogram) on a
    hash, on a per-CPU max() map and after deletes, while the probe fires."""
    def work() -> None:
        for i in range(5):
            open_n(f"/nonexistent/pytrace-len-{i}", 3)
    out = pytrace_only('tracepoint:syscalls:sys_enter_openat /pid == $1/ { @f[str(args->filename)] = count(); '
                       '@mx[str(args->filename)] = max(pid); @n = len(@f); @most = max(len(@mx)); } '
                       'END { printf("len %d %d\\n", len(@f), len(@mx)); delete(@f["/nonexistent/pytrace-len-0"]); '
                       'delete(@f["/nonexistent/pytrace-len-3"]); printf("after %d\\n", len(@f)); '
                       'clear(@f); clear(@mx); }', work, params=[PID])
    assert "len 5 5\nafter 3\n" in out
    assert "@n: 5\n" in out and "@most: 5\n" in out


def test_len_of_empty_map_and_of_a_histogram_is_refused() -> None:
    out = pytrace_only('BEGIN { @a[1] = 1; delete(@a[1]); printf("%d\\n", len(@a)); exit(); }', wait_exit=True)
    assert out.startswith("0\n")
    r = run_both('BEGIN { @h[1] = hist(1); printf("%d\\n", len(@h)); exit(); }', None, wait_exit=True,
                 tools=("pytrace",))["pytrace"]
    assert r.rc == 1 and "len() of a hist/lhist map is not supported" in r.stderr


def test_len_of_stacks_counts_frames() -> None:
    """len(kstack) is the number of frames kstack prints, len(kstack(3)) is 3;
    len(ustack) of a getpid() call from Python is above 0."""
    out = pytrace_only('tracepoint:syscalls:sys_enter_getpid /pid == $1/ { printf("%d %d %d\\n", len(kstack), '
                       'len(kstack(3)), len(ustack) > 0); @s = kstack; exit(); }', lambda: getpid_n(1),
                       params=[PID])
    first, _, rest = out.partition("\n")
    n, three, user = map(int, first.split())
    frames = [line for line in rest.splitlines() if line.startswith("        ") and line.strip()]
    assert n == len(frames) > 3 and three == 3 and user == 1


def test_delete_of_a_histogram_key_removes_all_its_buckets() -> None:
    out = pytrace_only('BEGIN { @h[1] = hist(5); @h[1] = hist(100); @h[1] = hist(0); @h[1] = hist(-3); '
                       '@h[1] = hist(1 << 40); @h[2] = hist(7); delete(@h[1]); '
                       '@l["a"] = lhist(-5, 0, 100, 10); @l["a"] = lhist(55, 0, 100, 10); @l["a"] = lhist(1000, 0, 100, 10); '
                       '@l["b"] = lhist(7, 0, 100, 10); delete(@l["a"]); '
                       '@s = hist(5); @s = hist(100); delete(@s); exit(); }', wait_exit=True)
    assert out == ("\n\n@h[2]: \n[4, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n"
                   "@l[b]: \n[0, 10)                1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n"
                   "\n")  # @s, emptied, prints as 0.17 prints an empty hist: an empty line


def test_reading_per_cpu_aggregations_combines_every_cpu() -> None:
    """min/max/avg maps read inside a probe (bpf_map_lookup_percpu_elem over
    the possible CPUs) give what the map prints: events land on two CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.fail("this test needs two CPUs")

    def work() -> None:
        saved = os.sched_getaffinity(0)
        fd = os.open("/dev/null", os.O_RDONLY)
        try:
            for cpu, off in ((cpus[0], 10), (cpus[1], 30), (cpus[0], 20), (cpus[1], -7)):
                os.sched_setaffinity(0, {cpu})
                os.lseek(fd, off, os.SEEK_SET) if off >= 0 else syscall(8, fd, off, 0)
        finally:
            os.close(fd)
            os.sched_setaffinity(0, saved)
    out = pytrace_only('tracepoint:syscalls:sys_enter_lseek /pid == $1/ { @mx = max((int64)args->offset); '
                       '@mn = min((int64)args->offset); @a = avg((int64)args->offset); '
                       'printf("%d %d %d %d\\n", cpu, @mx, @mn, @a); }', work, params=[PID])
    lines = out.splitlines()[:4]
    assert [int(line.split()[0]) for line in lines] == [cpus[0], cpus[1], cpus[0], cpus[1]]
    assert [line.split(None, 1)[1] for line in lines] == ["10 10 10", "30 10 20", "30 10 20", "30 -7 13"]
    assert "@a: 13\n" in out and "@mn: -7\n" in out and "@mx: 30\n" in out


def test_address_of_fields() -> None:
    """'&' of a field reached through a pointer, and of a tracepoint field:
    the address it would be read from (bpftrace 0.17 cannot parse '&')."""
    from .test_diff_probes import _bridge_fdb_add
    out = pytrace_only('BEGIN { $t = (struct task_struct *)curtask; printf("%d %d %d %d\\n", str(&$t->comm) == comm, '
                       '*(&$t->pid) == pid, (uint64)&$t->comm - (uint64)$t == offsetof(struct task_struct, comm), '
                       'offsetof(struct task_struct, comm) > 0); exit(); }', wait_exit=True)
    assert out.startswith("1 1 1 1\n")
    out = pytrace_only('tracepoint:bridge:br_fdb_add /args->addr[0] == 0x02/ { printf("%s\\n", macaddr(&args->addr)); }',
                       lambda: _bridge_fdb_add("02:aa:bb:cc:dd:0e"), settle=0.5)
    assert out.startswith("02:AA:BB:CC:DD:0E\n")
    r = run_both('BEGIN { $x = 1; printf("%p\\n", &$x); exit(); }', None, wait_exit=True, tools=("pytrace",))["pytrace"]
    assert r.rc == 1 and "'&' of a variable or a map is not supported" in r.stderr


def test_ctx_is_the_context_pointer(cprog: str) -> None:
    """'ctx' outside iter probes: the context pointer (kernel memory, also
    after a cast in a uprobe): pt_regs->di is arg0 of a uprobe, and a
    syscall tracepoint's record holds __syscall_nr at offset 8 (its first 8
    bytes are the kernel's pt_regs pointer, not the common fields)."""
    out = pytrace_only('tracepoint:syscalls:sys_enter_getpid /pid == $1/ { printf("%d %d\\n", ctx != 0, '
                       '*(int32 *)(ctx + 8) == 39); exit(); }', lambda: getpid_n(1), params=[PID])
    assert out.startswith("1 1\n")
    out = pytrace_only(f'uprobe:{cprog}:pt_add /pid == cpid/ {{ @[((struct pt_regs *)ctx)->di == arg0] = count(); }}',
                       tool_args=["-c", f"{cprog} 3"], wait_exit=True)
    assert "@[1]: 3\n" in out and "@[0]" not in out


def test_printf_s_of_an_enum_prints_its_name() -> None:
    """%s of an enum value is the enumerator's name (bpftrace 0.22), from a
    script's enum or the kernel's BTF; a value no enumerator has prints as
    its number; %d still prints the number."""
    out = pytrace_only('enum color { RED = 1, GREEN = 2, BLUE = -3 }; BEGIN { $c = (enum color)2; '
                       'printf("%s %d %s|%-6s|%s\\n", $c, $c, (enum color)7, (enum color)1, (enum color)-3); '
                       'printf("%s %s\\n", (enum pid_type)0, (enum pid_type)1); exit(); }', wait_exit=True)
    assert out.startswith("GREEN 2 7|RED   |BLUE\nPIDTYPE_PID PIDTYPE_TGID\n")


def test_enum_map_keys_print_as_names() -> None:
    out = pytrace_only('enum color { RED = 1, GREEN = 2 }; BEGIN { @[(enum color)2] = count(); '
                       '@[(enum color)1] = count(); @[(enum color)1] = count(); @t[(enum color)1, "x"] = 5; '
                       '@h[(enum color)2] = hist(3); @u[(enum color)9] = 1; exit(); }', wait_exit=True)
    assert "@[GREEN]: 1\n@[RED]: 2\n" in out
    assert "@h[GREEN]: \n[2, 4)" in out and "@t[RED, x]: 5\n" in out and "@u[9]: 1\n" in out
