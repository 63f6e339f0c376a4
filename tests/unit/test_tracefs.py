"""Tests for pytrace.kernel.tracefs and pytrace.kernel.info.

Everything here runs without root against tests/data/tracefs (a copy of a
real kernel's format files) except the tests marked ``kernel``, which read
the live tracefs and run whenever we are root.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
import types as pytypes
from pathlib import Path

import pytest

from pytrace.errors import EnvironmentProblem
from pytrace.kernel import tracefs
from pytrace.kernel.info import FakeKernel, KernelInfo, LiveKernel
from pytrace.kernel.tracefs import (
    FormatError,
    TracefsUnavailable,
    TracepointField,
    TracepointFormat,
    field_type,
    list_tracepoints,
    parse_format,
    read_format,
    split_c_type,
    tracefs_root,
)
from pytrace.semantic.types import (
    I32,
    I64,
    I8,
    U16,
    U32,
    U64,
    U8,
    VOID,
    AddrSpace,
    ArrayType,
    EnumType,
    PointerType,
    StringType,
    StructType,
)

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "tracefs"
FIXTURE_CATEGORIES = {
    "syscalls", "raw_syscalls", "sched", "block", "skb", "writeback", "signal", "task",
    "sock", "tcp", "net", "irq", "timer", "kmem", "oom",
}

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="reads the live tracefs (needs root)")

HEADER = """name: {event}
ID: 42
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

