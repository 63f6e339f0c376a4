"""fentry/fexit (kfunc/kretfunc) with BTF-typed ``args`` and ``retval`` on a
kernel that loads them (Debian 6.1 in the guest), and what pytrace reports
about the kernel's features there."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.kernel.difflib_pt import pytrace_only

from .workload import COMM, in_child, preads

pytestmark = pytest.mark.kernel
ONLY = f'/comm == "{COMM}"/'


def run(script: str, workload: object) -> str:
    return pytrace_only(script, lambda: in_child(workload), timeout=120)  # type: ignore[arg-type]


def test_fentry_typed_args(data: str) -> None:
    work = preads(data, [(64, 0)] * 7 + [(200, 0)] * 3)
    out = run(f"fentry:vfs_read {ONLY} {{ @[args.count] = count(); "
              f"@size[args.file->f_inode->i_size] = count(); @pos = sum(*args.pos); }}", work)
    assert out.strip().split("\n") == ["@[200]: 3", "@[64]: 7", "@pos: 0", "@size[250]: 10"], out


def test_fexit_retval_and_args(data: str) -> None:
    work = preads(data, [(100, 0)] * 4 + [(100, 200)] * 3 + [(100, 300)] * 2)
    out = run(f"fexit:vfs_read {ONLY} {{ @[retval] = count(); @req = sum(args.count); }}", work)
    assert out.strip().split("\n") == ["@[0]: 2", "@[50]: 3", "@[100]: 4", "@req: 900"]


@pytest.mark.slow
def test_kfunc_aliases(data: str) -> None:
    out = run(f"kfunc:vfs_read {ONLY} {{ @in = count(); }} kretfunc:vfs_read {ONLY} {{ @out = sum(retval); }}",
              preads(data, [(30, 0)] * 5))
    assert out.strip().split("\n") == ["@in: 5", "@out: 150"]


@pytest.mark.slow
def test_fentry_wildcard(data: str) -> None:
    out = run(f"fentry:vfs_rea* {ONLY} {{ @[probe] = count(); }}", preads(data, [(10, 0)] * 4))
    assert out.strip() == "@[fentry:vfs_read]: 4"


def test_info_reports_kprobe_and_fentry() -> None:
    p = subprocess.run([sys.executable, "-m", "pytrace", "--info"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    sections: dict[str, set[str]] = {}
    name = ""
    for ln in p.stdout.splitlines():
        if ln and not ln.startswith(" "):
            name = ln.strip()
        elif ln.strip():
            sections.setdefault(name, set()).add(ln.strip())
    # The program type loads even without kprobes (the host): the probe
    # type needs the kprobe PMU, which this kernel has.
    assert {"kprobe: yes", "kfunc/fentry: yes"} <= sections["Probe types"], p.stdout
    assert {"fentry: yes", "fexit: yes", "kprobe: yes"} <= sections["Program types"], p.stdout
    assert {"btf: yes"} <= sections["Kernel features"], p.stdout
    assert any(ln.startswith("kprobe: ") for ln in sections["PMUs (/sys/bus/event_source/devices)"]), p.stdout


@pytest.mark.slow
def test_list_verbose_fentry_prototype() -> None:
    p = subprocess.run([sys.executable, "-m", "pytrace", "-lv", "fentry:vfs_read"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:5] == ["fentry:vfs_read", "    struct file * file", "    char * buf",
                                        "    size_t count", "    loff_t * pos"], p.stdout
