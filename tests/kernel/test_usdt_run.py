"""USDT probes end to end under pytrace: a C program built here with
<sys/sdt.h> (arguments of every size and sign in registers, globals, struct
fields, array elements, constants, an -O0 frame, a probe inlined at three
sites, one guarded by a semaphore), traced with -c, -p and system-wide;
exact hit counts and argument values.  test_usdt_diff.py runs bpftrace 0.17
on the same program; this module also holds the program and its expected
output for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from .difflib_pt import pytrace_only, run_both
from .harness import Result

pytestmark = pytest.mark.kernel

USDT_C = r"""
#include <sys/sdt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec { char tag; short s; int i; long l; unsigned int arr[4]; };
struct rec g_rec = { 'x', -300, -70000, 1L << 40, { 7, 8, 9, 4000000000u } };
long g_long = -5000000000L;
signed char g_s8 = -3;
unsigned short g_u16 = 65000;
int g_arr[8] = { 10, -11, 12, -13, 14, -15, 16, -17 };
const char *g_name = "hello-usdt";

__attribute__((noinline)) void regs(int8_t a, uint8_t b, int16_t c, uint16_t d, int32_t e, uint32_t f) {
    DTRACE_PROBE6(demo, regs, a, b, c, d, e, f);
}
__attribute__((noinline)) void wide(int64_t a, uint64_t b, int i) { DTRACE_PROBE3(demo, wide, a, b, i); }
/* Globals: sym(%rip) operands (PIE), sym(,%reg,4) without -fpic. */
__attribute__((noinline)) void globals(int i) {
    DTRACE_PROBE6(demo, globals, g_long, g_s8, g_u16, g_rec.s, g_rec.arr[3], g_arr[i & 7]);
}
__attribute__((noinline)) void absidx(long i) { DTRACE_PROBE2(demo, absidx, g_arr[i & 7], g_arr[(i + 1) & 7]); }
/* Memory at a register plus offset, with an index register. */
__attribute__((noinline)) void structp(struct rec *r, int i) {
    DTRACE_PROBE5(demo, structp, r->tag, r->i, r->l, r->arr[i & 3], r->s);
}
__attribute__((noinline)) void consts(void) { DTRACE_PROBE3(demo, consts, 42, -7, 0x7fffffffffffffffL); }
/* -O0: every argument spilled to the frame, addressed off %rbp. */
__attribute__((noinline, optimize("O0"))) void frame(int a, uint16_t b, long c, signed char d) {
    DTRACE_PROBE4(demo, frame, a, b, c, d);
}
__attribute__((noinline)) void strs(const char *s, int n) { DTRACE_PROBE2(demo, str, s, n); }
/* One probe, three sites: each function has its own copy. */
static inline __attribute__((always_inline)) void inl(int x) { DTRACE_PROBE1(demo, inl, x); }
__attribute__((noinline)) void site_a(int i) { inl(i); }
__attribute__((noinline)) void site_b(int i) { inl(i + 100); }
__attribute__((noinline)) void site_c(int i) { inl(i + 200); }
void guarded(long c, int *seen);

static int seen;   /* how often guarded() found its semaphore set */

static void fire(int n) {
    char word[32];
    for (int i = 0; i < n; i++) {
        regs(-1 - i, 200 + i, -30000 + i, 60000 + i, -2000000000 + i, 4000000000u + i);
        wide(-9000000000000000000L + i, 18000000000000000000UL + i, i);
        globals(i);
        absidx(i);
        structp(&g_rec, i);
        consts();
        frame(-i, 65535 - i, 1L << 50, -128 + i);
        snprintf(word, sizeof word, "word-%d", i);
        strs(word, i);
        strs(g_name, -i);
        site_a(i); site_b(i); site_c(i); site_a(i);
        guarded(i, &seen);
    }
}

/* usdtprog N: fire N rounds, say on stderr how many saw the semaphore.
   usdtprog -: say "ready", then for each line N on stdin fire N rounds and
   answer on stdout how many rounds so far saw the semaphore. */
