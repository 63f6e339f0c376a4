"""USDT probes: bpftrace 0.17 and pytrace on the same program and the same
run (the program of test_usdt_run.py, /usr/bin/python3.11's probes):
argument values, inlined sites, wildcards, the semaphore, -p and -c, and
the listings.  Operands bpftrace 0.17 cannot read (sym(%rip), absolute
addresses: bcc says "deref ident is not handled yet") are checked against
exact values in test_usdt_run.py instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from .difflib_pt import compare, have_bpftrace
from .test_usdt_run import ARGS_SCRIPT, BUILDS, Held, build_usdt_prog, expected_args, lines, run_usdt_prog

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

PYTHON = "/usr/bin/python3.11"


@pytest.fixture(scope="module")
def exe(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_usdt_prog(tmp_path_factory.mktemp("usdtdiff"), BUILDS["pie-O2"])


@pytest.fixture
def held(exe: str) -> Iterator[Held]:
    h = Held(exe)
    yield h
    h.close()


def test_argument_values(exe: str) -> None:
    out = compare(ARGS_SCRIPT.format(p=exe), lambda: run_usdt_prog(exe, 3))
    assert lines(out) == expected_args(3)


def test_argument_values_O0(tmp_path: Path) -> None:
    prog = build_usdt_prog(tmp_path, BUILDS["O0"])
    out = compare(ARGS_SCRIPT.format(p=prog), tool_args=["-c", f"{prog} 2"], wait_exit=True)
    assert lines(out) == expected_args(2)


def test_inlined_sites_and_probe_names(exe: str) -> None:
    compare(f"usdt:{exe}:demo:inl {{ @[probe, arg0] = count(); }} usdt:{exe}:inl {{ @n = count(); }}",
            lambda: run_usdt_prog(exe, 2),
            expect=[f"@[usdt:{exe}:demo:inl, 0]: 2", f"@[usdt:{exe}:demo:inl, 201]: 1", "@n: 8"])


def test_wildcards(exe: str) -> None:
    compare(f"usdt:{exe}:demo:* {{ @[probe] = count(); }} usdt:{exe}:*:s* {{ @s[probe] = count(); }}",
            lambda: run_usdt_prog(exe, 2),
            expect=[f"@[usdt:{exe}:demo:inl]: 8", f"@s[usdt:{exe}:demo:structp]: 2"])


def test_semaphore(exe: str) -> None:
    seen: list[int] = []
    compare(f"usdt:{exe}:demo:guarded {{ @[arg0] = count(); }}", lambda: seen.append(run_usdt_prog(exe, 4)),
            expect=["@[3]: 1"])
    assert seen == [4]


def test_pid_forms(exe: str, held: Held) -> None:
    """-p with the path left out, '*' or empty: the process's files, named
    through /proc/PID/root by both."""
    seen: list[int] = []
    out = compare("usdt:guarded { @g[probe] = count(); } usdt:*:inl { @i[probe] = count(); } "
                  f"usdt::demo:str {{ @s[str(arg0)] = count(); }} usdt:{exe}:demo:wide {{ @w = sum(arg2); }}",
                  lambda: seen.append(held.fire(3)), tool_args=["-p", str(held.pid)])
    assert seen == [3]
    assert f"@i[usdt:/proc/{held.pid}/root{exe}:demo:inl]: 12" in out
    assert "@s[hello-usdt]: 3" in out and "@w: 3" in out


def test_c_child(exe: str) -> None:
    # (Sums of positive values: bpftrace 0.17 prints sum() of a negative
    # argN as unsigned, a difference of the sum() builtin, not of usdt.)
    # (One block per probe: bpftrace 0.17 fails to load a probe named twice.)
    compare(f"usdt:{exe}:demo:regs {{ @[probe] = count(); @s = sum(arg1); }} "
            f"usdt:{exe}:demo:guarded {{ @[probe] = count(); @g = sum(arg0); }}",
            tool_args=["-c", f"{exe} 3"], wait_exit=True,
            expect=[f"@[usdt:{exe}:demo:guarded]: 3", "@s: 603", "@g: 3"])


def _list(tool: str, *args: str) -> list[str]:
    cmd = ["bpftrace"] if tool == "bpftrace" else [sys.executable, "-m", "pytrace"]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.mark.parametrize("pattern", ["usdt:{exe}:*", "usdt:{exe}:*:s*", "usdt:{exe}:inl", "usdt:{dir}/*:*:*"])
def test_listing(exe: str, pattern: str) -> None:
    pat = pattern.format(exe=exe, dir=os.path.dirname(exe))
    ours = _list("pytrace", "-l", pat)
    assert ours and ours == _list("bpftrace", "-l", pat)


@pytest.mark.parametrize("pattern", ["usdt:*", "usdt:*:*", "usdt:*:*:s*", "usdt::demo:inl", "usdt:{exe}:*"])
def test_listing_pid(exe: str, held: Held, pattern: str) -> None:
    pat = pattern.format(exe=exe)
    ours = _list("pytrace", "-l", pat, "-p", str(held.pid))
    assert ours and ours == _list("bpftrace", "-l", pat, "-p", str(held.pid))


# ------------------------------------------------------------------ python3.11

@pytest.fixture(scope="module")
def pydriver(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A Python program: imports modules and calls a function n + 2 times
    per module.  CPython 3.11 fires function__entry only where a C call
    starts the eval loop, function__return for every function."""
    if not os.path.exists(PYTHON):
        pytest.skip(f"{PYTHON} is not installed")
    tmp = tmp_path_factory.mktemp("py")
    for n in range(3):
        (tmp / f"ptmod{n}.py").write_text(f"def f{n}(x):\n    return x * 2\nVALUE = f{n}({n})\n")
    (tmp / "drv.py").write_text(
        "import importlib, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "def pt_usdt_marker(n):\n    return n + 1\n"
        "for n in map(int, sys.argv[2:]):\n"
        "    importlib.import_module(f'ptmod{n}')\n"
        "    for i in range(n + 2):\n        pt_usdt_marker(i)\n")
    return [PYTHON, "-B", str(tmp / "drv.py"), str(tmp), "0", "1", "2"]


def test_python_function_probes(pydriver: list[str]) -> None:
    script = (f"usdt:{PYTHON}:python:function__entry /pid == cpid/ {{ @e = count(); }} "
              f"usdt:{PYTHON}:python:function__return /pid == cpid/ {{ @r[str(arg1), arg2] = count(); }} "
              f"usdt:{PYTHON}:python:function__return /pid == cpid && str(arg1) == \"pt_usdt_marker\"/ "
              f"{{ @m[str(arg0), arg2] = count(); }}")
    out = compare(script, tool_args=["-c", " ".join(pydriver)], wait_exit=True, timeout=60)
    # 2 + 3 + 4 calls, returning from line 4 of drv.py; every module's
    # function returns once.
    assert f"@m[{pydriver[2]}, 4]: 9" in out
    assert all(f"@r[f{n}, 2]: 1" in out for n in range(3))
    assert any(ln.startswith("@e: ") for ln in out.split("\n"))
