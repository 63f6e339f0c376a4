"""The REPL's completer (pytrace/repl/complete.py), driven as prompt-toolkit
drives it: a Document and a CompleteEvent, exact completion texts.

Most cases use a catalog with fixed lists and the tracefs fixture
(tests/data/tracefs) as the kernel, so they give the same answers on every
machine; those marked ``kernel`` ask the live kernel."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from prompt_toolkit.completion import CompleteEvent, Completion
from prompt_toolkit.document import Document

from pytrace.builtins.registry import default_registry
from pytrace.kernel.info import FakeKernel
from pytrace.repl.commands import command_table
from pytrace.repl.complete import ProbeCatalog, PytraceCompleter, locate
from pytrace.repl.state import ReplState

DATA = Path(__file__).resolve().parents[1] / "data"
FAKE_KERNEL = FakeKernel(DATA / "tracefs")
SCHED = [e for c, e in FAKE_KERNEL.tracepoints() if c == "sched"]
SOFTWARE = ["cpu-clock:", "cpu:", "cs:", "page-faults:"]
UNITS = ["hz:", "ms:", "s:", "us:"]
ITERATORS = ["task", "task_file", "task_vma"]
BINARIES = ["bash", "bashbug", "libc.so.6", "python3"]
SYMBOLS = {"/bin/prog": ["main", "read_line", "read_config", "write"],
           "bash": ["readline", "readline_internal_char"]}
USDT = {"/bin/prog": ["app:start", "app:stop", "lib:init"]}


class Lister:
    """A target lister that counts its calls and fails on unknown binaries."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, kind: str, binary: str) -> list[str]:
        self.calls.append((kind, binary))
        return (SYMBOLS if kind == "uprobe" else USDT)[binary]   # KeyError: not a binary


def fake_catalog(**kw: object) -> ProbeCatalog:
    sources = {"tracepoint": lambda: [f"{c}:{e}" for c, e in FAKE_KERNEL.tracepoints()],
               "rawtracepoint": lambda: SCHED, "software": lambda: SOFTWARE, "interval": lambda: UNITS,
               "profile": lambda: UNITS, "iter": lambda: ITERATORS}
    args = dict(sources=sources, binaries=lambda: BINARIES, target_lister=Lister(), slow_wait=5.0)
    args.update(kw)
    cat = ProbeCatalog(FAKE_KERNEL, **args)  # type: ignore[arg-type]
    assert cat.wait_ready(10)
    return cat


@pytest.fixture
def state() -> ReplState:
    return ReplState(commands=command_table(), map_names={"@seen", "@"}, variable_names={"$old"})


@pytest.fixture
def comp(state: ReplState, tmp_path: Path) -> PytraceCompleter:
    stdlib = tmp_path / "stdlib"
    (stdlib / "net").mkdir(parents=True)
    (stdlib / "net" / "tcp.pt").write_text("")
    (stdlib / "opensnoop.pt").write_text("")
    return PytraceCompleter(state, fake_catalog(), stdlib=[stdlib])


def complete(c: PytraceCompleter, text: str, requested: bool = True) -> list[Completion]:
    return list(c.get_completions(Document(text), CompleteEvent(completion_requested=requested)))


def texts(c: PytraceCompleter, text: str, requested: bool = True) -> list[str]:
    return [x.text for x in complete(c, text, requested)]


def shown(c: PytraceCompleter, text: str, requested: bool = True) -> list[str]:
    return [x.display_text for x in complete(c, text, requested)]


# ---------------------------------------------------------------- attach points
def test_provider_names_at_the_start(comp: PytraceCompleter) -> None:
    assert texts(comp, "tr") == ["tracepoint:"]
    assert texts(comp, "t") == ["t:", "tracepoint:"]
    assert texts(comp, "BE") == ["BEGIN"]
    # Aliases say what they stand for.
    got = complete(comp, "u")
    assert [x.text for x in got] == ["u:", "uprobe:", "ur:", "uretprobe:", "usdt:"]
    assert [x.display_meta_text for x in got if len(x.text) < 4] == ["alias of uprobe", "alias of uretprobe"]
    assert "tracepoint:category:event" in complete(comp, "tracep")[0].display_meta_text
    assert texts(comp, "con") == ["config"]
    # Every provider and alias on Tab with nothing typed; nothing while typing.
    everything = texts(comp, "")
    assert {"tracepoint:", "t:", "BEGIN", "end", "iter:", "it:", "import", "macro"} <= set(everything)
    assert texts(comp, "", requested=False) == []