"""


def one_field(line: str, category: str = "test", event: str = "ev") -> TracepointField:
    """Parse a format holding a single event field given as its ``field:`` line."""
    fmt = parse_format(HEADER.format(event=event) + "\t" + line + "\n\nprint fmt: \"\"\n", category, event)
    assert len(fmt.fields) == 1
    return fmt.fields[0]


# --- parsing each field shape ----------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("field:const char * filename;\toffset:24;\tsize:8;\tsigned:0;",
         TracepointField("filename", "const char *", 24, 8, False, None, False)),
        ("field:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;",
         TracepointField("prev_comm", "char", 8, 16, False, 16, False)),
        ("field:__data_loc char[] name;\toffset:12;\tsize:4;\tsigned:0;",
         TracepointField("name", "char", 12, 4, False, None, True)),
        ("field:unsigned long args[6];\toffset:16;\tsize:48;\tsigned:0;",
         TracepointField("args", "unsigned long", 16, 48, False, 6, False)),
        ("field:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;",
         TracepointField("__syscall_nr", "int", 8, 4, True, None, False)),
        ("field:unsigned long long delay;\toffset:16;\tsize:8;\tsigned:0;",
         TracepointField("delay", "unsigned long long", 16, 8, False, None, False)),
        ("field:long unsigned int  nr;\toffset:16;\tsize:8;\tsigned:0;",
         TracepointField("nr", "long unsigned int", 16, 8, False, None, False)),
        ("field:struct foo *p;\toffset:8;\tsize:8;\tsigned:0;",
         TracepointField("p", "struct foo *", 8, 8, False, None, False)),
        ("field:struct iocb * * iocbpp;\toffset:32;\tsize:8;\tsigned:0;",
         TracepointField("iocbpp", "struct iocb **", 32, 8, False, None, False)),
        ("field:const char *const * argv;\toffset:24;\tsize:8;\tsigned:0;",
         TracepointField("argv", "const char *const *", 24, 8, False, None, False)),
        ("field:u8 saddr[4];\toffset:20;\tsize:4;\tsigned:0;",
         TracepointField("saddr", "u8", 20, 4, False, 4, False)),
        ("field:char comm[TASK_COMM_LEN];\toffset:8;\tsize:16;\tsigned:0;",
         TracepointField("comm", "char", 8, 16, False, 16, False)),
        ("field:u32 cpus[NR_CPUS_WORDS];\toffset:8;\tsize:24;\tsigned:0;",
         TracepointField("cpus", "u32", 8, 24, False, 6, False)),
        ("field:int vals[2 * 4];\toffset:8;\tsize:32;\tsigned:1;",
         TracepointField("vals", "int", 8, 32, True, 8, False)),
        ("field:u32 buf[];\toffset:24;\tsize:0;\tsigned:0;",
         TracepointField("buf", "u32", 24, 0, False, 0, False)),
        ("field:__data_loc u64[] stack;\toffset:12;\tsize:4;\tsigned:0;",
         TracepointField("stack", "u64", 12, 4, False, None, True)),
        ("field:__data_loc cpumask_t cpumask;\toffset:8;\tsize:4;\tsigned:0;",
         TracepointField("cpumask", "cpumask_t", 8, 4, False, None, True)),
        ("field:const void* location;\toffset:8;\tsize:8;\tsigned:0;",
         TracepointField("location", "const void *", 8, 8, False, None, False)),
        ("field:void __seg_gs * ptr;\toffset:8;\tsize:8;\tsigned:0;",
         TracepointField("ptr", "void __seg_gs *", 8, 8, False, None, False)),
        ("field:const struct landlock_ruleset_attr *const attr;\toffset:16;\tsize:8;\tsigned:0;",
         TracepointField("attr", "const struct landlock_ruleset_attr *const", 16, 8, False, None, False)),
        ("field:enum xfs_group_type type;\toffset:12;\tsize:4;\tsigned:0;",
         TracepointField("type", "enum xfs_group_type", 12, 4, False, None, False)),
        ("field special:int old;\toffset:8;\tsize:4;\tsigned:1;",
         TracepointField("old", "int", 8, 4, True, None, False)),
        # Kernels before 2.6.35 had no signed: column.
        ("field:int nosign;\toffset:8;\tsize:4;",
         TracepointField("nosign", "int", 8, 4, False, None, False)),
    ],
)
def test_parse_field_shapes(line: str, expected: TracepointField) -> None:
    assert one_field(line) == expected


def test_parse_whole_format() -> None:
    text = (FIXTURE / "events/sched/sched_switch/format").read_text()
    fmt = parse_format(text, "sched", "sched_switch")
    assert (fmt.category, fmt.event) == ("sched", "sched_switch")
    assert fmt.id == int((FIXTURE / "events/sched/sched_switch/id").read_text())
    assert [f.name for f in fmt.common_fields] == [
        "common_type", "common_flags", "common_preempt_count", "common_pid"]
    assert fmt.common_fields[3] == TracepointField("common_pid", "int", 4, 4, True, None, False)
    assert [f.name for f in fmt.fields] == [
        "prev_comm", "prev_pid", "prev_prio", "prev_state", "next_comm", "next_pid", "next_prio"]
    assert fmt.field("next_comm") == TracepointField("next_comm", "char", 40, 16, False, 16, False)
    assert fmt.field("common_pid") is None
    assert fmt.common_field("common_pid") is fmt.common_fields[3]
    assert fmt.field("nope") is None
    assert fmt.record_size == 64
    assert fmt.print_fmt.startswith('"prev_comm=%s')


def test_parse_without_id_or_header() -> None:
    fmt = parse_format("format:\n\tfield:int x;\toffset:8;\tsize:4;\tsigned:1;\n", "c", "e")
    assert fmt.id == -1
    assert fmt.fields == [TracepointField("x", "int", 8, 4, True, None, False)]
    assert fmt.common_fields == []


@pytest.mark.parametrize("bad", [
    "\tfield:int x;\toffset:eight;\tsize:4;\tsigned:1;",
    "\tfield:;\toffset:8;\tsize:4;\tsigned:1;",
    "\tfield:x;\toffset:8;\tsize:4;\tsigned:1;",
    "ID: twelve",
])
def test_parse_errors(bad: str) -> None:
    with pytest.raises(FormatError):
        parse_format("format:\n" + bad + "\n", "c", "e")


def test_split_c_type() -> None:
    assert split_c_type("const char *const *") == ("char", 2)
    assert split_c_type("struct sock *") == ("struct sock", 1)
    assert split_c_type("void __seg_gs *") == ("void", 1)
    assert split_c_type("unsigned long") == ("unsigned long", 0)


# --- field_type ------------------------------------------------------------


def ftype(line: str, **kw: object) -> object:
    return field_type(one_field(line), **kw)  # type: ignore[arg-type]


def test_field_type_strings_and_arrays() -> None:
    assert ftype("field:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;") == StringType(16)
    assert ftype("field:char comm[TASK_COMM_LEN];\toffset:8;\tsize:16;\tsigned:0;") == StringType(16)
    assert ftype("field:u8 saddr[4];\toffset:20;\tsize:4;\tsigned:0;") == ArrayType(U8, 4)
    assert ftype("field:unsigned char mac[6];\toffset:8;\tsize:6;\tsigned:0;") == ArrayType(U8, 6)
    assert ftype("field:unsigned long args[6];\toffset:16;\tsize:48;\tsigned:0;") == ArrayType(U64, 6)
    assert ftype("field:long sysctl_mem[3];\toffset:40;\tsize:24;\tsigned:1;") == ArrayType(I64, 3)
    assert ftype("field:u32 buf[];\toffset:24;\tsize:0;\tsigned:0;") == ArrayType(U32, 0)
    assert ftype("field:char buf[];\toffset:24;\tsize:0;\tsigned:0;") == ArrayType(I8, 0)
    assert ftype("field:void *caller[2];\toffset:8;\tsize:16;\tsigned:0;") == ArrayType(PointerType(VOID, AddrSpace.KERNEL), 2)


def test_field_type_data_loc() -> None:
    line = "field:__data_loc char[] name;\toffset:12;\tsize:4;\tsigned:0;"
    assert ftype(line) == StringType(64)
    assert ftype(line, string_len=200) == StringType(200)
    assert ftype("field:__data_loc u64[] stack;\toffset:12;\tsize:4;\tsigned:0;") == PointerType(U64, AddrSpace.KERNEL)
    assert ftype("field:__data_loc cpumask_t m;\toffset:8;\tsize:4;\tsigned:0;") == PointerType(VOID, AddrSpace.KERNEL)


def test_field_type_pointers() -> None:
    k, u = AddrSpace.KERNEL, AddrSpace.USER
    assert ftype("field:const char * filename;\toffset:24;\tsize:8;\tsigned:0;") == PointerType(I8, k)
    assert ftype("field:char * buf;\toffset:24;\tsize:8;\tsigned:0;", addrspace=u) == PointerType(I8, u)
    sock = ftype("field:struct sock * sk;\toffset:8;\tsize:8;\tsigned:0;")
    assert sock == PointerType(StructType("struct", "sock"), k)
    assert isinstance(sock, PointerType) and isinstance(sock.pointee, StructType) and sock.pointee.fields is None
    assert ftype("field:union bpf_attr * uattr;\toffset:16;\tsize:8;\tsigned:0;") == PointerType(StructType("union", "bpf_attr"), k)
    assert ftype("field:struct iocb * * iocbpp;\toffset:32;\tsize:8;\tsigned:0;", addrspace=u) == PointerType(
        PointerType(StructType("struct", "iocb"), u), u)
    assert ftype("field:const char *const * argv;\toffset:24;\tsize:8;\tsigned:0;", addrspace=u) == PointerType(
        PointerType(I8, u), u)
    assert ftype("field:void * ptr;\toffset:8;\tsize:8;\tsigned:0;") == PointerType(VOID, k)
    assert ftype("field:void __seg_gs * ptr;\toffset:8;\tsize:8;\tsigned:0;") == PointerType(VOID, k)
    assert ftype("field:int * fildes;\toffset:16;\tsize:8;\tsigned:0;") == PointerType(I32, k)
    assert ftype("field:loff_t * pos;\toffset:16;\tsize:8;\tsigned:0;") == PointerType(I64, k)
    # A typedef we cannot see through points to void until BTF says more.
    assert ftype("field:siginfo_t * info;\toffset:16;\tsize:8;\tsigned:0;") == PointerType(VOID, k)


def test_field_type_integers_follow_the_columns() -> None:
    # Declared int, but the record slot is 8 bytes and unsigned: the file wins.
    assert ftype("field:int dfd;\toffset:16;\tsize:8;\tsigned:0;") == U64
    assert ftype("field:int x;\toffset:16;\tsize:4;\tsigned:1;") == I32
    assert ftype("field:unsigned short family;\toffset:8;\tsize:2;\tsigned:0;") == U16
    assert ftype("field:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;") == U64
    assert ftype("field:bool ok;\toffset:8;\tsize:1;\tsigned:0;") == U8
    assert ftype("field:char c;\toffset:8;\tsize:1;\tsigned:0;") == U8
    # Unknown typedefs: an integer of the given size and signedness.
    assert ftype("field:xfs_ino_t ino;\toffset:16;\tsize:8;\tsigned:0;") == U64
    assert ftype("field:xfs_daddr_t blk;\toffset:16;\tsize:8;\tsigned:1;") == I64
    assert ftype("field:xfs_ino_t ino;\toffset:16;\tsize:8;\tsigned:0;", signed=True) == I64
    assert ftype("field:enum zone_type zt;\toffset:8;\tsize:4;\tsigned:0;") == EnumType("zone_type", 32, False)
    by_value = ftype("field:struct timespec64 ts;\toffset:8;\tsize:16;\tsigned:0;")
    assert isinstance(by_value, StructType) and by_value.tag == "timespec64" and by_value.size == 16
    assert ftype("field:__int128_t blob;\toffset:8;\tsize:16;\tsigned:1;") == ArrayType(U8, 16)


def test_format_field_type_knows_syscalls() -> None:
    fake = FakeKernel(FIXTURE)
    enter = fake.tracepoint_format("syscalls", "sys_enter_openat")
    assert enter is not None
    # sys_enter_* args are all signed:0 in the file; the declared type decides.
    assert enter.field("dfd") is not None and enter.field("dfd").signed is False  # type: ignore[union-attr]
    assert enter.field_type("dfd") == I64
    assert enter.field_type("flags") == I64
    assert enter.field_type("mode") == U64
    assert enter.field_type("__syscall_nr") == I32
    assert enter.field_type("filename") == PointerType(I8, AddrSpace.USER)
    assert enter.field_type("nope") is None
    exit_ = fake.tracepoint_format("syscalls", "sys_exit_openat")
    assert exit_ is not None and exit_.field_type("ret") == I64
    sched = fake.tracepoint_format("sched", "sched_switch")
    assert sched is not None
    assert sched.field_type("prev_comm") == StringType(16)
    assert sched.field_type("prev_pid") == I32
    assert sched.pointer_addrspace() is AddrSpace.KERNEL
    irq = fake.tracepoint_format("irq", "irq_handler_entry")
    assert irq is not None and irq.field("name").data_loc  # type: ignore[union-attr]
    assert irq.field_type("name") == StringType(64)
    args = enter.args_struct()
    assert args.tag == "_tracepoint_syscalls_sys_enter_openat"
    assert args.field_names() == ["__syscall_nr", "dfd", "filename", "flags", "mode"]
    assert args.field("filename").offset == 24  # type: ignore[union-attr]
    assert args.size == 48


# --- FakeKernel / KernelInfo -----------------------------------------------


@pytest.fixture(scope="module")
def fake() -> FakeKernel:
    return FakeKernel(FIXTURE)


def test_fake_kernel_openat(fake: FakeKernel) -> None:
    fmt = fake.tracepoint_format("syscalls", "sys_enter_openat")
    assert fmt is not None
    named = {f.name: f for f in fmt.fields}
    assert list(named) == ["__syscall_nr", "dfd", "filename", "flags", "mode"]
    assert [named[n].offset for n in ("dfd", "filename", "flags", "mode")] == [16, 24, 32, 40]
    assert named["filename"] == TracepointField("filename", "const char *", 24, 8, False, None, False)
    assert named["mode"] == TracepointField("mode", "umode_t", 40, 8, False, None, False)
    assert fake.tracepoint_format("syscalls", "sys_enter_openat") is fmt  # cached
    assert fake.tracepoint_format("syscalls", "nope") is None
    assert fake.tracepoint_format("..", "sched") is None
    assert fake.btf() is None


def test_fake_kernel_listing(fake: FakeKernel) -> None:
    tps = fake.tracepoints()
    assert tps == sorted(tps)
    assert {c for c, _ in tps} == FIXTURE_CATEGORIES
    assert ("raw_syscalls", "sys_enter") in tps and ("sched", "sched_switch") in tps
    assert sum(1 for c, _ in tps if c == "syscalls") > 600
    assert fake.has_tracepoint("sched", "sched_switch")
    assert not fake.has_tracepoint("sched", "sched_switchx")
    assert not fake.has_tracepoint("nosuch", "x")
    assert fake.categories() == sorted(FIXTURE_CATEGORIES)


def test_match_tracepoints(fake: FakeKernel) -> None:
    present = {ev for c, ev in fake.tracepoints() if c == "syscalls" and ev.startswith("sys_enter_open")}
    got = fake.match_tracepoints("syscalls", "sys_enter_open*")
    assert got == sorted(("syscalls", ev) for ev in present)
    # What the fixture's kernel (6.18) has: open_tree and open_tree_attr match too.
    assert {ev for _, ev in got} == {
        "sys_enter_open", "sys_enter_openat", "sys_enter_openat2", "sys_enter_open_by_handle_at",
        "sys_enter_open_tree", "sys_enter_open_tree_attr"}
    assert fake.match_tracepoints("syscalls", "sys_enter_openat") == [("syscalls", "sys_enter_openat")]
    assert fake.match_tracepoints("syscalls", "sys_enter_openat?") == [("syscalls", "sys_enter_openat2")]
    assert fake.match_tracepoints("syscalls", "sys_e[n]ter_openat[0-9]") == [("syscalls", "sys_enter_openat2")]
    assert fake.match_tracepoints("sched", "Sched_switch") == []  # case-sensitive
    assert fake.match_tracepoints("nosuch", "*") == []
    assert fake.match_tracepoints("raw_sys*", "*") == [("raw_syscalls", "sys_enter"), ("raw_syscalls", "sys_exit")]
    assert fake.match_tracepoints("*", "sched_switch") == [("sched", "sched_switch")]
    assert fake.match_tracepoints("*", "*") == fake.tracepoints()
    assert fake.match_tracepoints("s?ched", "*") == []


def test_fake_kernel_from_dict() -> None:
    text = HEADER.format(event="e") + "\tfield:int x;\toffset:8;\tsize:4;\tsigned:1;\n"
    sentinel = object()
    k = FakeKernel({("cat", "e"): text, ("cat", "b"): text, ("a", "z"): text}, btf=sentinel)  # type: ignore[arg-type]
    assert isinstance(k, KernelInfo)
    assert k.tracepoints() == [("a", "z"), ("cat", "b"), ("cat", "e")]
    fmt = k.tracepoint_format("cat", "e")
    assert fmt is not None and fmt.id == 42 and fmt.fields[0].name == "x"
    assert k.tracepoint_format("cat", "zz") is None
    assert k.match_tracepoints("c*", "?") == [("cat", "b"), ("cat", "e")]
    assert k.btf() is sentinel


def test_fake_kernel_needs_events_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FakeKernel(tmp_path)


def test_every_fixture_format_parses(fake: FakeKernel) -> None:
    count = 0
    for cat, ev in fake.tracepoints():
        fmt = fake.tracepoint_format(cat, ev)
        assert fmt is not None, (cat, ev)
        assert fmt.id > 0 and fmt.common_fields, (cat, ev)
        for f in fmt.fields:
            assert fmt.field_type(f.name) is not None
            count += 1
        fmt.args_struct()
    assert count > 2000


def test_list_tracepoints_skips_files(tmp_path: Path) -> None:
    events = tmp_path / "events"
    (events / "cat" / "ev").mkdir(parents=True)
    (events / "cat" / "ev" / "format").write_text("format:\n")
    (events / "cat" / "enable").write_text("0\n")
    (events / "cat" / "filter").write_text("none\n")
    (events / "header_page").write_text("")
    (events / "enable").write_text("0\n")
    assert list_tracepoints(str(tmp_path)) == [("cat", "ev")]
    assert list_tracepoints(str(tmp_path / "missing")) == []
    assert read_format(str(tmp_path), "cat", "ev") == TracepointFormat("cat", "ev", -1, [], [], "")
    assert read_format(str(tmp_path), "cat", "enable") is None
    assert read_format(str(tmp_path), "cat/../cat", "ev") is None


def test_live_kernel_over_a_directory_caches() -> None:
    k = LiveKernel(str(FIXTURE))
    assert k.root == str(FIXTURE)
    a = k.tracepoint_format("sched", "sched_switch")
    assert a is not None and a is k.tracepoint_format("sched", "sched_switch")
    assert k.tracepoints() == FakeKernel(FIXTURE).tracepoints()


def test_live_kernel_btf_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    class GoodBtf:
        @staticmethod
        def load() -> str:
            return "btf!"

    class BadBtf:
        @staticmethod
        def load() -> str:
            raise OSError("no /sys/kernel/btf/vmlinux")

    for cls, expected in ((GoodBtf, "btf!"), (BadBtf, None)):
        mod = pytypes.ModuleType("pytrace.kernel.btf")
        mod.Btf = cls  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "pytrace.kernel.btf", mod)
        k = LiveKernel(str(FIXTURE))
        assert k.btf() == expected
        assert k.btf() == expected
    monkeypatch.setitem(sys.modules, "pytrace.kernel.btf", None)  # import fails
    assert LiveKernel(str(FIXTURE)).btf() is None


# --- tracefs_root ----------------------------------------------------------


def test_tracefs_root_from_mounts(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "sysfs /sys sysfs rw 0 0\n"
        "tracefs /sys/kernel/debug/tracing tracefs rw 0 0\n"
        "nodev /sys/kernel/tracing tracefs rw,relatime 0 0\n")
    assert tracefs_root(mounts_file=str(mounts)) == "/sys/kernel/tracing"
    mounts.write_text("tracefs /sys/kernel/debug/tracing tracefs rw 0 0\n")
    assert tracefs_root(mounts_file=str(mounts)) == "/sys/kernel/debug/tracing"
    mounts.write_text("nodev /mnt/my\\040trace tracefs rw 0 0\n")
    assert tracefs_root(mounts_file=str(mounts)) == "/mnt/my trace"


def test_tracefs_root_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text("sysfs /sys sysfs rw 0 0\n")
    with pytest.raises(TracefsUnavailable) as info:
        tracefs_root(mount=False, mounts_file=str(mounts))
    assert isinstance(info.value, EnvironmentProblem)
    assert str(info.value) == "tracefs is not mounted" and "mount -t tracefs" in (info.value.hint or "")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(TracefsUnavailable, match="only root"):
        tracefs_root(mount=True, mounts_file=str(mounts))


def test_environment_problem() -> None:
    e = EnvironmentProblem("no tracefs", "mount it")
    assert str(e) == "no tracefs" and e.message == "no tracefs" and e.hint == "mount it"
    assert EnvironmentProblem("x").hint is None


# --- the live kernel -------------------------------------------------------


@pytest.mark.kernel
@needs_root
def test_live_tracefs_root() -> None:
    root = tracefs_root()
    assert os.path.isdir(os.path.join(root, "events"))


@pytest.mark.kernel
@needs_root
def test_live_list_tracepoints_is_fast() -> None:
    root = tracefs_root()
    list_tracepoints(root)  # warm the dentry cache, as any second run would be
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        tps = list_tracepoints(root)
        best = min(best, time.perf_counter() - start)
    assert len(tps) > 1000 and ("sched", "sched_switch") in tps
    assert best < 0.05, f"list_tracepoints took {best * 1000:.1f} ms"


@pytest.mark.kernel
@needs_root
def test_live_agrees_with_fixture(fake: FakeKernel) -> None:
    """Where the running kernel's format text equals the fixture's, both
    KernelInfos must give the same parse (id aside: it is per boot)."""
    live = LiveKernel()
    live_set = set(live.tracepoints())
    compared = set()
    for cat, ev in fake.tracepoints():
        if (cat, ev) not in live_set:
            continue
        fixture_text = (FIXTURE / "events" / cat / ev / "format").read_text()
        live_text = Path(live.root, "events", cat, ev, "format").read_text()
        if _without_id(fixture_text) != _without_id(live_text):
            continue  # the fixture came from another kernel build
        a, b = live.tracepoint_format(cat, ev), fake.tracepoint_format(cat, ev)
        assert a is not None and b is not None
        assert (a.fields, a.common_fields, a.print_fmt) == (b.fields, b.common_fields, b.print_fmt), (cat, ev)
        compared.add((cat, ev))
    assert ("syscalls", "sys_enter_openat") in compared
    assert ("sched", "sched_switch") in compared


def _without_id(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("ID:"))


@pytest.mark.kernel
@needs_root
def test_live_mounts_tracefs_when_missing() -> None:
    """In a forked child with a private mount namespace, unmount every
    tracefs and check tracefs_root() mounts it again.  The namespace is made
    private before anything is unmounted, so the host's mounts are untouched."""
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            code = _child_remount()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), status
    assert os.WEXITSTATUS(status) == 0, f"child failed at step {os.WEXITSTATUS(status)}"


def _child_remount() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newns, ms_rec, ms_private, mnt_detach = 0x00020000, 0x4000, 0x40000, 2
    if libc.unshare(clone_newns) != 0:
        return 2
    if libc.mount(b"none", b"/", None, ms_rec | ms_private, None) != 0:
        return 3
    with open("/proc/self/mountinfo") as fh:
        if any("shared:" in line for line in fh):
            return 4  # still propagating to the host: do not unmount anything
    for path in reversed(tracefs._tracefs_mounts("/proc/self/mounts")):
        if libc.umount2(path.encode(), mnt_detach) != 0:
            return 5
    if tracefs._tracefs_mounts("/proc/self/mounts"):
        return 6
    root = tracefs_root()
    if root != tracefs.TRACEFS_PATH or not os.path.isdir(os.path.join(root, "events")):
        return 7
    return 0 if tracefs._tracefs_mounts("/proc/self/mounts") == [root] else 8
