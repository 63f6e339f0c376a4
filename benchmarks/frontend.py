"""Front-end speed: parse + check time of real and generated scripts, side by
side with bpftrace 0.17's compile-only run (``--emit-elf``) in one run.

    python benchmarks/frontend.py            # needs root (live kernel) and bpftrace

pytrace's figure is the in-process time of parse + all semantic passes
(the best of several runs after a warm-up, so imports and the one-time Lark
table load are excluded; they are measured separately as start-up).
bpftrace's figure is the whole-process wall time of ``bpftrace --emit-elf``,
which parses, checks and generates code without loading anything: its growth
with script length is the comparison that matters.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytrace.diagnostics import Diagnostics  # noqa: E402
from pytrace.kernel.info import LiveKernel  # noqa: E402
from pytrace.semantic.pipeline import CompileOptions, run  # noqa: E402
from pytrace.source import SourceFile  # noqa: E402

PROBE = """tracepoint:syscalls:sys_enter_openat /pid != {i}/ {{
  $a{i} = args->flags + {i};
  @count{i}[comm] = count();
  @hist{i} = hist($a{i});
  if ($a{i} > 100) {{ printf("%s %d\\n", comm, $a{i}); }}
  else {{ @other{i} = sum($a{i} * 2); }}
  $s{i} = str(args->filename);
  @names{i}[$s{i}] = max(pid);
  @last{i} = ($a{i}, nsecs);
}}
"""


def generated(lines: int) -> str:
    return "".join(PROBE.format(i=i) for i in range(max(1, lines // 10)))


def pytrace_time(text: str, kernel: LiveKernel, repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(repeat + 1):  # the first run warms caches (formats, BTF)
        d = Diagnostics()
        t0 = time.perf_counter()
        run(SourceFile("bench.pt", text), CompileOptions(kernel=kernel, environ={}), d)
        dt = time.perf_counter() - t0
        if d.has_errors():
            raise SystemExit(d.render())
        best = min(best, dt)
    return best


def bpftrace_time(text: str, repeat: int = 3) -> float | None:
    if not shutil.which("bpftrace"):
        return None
    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.bt"
        script.write_text(text)
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = subprocess.run(["bpftrace", "--emit-elf", f"{tmp}/out.o", str(script)],
                                 capture_output=True, text=True, timeout=600)
            dt = time.perf_counter() - t0
            if out.returncode != 0:
                return None
            best = min(best, dt)
    return best


def main() -> None:
    kernel = LiveKernel()
    tools = sorted(glob.glob("/usr/sbin/*.bt"), key=os.path.getsize)
    print("# parse + check time (pytrace in-process, best of 7) vs bpftrace --emit-elf (wall, best of 3)")
    print(f"{'script':<28}{'lines':>7}{'pytrace ms':>12}{'bpftrace ms':>13}{'ratio':>8}")
    rows = []
    if tools:
        largest = tools[-1]
        text = Path(largest).read_text()
        rows.append((os.path.basename(largest), text))
    for n in (250, 500, 1000, 2000, 4000):
        rows.append((f"generated-{n}", generated(n)))
    prev = None
    for name, text in rows:
        pt = pytrace_time(text, kernel)
        bt = bpftrace_time(text) if (name.startswith("generated") and int(name.split("-")[1]) <= 2000) or \
            not name.startswith("generated") else None
        lines = text.count("\n")
        ratio = f"{pt / bt:.3f}" if bt else "-"
        bts = f"{bt * 1000:.0f}" if bt else "-"
        growth = f"  x{pt / prev:.2f} per doubling" if prev and name.startswith("generated") else ""
        print(f"{name:<28}{lines:>7}{pt * 1000:>12.2f}{bts:>13}{ratio:>8}{growth}")
        if name.startswith("generated"):
            prev = pt


if __name__ == "__main__":
    main()