def test_tracepoint_categories_then_events(comp: PytraceCompleter) -> None:
    got = complete(comp, "tracepoint:sche")
    assert [(x.text, x.display_text, x.display_meta_text, x.start_position) for x in got] == [
        ("tracepoint:sched:", "sched:", f"{len(SCHED)} probes", -len("tracepoint:sche"))]
    got = complete(comp, "tracepoint:sched:sched_sw")
    assert [(x.text, x.display_text) for x in got] == [
        ("tracepoint:sched:sched_swap_numa", "sched_swap_numa"), ("tracepoint:sched:sched_switch", "sched_switch")]
    assert texts(comp, "t:sched:sched_swi") == ["t:sched:sched_switch"]
    assert len(texts(comp, "tracepoint:")) == len(FAKE_KERNEL.categories())
    # A wildcard is left as typed.
    assert texts(comp, "tracepoint:sched:sched_*") == []


def test_after_a_comma_and_in_a_second_probe(comp: PytraceCompleter) -> None:
    got = complete(comp, "tracepoint:sched:sched_switch, tracepoint:sche")
    assert [(x.text, x.start_position) for x in got] == [("tracepoint:sched:", -len("tracepoint:sche"))]
    assert texts(comp, "tracepoint:sched:sched_switch,t:sched:sched_swi") == ["t:sched:sched_switch"]
    assert texts(comp, "BEGIN { exit(); }\ntracepoint:sched:sched_swi") == ["tracepoint:sched:sched_switch"]
    assert texts(comp, "BEGIN < exit(); > tracepoint:sched:sched_swi") == ["tracepoint:sched:sched_switch"]
    assert texts(comp, "#include <x.h>\nstruct s { int a; };\nrawtracepoint:sched_swi") == \
        ["rawtracepoint:sched_switch"]
    # After an attach point and a blank, a '{' or '/' is expected: nothing.
    assert texts(comp, "tracepoint:sched:sched_switch ") == []


def test_other_kernel_providers(comp: PytraceCompleter) -> None:
    assert texts(comp, "software:c") == ["software:cpu-clock:", "software:cpu:", "software:cs:"]
    assert shown(comp, "interval:") == UNITS
    assert texts(comp, "profile:h") == ["profile:hz:"]
    assert texts(comp, "iter:task_") == ["iter:task_file", "iter:task_vma"]
    assert texts(comp, "rt:sched_wakeu") == ["rt:sched_wakeup", "rt:sched_wakeup_new"]
    # Providers with nothing listed (no kprobes here) and unknown ones: nothing.
    assert texts(comp, "kprobe:vfs_") == []
    assert texts(comp, "nosuch:x") == []


def test_uprobe_paths(comp: PytraceCompleter, tmp_path: Path) -> None:
    tmp_path = tmp_path / "bin"
    tmp_path.mkdir()
    (tmp_path / "prog").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "my app").write_text("")
    (tmp_path / ".hidden").write_text("")
    d = str(tmp_path)
    # Files end with ':' (the function comes next), directories with '/'.
    assert texts(comp, f"uprobe:{d}/pr") == [f"uprobe:{d}/prog:"]
    assert texts(comp, f"uprobe:{d}/su") == [f"uprobe:{d}/sub/"]
    got = complete(comp, f"uretprobe:{d}/")
    assert [x.display_text for x in got] == ["my app", "prog", "sub/"]
    # A path the grammar cannot take unquoted is quoted.
    assert texts(comp, f"uprobe:{d}/my") == [f'uprobe:"{d}/my app":']
    assert texts(comp, f'usdt:"{d}/my') == [f'usdt:"{d}/my app":']
    assert texts(comp, f"uprobe:{d}/.h") == [f"uprobe:{d}/.hidden:"]
    assert texts(comp, f"uprobe:{d}/nosuchdir/x") == []
    # Nothing typed: the file system from '/'.
    root = sorted(n for n in os.listdir("/") if not n.startswith("."))
    assert texts(comp, "uprobe:") == [f"uprobe:/{n}" + ("/" if os.path.isdir("/" + n) else ":") for n in root]
    # A bare name: programs on PATH and libraries.
    got = complete(comp, "uprobe:bas")
    assert [(x.text, x.display_meta_text) for x in got] == [("uprobe:bash:", "program"), ("uprobe:bashbug:", "program")]
    assert texts(comp, "u:libc") == ["u:libc.so.6:"]