int main(int argc, char **argv) {
    char line[64];
    if (argc > 1 && strcmp(argv[1], "-") == 0) {
        printf("ready\n");   /* in main: every library is mapped */
        fflush(stdout);
        while (fgets(line, sizeof line, stdin)) {
            fire(atoi(line));
            printf("seen=%d\n", seen);
            fflush(stdout);
        }
        return 0;
    }
    fire(argc > 1 ? atoi(argv[1]) : 1);
    fprintf(stderr, "seen=%d\n", seen);
    return 0;
}
"""

# The semaphore must be declared for the whole translation unit that
# defines _SDT_HAS_SEMAPHORES, so the guarded probe has a file of its own.
GUARDED_C = r"""
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
unsigned short demo_guarded_semaphore __attribute__((unused, section(".probes")));
/* What `dtrace -h` generates for a provider's probe. */
#define DEMO_GUARDED_ENABLED() __builtin_expect(demo_guarded_semaphore, 0)
__attribute__((noinline)) void guarded(long c, int *seen) {
    if (DEMO_GUARDED_ENABLED()) {   /* the semaphore is non-zero while traced */
        (*seen)++;
        DTRACE_PROBE1(demo, guarded, c);
    }
}
"""

# (name, gcc flags): PIE -O2 (registers, sym(%rip), base+index), non-PIE
# without -fpic (base-less sym(,%reg,4)), -O0 (everything in the frame).
BUILDS = {"pie-O2": ("-O2",), "nopie-O2": ("-O2", "-no-pie", "-fno-pic"), "O0": ("-O0",)}
PROBE_NAMES = ["absidx", "consts", "frame", "globals", "guarded", "inl", "regs", "str", "structp", "wide"]


def _sdt_compiles(tmp: Path) -> bool:
    src = tmp / "check.c"
    src.write_text("#include <sys/sdt.h>\nint main(void) { DTRACE_PROBE(a, b); return 0; }\n")
    return subprocess.run(["gcc", "-c", "-o", str(tmp / "check.o"), str(src)], capture_output=True).returncode == 0


def ensure_sdt_h(tmp: Path) -> None:
    """Make sure <sys/sdt.h> compiles, installing systemtap-sdt-dev (as root)
    when it is missing, as CI's scripts/test does."""
    if not shutil.which("gcc"):
        pytest.skip("needs gcc")
    if _sdt_compiles(tmp):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "systemtap-sdt-dev"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    assert _sdt_compiles(tmp), "systemtap-sdt-dev is installed but <sys/sdt.h> does not compile"


def build_usdt_prog(directory: Path, flags: tuple[str, ...] = BUILDS["pie-O2"], name: str = "usdtprog") -> str:
    ensure_sdt_h(directory)
    (directory / "usdtprog.c").write_text(USDT_C)
    (directory / "guarded.c").write_text(GUARDED_C)
    exe = directory / name
    subprocess.run(["gcc", *flags, "-o", str(exe), str(directory / "usdtprog.c"), str(directory / "guarded.c")],
                   check=True)
    return str(exe)


def run_usdt_prog(exe: str, n: int) -> int:
    """Run ``exe n``; returns how many rounds saw the semaphore set."""
    r = subprocess.run([exe, str(n)], capture_output=True, text=True, check=True)
    return int(r.stderr.strip().removeprefix("seen="))


