"""Run the ``tests/guest`` pytest tier inside one boot of the guest kernel.

``scripts/test-kernels [--fast] [-- PYTEST ARGS]`` calls this.  The guest
runs ``python -m pytest -p no:cacheprovider tests/guest`` from this checkout
(seen read-only through 9p, copy-on-write) with the interpreter that runs
this module, by its absolute path (pyenv shims are shell scripts: slow under
TCG).  pytest's output streams to our stdout; its junit XML comes back
through a read-write share; the exit status is pytest's, or 125 when the
guest itself failed (no kernel, boot failure, timeout).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from . import qemu

REPO = Path(__file__).resolve().parents[2]
FAST_MARK = "not slow"


def junit_summary(path: Path) -> str:
    """One line from pytest's junit XML: counts of tests, failures, skips."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        return f"no junit results ({exc})"
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return "no junit results (no testsuite)"
    a = suite.attrib
    return (f"{a.get('tests', '?')} tests, {a.get('failures', '?')} failures, {a.get('errors', '?')} errors, "
            f"{a.get('skipped', '?')} skipped, {float(a.get('time', 0)):.1f} s in pytest")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/test-kernels",
                                 description="Run tests/guest as root inside Debian's 6.1 kernel under QEMU.")
    ap.add_argument("--fast", action="store_true", help=f"only tests not marked slow (-m '{FAST_MARK}')")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("PYTRACE_KERNELS_TIMEOUT", 1800)),
                    help="seconds for the whole boot (default 1800)")
    ap.add_argument("--kernel", type=Path, help="an unpacked kernel directory (default: newest)")
    ap.add_argument("--python", default=os.path.realpath(sys.executable),
                    help="interpreter the guest runs pytest with (absolute path)")
    ap.add_argument("--junitxml", type=Path, help="copy pytest's junit XML here")
    ap.add_argument("--console", action="store_true", help="print the guest's console log at the end")
    ap.add_argument("pytest_args", nargs=argparse.REMAINDER,
                    help="after --: arguments for pytest (default: tests/guest)")
    args = ap.parse_args(argv)
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    kernel = None
    if args.kernel:
        kernel = qemu.Kernel(args.kernel.resolve(), args.kernel.resolve().name)
    results = Path(tempfile.mkdtemp(prefix="pytrace-kernels-"))
    try:
        pytest = [args.python, "-m", "pytest", "-p", "no:cacheprovider", "-rfEs",
                  f"--junitxml={results}/junit.xml"]
        if args.fast:
            pytest += ["-m", FAST_MARK]
        pytest += extra or ["tests/guest"]
        # Results are written by root in the guest; the share is ours.
        cmd = shlex.join(pytest)
        t0 = time.monotonic()
        try:
            res = qemu.run(cmd, kernel=kernel, timeout=args.timeout, cwd=str(REPO),
                           rw_shares=[str(results)], env={"PYTHONUNBUFFERED": "1"},
                           on_stdout=lambda b: (sys.stdout.buffer.write(b), sys.stdout.flush()),
                           on_stderr=lambda b: (sys.stderr.buffer.write(b), sys.stderr.flush()))
        except qemu.HarnessError as exc:
            print(f"test-kernels: {exc}", file=sys.stderr)
            return 125
        wall = time.monotonic() - t0
        if args.console:
            sys.stderr.write(res.console)
        if args.junitxml and (results / "junit.xml").exists():
            shutil.copyfile(results / "junit.xml", args.junitxml)
        print(f"test-kernels: guest kernel {(kernel or qemu.default_kernel()).version}, "
              f"accel {qemu.accelerator()[0]}: {junit_summary(results / 'junit.xml')}; "
              f"{wall:.1f} s wall including boot", file=sys.stderr)
        if res.rc < 0:
            tail = "\n".join(res.console.splitlines()[-30:])
            print(f"test-kernels: the guest failed: {res.error}\n--- console tail ---\n{tail}", file=sys.stderr)
            return 125
        return res.rc
    finally:
        shutil.rmtree(results, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