def test_uprobe_symbols_and_usdt_probes(comp: PytraceCompleter) -> None:
    assert texts(comp, "uprobe:/bin/prog:read_") == ["uprobe:/bin/prog:read_config", "uprobe:/bin/prog:read_line"]
    assert texts(comp, "ur:/bin/prog:w") == ["ur:/bin/prog:write"]
    assert texts(comp, 'uprobe:"/bin/prog":ma') == ['uprobe:"/bin/prog":main']
    assert texts(comp, "uprobe:bash:readline_") == ["uprobe:bash:readline_internal_char"]
    got = complete(comp, "usdt:/bin/prog:")
    assert [(x.text, x.display_text, x.display_meta_text) for x in got] == [
        ("usdt:/bin/prog:app:", "app:", "2 probes"), ("usdt:/bin/prog:lib:", "lib:", "")]
    assert texts(comp, "usdt:/bin/prog:app:st") == ["usdt:/bin/prog:app:start", "usdt:/bin/prog:app:stop"]
    # A binary the lister fails on yields nothing, not an exception.
    assert texts(comp, "uprobe:/no/such/binary:ma") == []


def test_symbols_are_listed_once_per_binary(state: ReplState) -> None:
    lister = Lister()
    c = PytraceCompleter(state, fake_catalog(target_lister=lister))
    for typed in ("uprobe:/bin/prog:", "uprobe:/bin/prog:r", "uprobe:/bin/prog:re", "uretprobe:/bin/prog:w",
                  "usdt:/bin/prog:", "usdt:/bin/prog:a", "uprobe:/no/such:x", "uprobe:/no/such:xy"):
        texts(c, typed)
    assert sorted(lister.calls) == [("uprobe", "/bin/prog"), ("uprobe", "/no/such"), ("usdt", "/bin/prog")]


def test_kernel_lists_are_read_once(state: ReplState) -> None:
    cat = fake_catalog()
    c = PytraceCompleter(state, cat)
    for _ in range(50):
        assert texts(c, "tracepoint:sched:sched_swi") == ["tracepoint:sched:sched_switch"]
    assert cat.loads["tracepoint"] == 1 and cat.loads[" binaries"] == 1


def test_completion_does_not_wait_for_a_slow_listing(state: ReplState) -> None:
    release = threading.Event()
    updates: list[int] = []

    def slow() -> list[str]:
        release.wait(30)
        return ["sched:sched_switch"]

    cat = ProbeCatalog(FAKE_KERNEL, sources={"tracepoint": slow, "software": lambda: SOFTWARE},
                       binaries=lambda: BINARIES, on_update=lambda: updates.append(1), wait=0.001)
    c = PytraceCompleter(state, cat)
    try:
        # The listing is blocked until released: completion returns without it,
        # with what does not need it.
        assert texts(c, "tracepoint:sche") == []
        assert texts(c, "tr") == ["tracepoint:"]
        assert not release.is_set() and not cat.ready
    finally:
        release.set()
    assert cat.wait_ready(10)
    assert texts(c, "tracepoint:sche") == ["tracepoint:sched:"]
    assert texts(c, "software:cp") == ["software:cpu-clock:", "software:cpu:"]
    assert len(updates) >= 3   # one per list, and once everything is ready


def test_a_failing_listing_is_reported_not_raised(state: ReplState) -> None:
    def broken() -> list[str]:
        raise OSError("tracefs is not mounted")

    cat = fake_catalog(sources={"tracepoint": broken, "iter": lambda: ITERATORS})
    c = PytraceCompleter(state, cat)
    assert texts(c, "tracepoint:s") == []
    assert texts(c, "iter:task_v") == ["iter:task_vma"]
    assert cat.problems == ["cannot list tracepoint: tracefs is not mounted"]


