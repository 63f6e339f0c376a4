"""pytrace.api.Tracer: values printed by the script reach Python as values,
compile errors raise ScriptError, stop() ends a run from another thread."""

from __future__ import annotations

import io
import subprocess
import threading
import time

import pytest

from pytrace.api import ScriptError, Tracer


def test_print_tuple_reaches_on_value() -> None:
    values: list[object] = []
    out = io.StringIO()
    script = ('tracepoint:syscalls:sys_enter_openat /comm == "cat"/ { print((pid, str(args.filename))); } '
              'tracepoint:syscalls:sys_enter_openat /comm == "cat"/ { printf("seen\\n"); }')
    tracer = Tracer(script, command="cat /etc/hostname /etc/os-release", on_value=values.append, out=out)
    assert tracer.run() == 0
    files = [v[1] for v in values if isinstance(v, tuple)]
    assert "/etc/hostname" in files and "/etc/os-release" in files
    assert all(isinstance(v[0], int) and v[0] > 0 for v in values)
    # printf still goes to `out`, one line per open the second probe saw.
    assert out.getvalue().count("seen\n") == len(values)


def test_stop_from_another_thread() -> None:
    tracer = Tracer("interval:ms:10 { @n = count(); }", out=io.StringIO())
    threading.Timer(0.5, tracer.stop).start()
    started = time.monotonic()
    assert tracer.run() == 0
    assert time.monotonic() - started < 10
    assert "@n: " in tracer.out.getvalue()


def test_script_error_carries_diagnostics() -> None:
    with pytest.raises(ScriptError) as raised:
        Tracer("BEGIN { printf(\"%d\\n\", $x); }")
    assert "script:1:" in str(raised.value)
    assert "^" in str(raised.value)
