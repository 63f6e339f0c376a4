"""Probe types, builtins and async functions: bpftrace 0.17 and pytrace on
the same workload (tracepoint fields, raw_syscalls, wildcards, uprobes of a
program compiled here, -c/-p, stacks, symbols, join/cat/system/time)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from .difflib_pt import build_cprog, compare, getpid_n, have_bpftrace, open_n, run_prog

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

PID = os.getpid()

@pytest.fixture(scope="module")
def cprog(tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    return build_cprog(tmp_path_factory.mktemp("uprobe"))


# ------------------------------------------------------------------ tracepoints

def test_raw_syscalls_sys_enter_id() -> None:
    script = ("tracepoint:raw_syscalls:sys_enter /pid == $1 && (args->id == 39 || args->id == 110)/"
              " { @ids[args->id] = count(); @a0[args->id, args->args[0] == 0] = count(); }")
    compare(script, lambda: (getpid_n(7), [os.getppid() for _ in range(3)]), params=[PID],
            expect=["@ids[110]: 3", "@ids[39]: 7"])


def test_syscall_wildcard_counted_by_probe() -> None:
    """tracepoint:syscalls:sys_enter_get* over a workload making a known
    number of getpid, getppid and getuid calls (pytrace runs the 20-odd
    tracepoints as one raw sys_enter program with a syscall filter)."""
    script = "tracepoint:syscalls:sys_enter_get* /pid == $1/ { @[probe] = count(); }"

    def work() -> None:
        getpid_n(7)
        for _ in range(3):
            os.getppid()
        for _ in range(4):
            os.getuid()
    compare(script, work, params=[PID], expect=["@[tracepoint:syscalls:sys_enter_getpid]: 7",
                                                 "@[tracepoint:syscalls:sys_enter_getppid]: 3",
                                                 "@[tracepoint:syscalls:sys_enter_getuid]: 4"])


def test_sched_tracepoint_fields() -> None:
    """sched_process_fork / exec / exit fields for children of this process."""
    script = ("tracepoint:sched:sched_process_fork /args->parent_pid == $1/ { @forks = count(); $c = args->child_pid;"
              " @child[$c > $1] = count(); }"
              " tracepoint:sched:sched_process_exec /str(args->filename) == \"/bin/true\"/ { @exec[str(args->filename)] ="
              " count(); @same[args->old_pid == args->pid] = count(); }"
              " tracepoint:sched:sched_process_exit /args->comm == \"true\"/ { @exit[args->comm] = count(); }")

    def work() -> None:
        for _ in range(2):
            subprocess.run(["/bin/true"])
    compare(script, work, params=[PID], expect=["@forks: 2", "@exec[/bin/true]: 2", "@exit[true]: 2"])


def test_data_loc_string_follows_max_strlen(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A __data_loc string field (sched_process_exec's filename) reads as
    many bytes as config max_strlen allows, not a fixed 64 (pytrace only:
    bpftrace 0.17 has no config block, and the harness pins BPFTRACE_STRLEN)."""
    long_dir = tmp_path / ("d" * 100)
    long_dir.mkdir()
    prog = long_dir / "true"
    prog.write_bytes(open("/bin/true", "rb").read())
    prog.chmod(0o755)
    script = ('config = { max_strlen = 200 } tracepoint:sched:sched_process_exec /pid == cpid/ '
              '{ printf("%s\\n", args->filename); }')
    r = subprocess.run([sys.executable, "-m", "pytrace", "-q", "-c", str(prog), "-e", script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(prog) and len(str(prog)) > 64


def test_syscall_fields_and_exit_tracepoints() -> None:
    """Fields of sys_enter/sys_exit tracepoints: pointers read as strings,
    signed offsets, flags; ret of the exit probe."""
    script = ("tracepoint:syscalls:sys_enter_openat /pid == $1/ { printf(\"%s %d %x\\n\", str(args->filename),"
              " args->dfd, args->flags & 0xff); }"
              " tracepoint:syscalls:sys_enter_lseek /pid == $1/ { printf(\"seek %d %ld %u\\n\", args->fd > 0,"
              " args->offset, args->whence); @o[args->offset] = count(); }"
              " tracepoint:syscalls:sys_exit_openat /pid == $1/ { @ret[args->ret >= 0] = count(); }")

    def work() -> None:
        open_n("/nonexistent/pytrace-fields", 2)
        fd = os.open("/dev/null", os.O_RDONLY)
        for off in (0, 5, 1 << 40):
            os.lseek(fd, off, 0)
        os.lseek(fd, -12345, 1)
        os.close(fd)
    compare(script, work, params=[PID], expect=["/nonexistent/pytrace-fields -100 0", "seek 1 -12345 1",
                                                 "@ret[0]: 2", "@ret[1]: 1"])


def test_builtins_in_tracepoint() -> None:
    script = ("tracepoint:syscalls:sys_enter_getppid /pid == $1/ { printf(\"%d %d %d %s %d\\n\", uid, gid,"
              " pid == tid, comm, cpu < 1024); @u[uid, gid] = count(); @p[pid == $1, tid == $1] = count();"
              " @c[comm] = count(); @nsecs = nsecs > 0; @el = elapsed > 0; }")
    comm = open("/proc/self/comm").read().strip()
    compare(script, lambda: [os.getppid() for _ in range(2)], params=[PID],
            expect=[f"0 0 1 {comm} 1", "@p[1, 1]: 2", f"@c[{comm}]: 2"])


def test_kernel_stacks_and_symbols() -> None:
    """kstack from a syscall tracepoint: the same frames and offsets as
    bpftrace (both symbolise through /proc/kallsyms), in bpftrace and perf
    modes, with a depth limit; ksym(kaddr())."""
    # The third event ends the run: bpftrace stopped by SIGINT while it is
    # still loading kallsyms drops the events it has not printed yet.
    script = ("tracepoint:syscalls:sys_enter_getppid /pid == $1/ { @[kstack] = count(); @d[kstack(2)] = count();"
              " print(kstack(perf, 2)); printf(\"%s\\n\", ksym(kaddr(\"do_sys_openat2\"))); @n++;"
              " if (@n == 3) { exit(); } }")
    compare(script, lambda: [os.getppid() for _ in range(3)], params=[PID], wait_exit=True,
            expect=["do_sys_openat2\n", "]: 3"])


def test_join_execve_args_and_str_length() -> None:
    script = ("tracepoint:syscalls:sys_enter_execve /str(args->filename) == \"/bin/echo\"/ { join(args->argv);"
              " join(args->argv, \",\"); printf(\"%s|%s\\n\", str(args->filename, 5), str(args->filename, 1));"
              " @c = count(); }")
    compare(script, lambda: subprocess.run(["/bin/echo", "a", "b", "c"], stdout=subprocess.DEVNULL),
            expect=["/bin/echo a b c\n/bin/echo,a,b,c\n/bin/|/\n", "@c: 1"])


# ------------------------------------------------------------------ async functions

def test_cat_ntop_time() -> None:
    script = ('BEGIN { cat("/proc/sys/kernel/ostype"); cat("/proc/sys/kernel/%s", "ostype");'
              ' printf("%s %s\\n", ntop(0x0100007f), ntop(2, 0x0101a8c0)); time("%Y-\\n");'
              ' printf("%s\\n", strftime("%Y", nsecs)); exit(); }')
    compare(script, wait_exit=True, expect=["Linux\nLinux\n", "127.0.0.1 192.168.1.1", time.strftime("%Y-\n")])


def test_system_from_probe() -> None:
    script = ('tracepoint:syscalls:sys_enter_getppid /pid == $1/ { printf("before\\n"); system("echo system %d", @n);'
              ' @n++; printf("after\\n"); }')
    compare(script, lambda: [os.getppid() for _ in range(2)], params=[PID], tool_args=["--unsafe"],
            expect=["before\nsystem 0\nafter\nbefore\nsystem 1\nafter\n"])


def test_system_in_begin_keeps_order() -> None:
    compare('BEGIN { printf("first\\n"); cat("/proc/sys/kernel/ostype"); system("echo second"); exit(); }',
            tool_args=["--unsafe"], wait_exit=True, expect=["first\nLinux\nsecond\n"])


# ------------------------------------------------------------------ uprobes and -c / -p

def test_uprobe_args_and_uretprobe_retval(cprog: str) -> None:
    script = (f"uprobe:{cprog}:pt_add {{ @a[arg0, arg1] = count(); @s = sum(arg0); }}"
              f" uretprobe:{cprog}:pt_add {{ @r = hist(retval); @rv[retval] = count(); }}"
              f" uprobe:{cprog}:pt_len {{ printf(\"%s %d\\n\", str(arg0), arg0 > 0); }}"
              f" uretprobe:{cprog}:pt_neg {{ @neg = min((int32)retval); printf(\"neg %d\\n\", (int32)retval); }}"
              f" uprobe:{cprog}:pt_six {{ printf(\"%d %d %d %d %d %d\\n\", arg0, arg1, arg2, arg3, arg4, arg5); }}"
              f" uretprobe:{cprog}:pt_big {{ @big = max(retval); @bigh = hist(retval); }}")
    compare(script, lambda: run_prog(cprog, 4, 300),
            expect=["word-3 1", "neg -3", "3 1 2 3 4 5", "@a[3, 10]: 1", "@neg: -3", "@s: 6", "@rv[13]: 1",
                    "@big: 25769803776"])


def test_uprobe_func_and_usym(cprog: str) -> None:
    # (func as a map key is printed by 0.17 as an address once the process
    # is gone, so only printf() resolves it here.)
    script = (f"uprobe:{cprog}:pt_add,uprobe:{cprog}:pt_neg {{ printf(\"%s %s\\n\", func,"
              f" usym(reg(\"ip\"))); @p[probe] = count(); @n++; if (@n == 4) {{ exit(); }} }}")
    # bpftrace 0.17 sometimes misses the first hits of its second uprobe on a
    # loaded machine (seen in CI-like runs: one line, @n: 2): one retry.
    compare(script, lambda: run_prog(cprog, 2, 1000), wait_exit=True, expect=["pt_add pt_add\npt_neg pt_neg\n"],
            retries=1)


def test_dash_c_and_cpid(cprog: str) -> None:
    script = (f"uprobe:{cprog}:pt_add /pid == cpid/ {{ @c = count(); }}"
              " tracepoint:syscalls:sys_enter_exit_group /pid == cpid/ { printf(\"exit %d\\n\", args->error_code); }"
              " tracepoint:sched:sched_process_exec /args->pid == cpid/ { printf(\"%s\\n\", str(args->filename)); }")
    compare(script, tool_args=["-c", f"{cprog} 5"], wait_exit=True, expect=["exit 0", "@c: 5"])


def test_dash_p(cprog: str) -> None:
    """-p PID: the tracer sees that process's uprobe hits and stops when it
    exits.  (0.17 does not restrict uprobes to the -p process, pytrace
    does: no other run of the program is made here.)"""
    child = subprocess.Popen([cprog, "4", "0", "2500"], stdout=subprocess.DEVNULL)
    try:
        script = f"uprobe:{cprog}:pt_add {{ @c[pid == $1] = count(); @a[arg0] = count(); }}"
        compare(script, child.wait, params=[child.pid], tool_args=["-p", str(child.pid)], wait_exit=True,
                expect=["@c[1]: 4", "@a[3]: 1"])
    finally:
        child.kill()
        child.wait()


def _bridge_fdb_add(mac: str) -> None:
    """One br_fdb_add event: a bridge in a network namespace of its own, a
    static fdb entry for ``mac`` on its port, and the namespace removed."""
    ns = f"ptbr{os.getpid()}"
    steps = [["ip", "netns", "add", ns],
             ["ip", "-n", ns, "link", "add", "br0", "type", "bridge"],
             ["ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
             ["ip", "-n", ns, "link", "set", "v0", "master", "br0"],
             ["ip", "netns", "exec", ns, "bridge", "fdb", "add", mac, "dev", "v0", "master", "static"]]
    try:
        for argv in steps:
            subprocess.run(argv, check=True, capture_output=True, timeout=20)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def test_macaddr_of_a_tracepoint_char_array() -> None:
    """macaddr(args->addr) of 'unsigned char addr[6]' (pytrace also takes
    &args->addr, which bpftrace 0.17 cannot parse)."""
    script = ('tracepoint:bridge:br_fdb_add /args->addr[0] == 0x02/ { printf("%s\\n", macaddr(args->addr)); '
              '@[macaddr(args->addr)] = count(); }')
    compare(script, lambda: _bridge_fdb_add("02:11:22:a3:b4:c5"), expect=["02:11:22:A3:B4:C5"],
            settle=0.5)
