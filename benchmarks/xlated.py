"""Size of the loaded code: xlated instructions of ten one-liners, pytrace vs bpftrace 0.17.

    python benchmarks/xlated.py [-v] [--pytrace-path DIR]       # as root

Each one-liner is started under each tool; once the attach marker is out,
the programs the tool's process holds (found through /proc/PID/fdinfo) are
dumped with ``bpftool -j prog dump xlated id N`` and their instructions
counted (as bpftool lists them: a 16-byte ld_imm64 counts once), summed
over the tool's programs; JIT bytes come from ``bpftool -j prog show``.
The counts are deterministic: one run per tool.  ``-v`` prints the
programs' names.  pytrace runs from this checkout (``PYTHONPATH``), or from
``--pytrace-path DIR`` (e.g. ``git archive HEAD`` unpacked).  Target:
pytrace no more than bpftrace.
"""

from __future__ import annotations

import os
import sys

import _bench as B

ONE_LINERS = [
    ("count by comm", "tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }"),
    ("count by pid", "tracepoint:syscalls:sys_enter_openat { @[pid] = count(); }"),
    ("sum(args->ret)", "tracepoint:syscalls:sys_exit_read { @ = sum(args->ret); }"),
    ("hist(args->ret)", "tracepoint:syscalls:sys_exit_read { @ = hist(args->ret); }"),
    ("lhist(args->ret)", "tracepoint:syscalls:sys_exit_read { @ = lhist(args->ret, 0, 1000, 100); }"),
    ("avg(args->ret)", "tracepoint:syscalls:sys_exit_read { @ = avg(args->ret); }"),
    ("printf pid comm", 'tracepoint:syscalls:sys_enter_openat { printf("%d %s\\n", pid, comm); }'),
    ("str(filename) key", "tracepoint:syscalls:sys_enter_openat { @[str(args->filename)] = count(); }"),
    ("predicate", "tracepoint:syscalls:sys_exit_read /args->ret > 0/ { @[comm] = count(); }"),
    ("max(args->ret)", "tracepoint:syscalls:sys_exit_read { @ = max(args->ret); }"),
]


def measure(tool: str, script: str, summary: B.Summary) -> tuple[int, int, int, list[str]]:
    t = B.Tracer(tool, script).start()
    try:
        t.wait_attached(60)
        assert t.proc is not None
        ids = B.bpf_progs_of(t.proc.pid)
        insns = slots = jited = 0
        names = []
        for i in ids:
            info = B.prog_info(i)
            n = B.xlated_insns(i)
            insns += n
            slots += int(info.get("bytes_xlated", 0)) // 8
            jited += int(info.get("bytes_jited", 0))
            names.append(f"{info.get('name')}={n}")
        t.stop(timeout=60, resend_after=5)
        summary.note_resent(t)
        t.check_ok()
    except B.ToolFailed:
        t.kill()
        raise
    if not ids:
        raise B.ToolFailed("no BPF program found in /proc/PID/fdinfo")
    return insns, slots, jited, names


def main(argv: list[str]) -> None:
    B.check_environment()
    pytrace_path = B.pytrace_tree(argv)
    os.environ["PYTHONPATH"] = pytrace_path
    summary = B.Summary()
    rows = []
    details = []
    totals = {tool: 0 for tool in B.TOOLS}
    wins = 0
    for name, script in ONE_LINERS:
        got: dict[str, tuple[int, int, int, list[str]] | None] = {}
        for tool in B.TOOLS:
            try:
                got[tool] = measure(tool, script, summary)
            except B.ToolFailed as exc:
                got[tool] = None
                summary.fail(f"{tool} -e '{script}': {exc}")
        pt, bt = got["pytrace"], got["bpftrace"]
        rows.append([name, pt[0] if pt else "FAILED", bt[0] if bt else "FAILED",
                     B.ratio(pt[0], bt[0]) if pt and bt else "-",
                     pt[1] if pt else "-", bt[1] if bt else "-",
                     pt[2] if pt else "-", bt[2] if bt else "-"])
        for tool in B.TOOLS:
            if got[tool]:
                details.append(f"  {name:<18} {tool:<8} {', '.join(got[tool][3])}")  # type: ignore[index]
        if pt and bt:
            totals["pytrace"] += pt[0]
            totals["bpftrace"] += bt[0]
            wins += pt[0] <= bt[0]
            summary.add(f"xlated insns, {name}", pt[0], bt[0], "insns", "<= bpftrace", pt[0] <= bt[0])
    rows.append(["total", totals["pytrace"], totals["bpftrace"], B.ratio(totals["pytrace"], totals["bpftrace"]),
                 "", "", "", ""])
    print("# xlated instructions (bpftool prog dump xlated; ld_imm64 = 1), summed over each tool's programs")
    print(B.table(["one-liner", "pytrace", "bpftrace", "ratio", "pt slots", "bt slots", "pt JIT B", "bt JIT B"],
                  rows))
    print(f"pytrace <= bpftrace on {wins} of {len(ONE_LINERS)} one-liners (pytrace from {pytrace_path})")
    for name, script in ONE_LINERS:
        print(f"  {name:<18} {script}")
    if "-v" in argv:
        print("\n".join(details))
    summary.write(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