def test_live_lister_on_a_file_that_is_not_a_binary(state: ReplState, tmp_path: Path) -> None:
    # The real uprobe/usdt listings (no kernel needed): a text file or a
    # missing path gives nothing.
    (tmp_path / "notelf").write_text("hello\n")
    cat = ProbeCatalog(FAKE_KERNEL, sources={}, binaries=lambda: [], slow_wait=5.0)
    c = PytraceCompleter(state, cat)
    assert texts(c, f"uprobe:{tmp_path}/notelf:ma") == []
    assert texts(c, f"usdt:{tmp_path}/notelf:") == []
    assert texts(c, f"uprobe:{tmp_path}/missing:ma") == []


# ---------------------------------------------------------------- probe bodies
def test_args_fields_of_the_probe(comp: PytraceCompleter) -> None:
    got = complete(comp, "tracepoint:syscalls:sys_enter_openat { args.")
    assert [(x.text, x.display_meta_text) for x in got] == [
        ("__syscall_nr", "int32"), ("dfd", "int64"), ("filename", "int8 *"), ("flags", "int64"), ("mode", "uint64")]
    assert texts(comp, "tracepoint:syscalls:sys_enter_openat { printf(\"%s\", str(args->fi") == ["filename"]
    assert texts(comp, "t:syscalls:sys_enter_openat /args -> fl") == ["flags"]
    assert texts(comp, "tracepoint:sched:sched_switch { @[args.next_") == ["next_comm", "next_pid", "next_prio"]
    # Several attach points: the fields they all have with the same type.
    assert texts(comp, "tracepoint:syscalls:sys_enter_openat,\n  tracepoint:syscalls:sys_enter_open { args.") == \
        ["__syscall_nr", "filename", "flags", "mode"]
    # No args in BEGIN, an unknown tracepoint or a field of something else.
    assert texts(comp, "BEGIN { args.") == []
    assert texts(comp, "tracepoint:sched:nosuch { args.") == []
    assert texts(comp, "tracepoint:sched:sched_switch { curtask->") == []


def test_probe_resolution_is_cached(state: ReplState) -> None:
    cat = fake_catalog()
    c = PytraceCompleter(state, cat)
    for typed in ("args.", "args.f", "args->fl", "$x = 1; args.m"):
        texts(c, "tracepoint:syscalls:sys_enter_openat { " + typed)
    assert cat.loads["resolve tracepoint:syscalls:sys_enter_openat"] == 1


def test_builtins_keywords_and_types(comp: PytraceCompleter) -> None:
    registry = default_registry()
    signature = {b.name: b.signature for b in registry.entries}
    got = complete(comp, "BEGIN { pri")
    assert [(x.text, x.display_meta_text) for x in got] == [("print", signature["print"]), ("printf", signature["printf"])]
    assert [(x.text, x.display_meta_text) for x in complete(comp, "BEGIN { @c = cou")] == \
        [("count", "@m = count()")]
    assert [(x.text, x.display_meta_text) for x in complete(comp, "BEGIN { printf(\"%d\", pi")] == \
        [("pid", next(b.doc for b in registry.entries if b.name == "pid"))]
    assert texts(comp, "BEGIN { whi") == ["while"]
    assert texts(comp, "BEGIN { let $x: uint3") == ["uint32"]
    assert texts(comp, "BEGIN { $b = tr") == ["true"]
    # Builtins meant for other probe types are left out.
    assert texts(comp, "tracepoint:sched:sched_switch { ov") == []
    assert texts(comp, "kprobe:vfs_read { ov") == ["override"]
    assert texts(comp, "uprobe:/bin/prog:main { uad") == ["uaddr"]
    assert texts(comp, "tracepoint:sched:sched_switch { uad") == []
    # In a predicate, in a '< >' block and in a macro.
    assert texts(comp, "tracepoint:sched:sched_switch /com") == ["comm"]
    assert texts(comp, "BEGIN < $x = 1; if ($x > 0) { com") == ["comm"]
    assert texts(comp, "macro f($x) { nse") == ["nsecs"]
    # On Tab with nothing typed: every builtin valid in the probe's type (from
    # the registry), the keywords and the types; nothing while typing.
    offered = set(texts(comp, "tracepoint:a:b { "))
    valid = {b.name for b in registry.entries if b.providers is None or "tracepoint" in b.providers}
    assert valid <= offered and {"if", "while", "uint64", "true"} <= offered
    assert not offered & ({b.name for b in registry.entries} - valid)
    assert texts(comp, "BEGIN { ", requested=False) == []