class Held:
    """``usdtprog -`` running and waiting on stdin, for -p."""

    def __init__(self, exe: str) -> None:
        self.proc = subprocess.Popen([exe, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "ready\n"

    def fire(self, n: int) -> int:
        """n rounds; returns how many rounds so far saw the semaphore set."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline().strip().removeprefix("seen="))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


# What the one-printf-per-probe script below prints for round i.
ARGS_SCRIPT = """
usdt:{p}:demo:regs {{ printf("regs %ld %ld %ld %ld %ld %ld\\n", arg0, arg1, arg2, arg3, arg4, arg5); }}
usdt:{p}:demo:wide {{ printf("wide %ld %lu %ld\\n", arg0, arg1, arg2); }}
usdt:{p}:demo:structp {{ printf("structp %ld %ld %ld %lu %ld\\n", arg0, arg1, arg2, arg3, arg4); }}
usdt:{p}:demo:consts {{ printf("consts %ld %ld %ld\\n", arg0, arg1, arg2); }}
usdt:{p}:demo:frame {{ printf("frame %ld %lu %ld %ld\\n", arg0, arg1, arg2, arg3); }}
usdt:{p}:demo:str {{ printf("str %s %ld\\n", str(arg0), arg1); }}
"""
# Globals bpftrace 0.17 cannot read (bcc: "deref ident is not handled yet").
GLOBALS_SCRIPT = """
usdt:{p}:demo:globals {{ printf("globals %ld %ld %ld %ld %lu %ld\\n", arg0, arg1, arg2, arg3, arg4, arg5); }}
usdt:{p}:demo:absidx {{ printf("absidx %ld %ld\\n", arg0, arg1); }}
"""
G_ARR = [10, -11, 12, -13, 14, -15, 16, -17]
REC_ARR = [7, 8, 9, 4000000000]


def expected_args(n: int, with_globals: bool = False) -> Counter[str]:
    out: Counter[str] = Counter()
    for i in range(n):
        out[f"regs {-1 - i} {200 + i} {-30000 + i} {60000 + i} {-2000000000 + i} {4000000000 + i}"] += 1
        out[f"wide {-9000000000000000000 + i} {18000000000000000000 + i} {i}"] += 1
        out[f"structp {ord('x')} -70000 {1 << 40} {REC_ARR[i & 3]} -300"] += 1
        out["consts 42 -7 9223372036854775807"] += 1
        out[f"frame {-i} {65535 - i} {1 << 50} {-128 + i}"] += 1
        out[f"str word-{i} {i}"] += 1
        out[f"str hello-usdt {-i}"] += 1
        if with_globals:
            out[f"globals -5000000000 -3 65000 -300 4000000000 {G_ARR[i & 7]}"] += 1
            out[f"absidx {G_ARR[i & 7]} {G_ARR[(i + 1) & 7]}"] += 1
    return out


def lines(text: str) -> Counter[str]:
    return Counter(ln for ln in text.split("\n") if ln)


def pytrace(script: str, workload=None, **kw) -> Result:  # type: ignore[no-untyped-def]
    r = run_both(script, workload, tools=("pytrace",), **kw)["pytrace"]
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.fixture(scope="module")
def progs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {name: build_usdt_prog(tmp_path_factory.mktemp(name), flags) for name, flags in BUILDS.items()}


@pytest.fixture
def held(progs: dict[str, str]) -> Iterator[Held]:
    h = Held(progs["pie-O2"])
    yield h
    h.close()


# ------------------------------------------------------------------ arguments

@pytest.mark.parametrize("build", list(BUILDS))
def test_every_argument_exact(progs: dict[str, str], build: str) -> None:
    """Registers of 1/2/4/8 bytes signed and unsigned, frame slots, struct
    fields through a pointer with an index register, constants, globals by
    %rip and by absolute address, str() of a pointer argument."""
    exe = progs[build]
    script = (ARGS_SCRIPT + GLOBALS_SCRIPT).format(p=exe)
    out = pytrace_only(script, tool_args=["-c", f"{exe} 4"], wait_exit=True)
    assert lines(out) == expected_args(4, with_globals=True)


def test_inlined_probe_has_one_program_per_site(progs: dict[str, str]) -> None:
    exe = progs["pie-O2"]
    r = pytrace(f"usdt:{exe}:demo:inl {{ @[probe, arg0] = count(); }}",
                tool_args=["-c", f"{exe} 3"], wait_exit=True)
    assert r.rc == 0, r.stderr
    assert "Attaching 3 probes..." in r.stdout
    # probe is the probe's name, once for its three sites.
    assert lines(r.body) == Counter([f"@[usdt:{exe}:demo:inl, {i}]: 2" for i in range(3)] +
                                    [f"@[usdt:{exe}:demo:inl, {i + k}]: 1" for i in range(3) for k in (100, 200)])


def test_wildcards_and_any_provider(progs: dict[str, str]) -> None:
    exe = progs["O0"]
    r = pytrace(f"usdt:{exe}:d?mo:* {{ @[probe] = count(); }} usdt:{exe}:s* {{ @s[probe] = count(); }}",
                tool_args=["-c", f"{exe} 2"], wait_exit=True)
    assert r.rc == 0, r.stderr
    # 10 probes, inl with three sites; s* (any provider): str and structp.
    assert "Attaching 14 probes..." in r.stdout
    counts = {name: 2 for name in PROBE_NAMES} | {"inl": 8, "str": 4, "guarded": 2}
    assert lines(r.body) == Counter([f"@[usdt:{exe}:demo:{n}]: {c}" for n, c in counts.items()] +
                                    [f"@s[usdt:{exe}:demo:str]: 4", f"@s[usdt:{exe}:demo:structp]: 2"])


# ------------------------------------------------------------------ semaphores

def test_semaphore_is_set_only_while_traced(progs: dict[str, str]) -> None:
    """A uprobe with ref_ctr_offset makes the kernel increment the
    semaphore in every process that maps the binary (system-wide here);
    tracing another probe of the same binary leaves it at 0."""
    exe = progs["pie-O2"]
    assert run_usdt_prog(exe, 3) == 0
    seen: list[int] = []
    out = pytrace_only(f"usdt:{exe}:demo:guarded {{ @[arg0] = count(); }}",
                       lambda: seen.append(run_usdt_prog(exe, 3)))
    assert seen == [3]
    assert lines(out) == Counter(f"@[{i}]: 1" for i in range(3))
    seen.clear()
    pytrace_only(f"usdt:{exe}:demo:consts {{ @ = count(); }}", lambda: seen.append(run_usdt_prog(exe, 2)))
    assert seen == [0]
    assert run_usdt_prog(exe, 1) == 0  # detached: back to 0


def test_semaphore_with_c(progs: dict[str, str]) -> None:
    """-c: the child is held before exec while the uprobe is registered;
    the kernel counts the semaphore when the exec maps the binary."""
    exe = progs["nopie-O2"]
    r = pytrace(f"usdt:{exe}:demo:guarded {{ @ = count(); @sum = sum(arg0); }}",
                tool_args=["-c", f"{exe} 5"], wait_exit=True)
    assert r.rc == 0, r.stderr
    assert "seen=5" in r.stderr
    assert lines(r.body) == Counter(["@: 5", "@sum: 10"])


# ------------------------------------------------------------------ -p

def test_pid_without_path_searches_the_process(progs: dict[str, str], held: Held) -> None:
    """-p: usdt:name, usdt:*:name, usdt::provider:name and (beyond bpftrace
    0.17) usdt:provider:name; files are named through /proc/PID/root.
    Another process running the same binary is neither traced nor has its
    semaphore set."""
    exe = progs["pie-O2"]
    other = Held(exe)
    seen: dict[str, int] = {}

    def work() -> None:
        seen["other"] = other.fire(2)
        seen["held"] = held.fire(2)

    try:
        r = pytrace("usdt:guarded { @g[probe] = count(); } usdt:*:inl { @i = count(); } "
                    "usdt::demo:consts { @c = count(); } usdt:demo:str { @s = count(); }",
                    work, tool_args=["-p", str(held.pid)])
    finally:
        other.close()
    assert r.rc == 0, r.stderr
    assert "Attaching 6 probes..." in r.stdout
    assert seen == {"other": 0, "held": 2}
    assert lines(r.body) == Counter([f"@g[usdt:/proc/{held.pid}/root{exe}:demo:guarded]: 2", "@i: 8", "@c: 2",
                                     "@s: 4"])


def test_pid_with_path(progs: dict[str, str], held: Held) -> None:
    exe = progs["pie-O2"]
    script = ARGS_SCRIPT.format(p=exe) + f"usdt:{exe}:demo:inl {{ @[probe] = count(); }}"
    r = pytrace(script, lambda: held.fire(3), tool_args=["-p", str(held.pid)])
    assert r.rc == 0, r.stderr
    expected = expected_args(3) + Counter([f"@[usdt:/proc/{held.pid}/root{exe}:demo:inl]: 12"])
    assert lines(r.body) == expected


# ------------------------------------------------------------------ listing

def _pytrace_cli(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "pytrace", *args], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_listing(progs: dict[str, str], held: Held) -> None:
    exe = progs["pie-O2"]
    r = _pytrace_cli("-l", f"usdt:{exe}:*")
    assert r.returncode == 0 and r.stdout.splitlines() == [f"usdt:{exe}:demo:{n}" for n in PROBE_NAMES]
    assert _pytrace_cli("-lv", f"usdt:{exe}:*").stdout == r.stdout  # bpftrace prints no arguments either
    r = _pytrace_cli("-l", f"usdt:{exe}:*:s*")
    assert r.stdout.splitlines() == [f"usdt:{exe}:demo:str", f"usdt:{exe}:demo:structp"]
    r = _pytrace_cli("-l", f"usdt:{exe}:inl")
    assert r.stdout.splitlines() == [f"usdt:{exe}:demo:inl"]
    r = _pytrace_cli("-l", "usdt:*", "-p", str(held.pid))
    assert r.returncode == 0
    assert r.stdout.splitlines() == [f"usdt:/proc/{held.pid}/root{exe}:demo:{n}" for n in PROBE_NAMES]
    r = _pytrace_cli("-l", f"usdt:{exe}:demo:s*", "-p", str(held.pid))
    assert r.stdout.splitlines() == [f"usdt:/proc/{held.pid}/root{exe}:demo:{n}" for n in ("str", "structp")]


# ------------------------------------------------------------------ errors

@pytest.fixture(scope="module")
def odd_files(progs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("odd")
    (tmp / "plain.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-o", str(tmp / "plain"), str(tmp / "plain.c")], check=True)
    stripped = tmp / "stripped"
    shutil.copy(progs["pie-O2"], stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    return {"plain": str(tmp / "plain"), "source": str(tmp / "plain.c"), "stripped": str(stripped)}


@pytest.mark.parametrize("attach, message", [
    ("{exe}:demo:inll", "error: usdt probe not found: demo:inll\n"),
    ("{exe}:dmeo:regs", "hint: did you mean 'demo:regs'?"),
    ("{exe}:wdie", "hint: did you mean 'wide'?"),
    ("{plain}:a:b", "error: {plain} has no USDT probes (no .note.stapsdt notes)"),
    ("{source}:a:b", "error: cannot read the USDT probes of {source}: not an ELF file"),
    ("{plain}x:a:b", "error: binary or library not found: {plain}x"),
    ("*:demo:inl", "error: a binary is needed: without -p there is no process to search"),
    ("demo:inl", "error: binary or library not found: demo"),
])
def test_resolution_errors(progs: dict[str, str], odd_files: dict[str, str], attach: str, message: str) -> None:
    names = {"exe": progs["pie-O2"], **odd_files}
    r = _pytrace_cli("--dry-run", "-e", f"usdt:{attach.format(**names)} {{ @ = count(); }}")
    assert r.returncode != 0
    assert message.format(**names) in r.stderr


def test_stripped_binary_arguments(odd_files: dict[str, str]) -> None:
    """A stripped PIE loses the symbols of its sym(%rip) operands: the probe
    still attaches and counts, and using an argument says why it cannot."""
    exe = odd_files["stripped"]
    r = pytrace(f"usdt:{exe}:demo:globals {{ @ = count(); }}", tool_args=["-c", f"{exe} 3"], wait_exit=True)
    assert r.rc == 0 and lines(r.body) == Counter(["@: 3"])
    assert "warning: usdt probe demo:globals: arg0 cannot be read: argument '-8@g_long(%rip)': " \
           "symbol 'g_long' not found" in r.stderr
    r = _pytrace_cli("--dry-run", "-e", f"usdt:{exe}:demo:globals {{ @ = arg1; }}")
    assert r.returncode != 0
    assert f"error: 'arg1' of usdt:{exe}:demo:globals cannot be read: argument '-8@g_long(%rip)': " \
           "symbol 'g_long' not found" in r.stderr
    # Probes whose operands are registers are untouched by stripping.
    out = pytrace_only(ARGS_SCRIPT.format(p=exe), tool_args=["-c", f"{exe} 2"], wait_exit=True)
    assert lines(out) == expected_args(2)
