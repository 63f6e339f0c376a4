"""Maps printed through the column fast paths, against bpftrace 0.17.

Maps of the common shapes (integer and string keys; count, sum, min, max,
avg, stats, integer and string values) are decoded a column at a time and
printed with one ``%`` per map (pytrace.runtime.decode, output.render
column_rows); tests/unit/test_output_columns.py checks them against the
general path.  These runs check them against bpftrace itself, with
hundreds of keys per map so that both of 0.17's sorts are exercised: the
std::sort replica (up to 256 entries) and the stable sort above it (ties
then differ only in hash order, which difflib_pt normalises for
``@m[k]: N`` lines).  Keys come from a counter in the script, so both
tools build the same maps from the same events.  (The counter is bumped
first: 0.17 types ``sum(@n % 9 - 4)`` as unsigned when ``@n`` is first
assigned later in the probe.)
"""

from __future__ import annotations

import os

import pytest

from .difflib_pt import compare, getpid_n, have_bpftrace

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

PID = os.getpid()
EVENTS = 3000


def test_text_every_column_shape() -> None:
    script = ("tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @n++;"
              " @c[@n % 700, comm] = count();"         # multi-key, value-sorted, stable sort
              " @s[@n % 200] = sum(@n % 9 - 4);"       # negative sums, the std::sort replica
              " @v[@n] = @n * 7 % 13 - 6;"             # plain signed integers
              " @mx[@n % 400] = max(@n % 11);"         # per-CPU max
              " @mn[@n % 150] = min(@n % 11 + 3);"     # per-CPU min (stored biased)
              " @a[@n % 300] = avg(@n % 50);"          # by key bytes, then average (ties)
              " @st[@n % 120] = stats(@n);"            # distinct averages; top ignored
              " @str[@n % 500] = comm;"                # string values: key-sorted
              " @k[comm, @n % 260] = count(); }")      # string first component
    out = compare(script, lambda: getpid_n(EVENTS), params=[PID])
    assert f"@n: {EVENTS}" in out
    assert out.count("\n@c[") == 700 and out.count("\n@str[") == 500


def test_json_every_column_shape() -> None:
    # JSON ties are normalised only for "map" lines of integers: avg and
    # stats maps stay within the replica's 256 entries here.
    script = ("tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @n++;"
              " @c[@n % 250, comm] = count(); @s[@n % 300] = sum(@n % 9 - 4);"
              " @mx[@n % 300] = max(@n % 7); @a[@n % 200] = avg(@n % 50); @st[@n % 100] = stats(@n);"
              " @str[@n % 300] = comm; }")
    out = compare(script, lambda: getpid_n(EVENTS), params=[PID], tool_args=["-f", "json"], json=True)
    assert '"@str": {"0": "' in out and out.count('{"type": "stats"') == 2


def test_print_top_and_div_of_column_maps() -> None:
    # Distinct sums and averages: which entries top keeps must not depend
    # on the order of ties (hash order in bpftrace).
    script = ("tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @n++;"
              " @c[@n % 400] = sum(@n); @a[@n % 300] = avg(@n); @st[@n % 50] = stats(@n);"
              " if (@n == 2000) { print(@c, 5, 3); print(@a, 4, 7); print(@st, 2); clear(@c); } }")
    compare(script, lambda: getpid_n(2000), params=[PID])