def test_maps_and_variables(comp: PytraceCompleter) -> None:
    # The session's names (state) and those written earlier in this input.
    assert texts(comp, "BEGIN { @x = 1; @y[1] = 2; print(@") == ["@seen", "@x", "@y"]
    assert texts(comp, "BEGIN { @x = 1; print(@s") == ["@seen"]
    assert [x.display_meta_text for x in complete(comp, "BEGIN { @s")] == ["map"]
    assert texts(comp, "BEGIN { $abc = 1; $abd = 2; $ab") == ["$abc", "$abd"]
    assert texts(comp, "BEGIN { $") == ["$old"]
    # Names inside strings and comments are not names.
    assert texts(comp, 'BEGIN { printf("@fake"); /* @gone */ @') == ["@seen"]


def test_nothing_inside_strings_and_comments(comp: PytraceCompleter) -> None:
    assert texts(comp, 'BEGIN { printf("pri') == []
    assert texts(comp, "BEGIN { // pri") == []
    assert texts(comp, "// tracepoint:sche") == []
    assert texts(comp, "/* tracepoint:sche") == []
    assert texts(comp, "struct s { int pri") == []
    assert texts(comp, "#include <tracepoint:sche") == []


def test_config_block(comp: PytraceCompleter) -> None:
    assert texts(comp, "config = { max_s") == ["max_strlen"]
    assert texts(comp, "config = {\n  max_strlen = 128;\n  stack_mode = p") == ["perf"]
    assert texts(comp, "config = { print_maps_on_exit = f") == ["false"]
    assert texts(comp, "config = { max_strlen = 1") == []


# ---------------------------------------------------------------- commands
def test_command_names(comp: PytraceCompleter, state: ReplState) -> None:
    assert texts(comp, ".") == ["." + n for n in sorted(state.commands)]
    got = complete(comp, ".he")
    assert [(x.text, x.display_meta_text, x.start_position) for x in got] == [
        (".help", state.commands["help"].help, -3)]
    assert texts(comp, ".nosuch x") == []


def test_command_arguments(comp: PytraceCompleter, tmp_path: Path) -> None:
    assert texts(comp, ".help s") == ["save", "set", "stop"]
    assert texts(comp, ".set ") == ["json"]
    assert texts(comp, ".set json o") == ["on", "off"]
    assert texts(comp, ".set json of") == ["off"]
    assert texts(comp, ".print @") == ["@seen"]
    assert texts(comp, ".clear @s") == ["@seen"]
    assert texts(comp, ".probes tracepoint:sche") == ["tracepoint:sched:"]
    assert texts(comp, ".info t:sched:sched_swi") == ["t:sched:sched_switch"]
    assert texts(comp, ".import ") == ["net/tcp.pt", "opensnoop.pt"]
    assert texts(comp, ".import o") == ["opensnoop.pt"]
    assert texts(comp, ".stop ") == []
    assert texts(comp, ".jobs ") == []
    (tmp_path / "script.pt").write_text("")
    # prompt-toolkit's PathCompleter: the rest of the name is inserted.
    got = complete(comp, f".load {tmp_path}/scr")
    assert [(x.text, x.display_text) for x in got] == [("ipt.pt", "script.pt")]


def test_stdlib_of_the_checkout_is_found(state: ReplState) -> None:
    c = PytraceCompleter(state, fake_catalog())
    root = Path(__file__).resolve().parents[2] / "stdlib"
    expected = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.pt"))
    assert c.stdlib_names() == expected


# ---------------------------------------------------------------- robustness
def test_locate() -> None:
    assert locate("").kind == "attach"
    assert locate("BEGIN { x").kind == "expr"
    assert locate("t:a:b /x").probe == "t:a:b "
    assert locate("t:a:b, t:c:d { x").probe == "t:a:b, t:c:d "
    assert locate("BEGIN { } ").kind == "attach"
    assert locate('import "x').kind == "none"
    assert locate("config = { a").kind == "config"


WORDS = ["tracepoint:", "uprobe:", "usdt:", "/", "/bin/", "{", "}", "<", ">", "(", ")", ";", ",", '"', "//",
         "/*", "*/", "\n", " ", "args", ".", "->", "@", "$", "#", "struct s {", "config = {", "macro f() {",
         ".load ", ".set ", ".help ", "import ", "pri", "sched:", "\\", "*"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(WORDS), max_size=12).map("".join)))
def test_completion_never_raises(comp: PytraceCompleter, text: str) -> None:
    for requested in (True, False):
        result = comp.complete(text, requested)   # raises on a bug (get_completions would hide it)
        for c in result:
            assert isinstance(c, Completion) and -c.start_position <= len(text)


# ---------------------------------------------------------------- live kernel
@pytest.fixture(scope="module")
def live() -> PytraceCompleter:
    cat = ProbeCatalog(slow_wait=5.0)
    assert cat.wait_ready(30)
    return PytraceCompleter(ReplState(commands=command_table()), cat)


@pytest.mark.kernel
def test_live_tracepoints(live: PytraceCompleter) -> None:
    assert texts(live, "tracepoint:sche") == ["tracepoint:sched:"]
    assert "sched_switch" in shown(live, "tracepoint:sched:sched_sw")
    assert texts(live, "tracepoint:sched:sched_swi") == ["tracepoint:sched:sched_switch"]
    assert texts(live, "tracepoint:syscalls:sys_enter_openat2 { args.") == \
        ["__syscall_nr", "dfd", "filename", "how", "usize"]
    got = complete(live, "tracepoint:syscalls:sys_enter_openat { args.")
    assert [x.text for x in got] == ["__syscall_nr", "dfd", "filename", "flags", "mode"]
    assert [x.display_meta_text for x in got if x.text == "filename"] == ["int8 *"]


@pytest.mark.kernel
def test_live_other_providers(live: PytraceCompleter) -> None:
    assert texts(live, "rawtracepoint:sched_swi") == ["rawtracepoint:sched_switch"]
    assert texts(live, "rawtracepoint:sched_switch { args->prev_") == ["prev_state"]
    assert texts(live, "iter:task_f") == ["iter:task_file"]
    assert texts(live, "software:cpu-c") == ["software:cpu-clock:"]
    assert texts(live, "interval:h") == ["interval:hz:"]
    assert texts(live, "profile:m") == ["profile:ms:"]


def test_live_uprobe_and_usdt_listings() -> None:
    # The providers' own listings of real binaries (no root needed).
    bash, python = shutil.which("bash"), "/usr/bin/python3"
    if bash is None or not os.path.exists(python):
        pytest.skip("needs bash and /usr/bin/python3")
    c = PytraceCompleter(ReplState(), ProbeCatalog(FAKE_KERNEL, sources={}, slow_wait=10.0))
    assert texts(c, f"uprobe:{bash}:readline_internal_t") == [f"uprobe:{bash}:readline_internal_teardown"]
    assert texts(c, "uprobe:bash:readline_internal_t") == ["uprobe:bash:readline_internal_teardown"]
    probes = texts(c, f"usdt:{python}:python:function__")
    assert probes in ([], [f"usdt:{python}:python:function__entry", f"usdt:{python}:python:function__return"])
    if not probes:
        pytest.skip(f"{python} has no USDT probes")


def test_catalog_starts_at_once() -> None:
    # Construction starts the thread and returns: the listing itself runs
    # later (the source blocks until released).
    release = threading.Event()
    started = time.monotonic()
    cat = ProbeCatalog(FAKE_KERNEL, sources={"tracepoint": lambda: release.wait(30) and []}, binaries=lambda: [])
    assert time.monotonic() - started < 5 and not cat.ready
    release.set()
    assert cat.wait_ready(10)
