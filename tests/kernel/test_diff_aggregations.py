"""Aggregations and maps: bpftrace 0.17 and pytrace on the same workload.

Every case runs one script under both tools at once (difflib_pt.run_both)
around one run of a deterministic workload made by this process (filtered
with ``pid == $1`` and, for writes, the workload's own fd ``$2``), and
compares the normalised output.  Exact numbers are asserted on top where
the workload fixes them.
"""

from __future__ import annotations

import os

import pytest

from .difflib_pt import Devnull, compare, getpid_n, have_bpftrace, nanosleep, open_n

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

PID = os.getpid()


# --------------------------------------------------------------------------
# BEGIN-only scripts: values fixed in the script, edge cases of each bucket
# function and aggregation.
# --------------------------------------------------------------------------

BEGIN_CASES = {
    # hist(): negative, 0, 1, powers of two and their neighbours, 2**31 and
    # 2**40 (0.17 caps every value >= 2**31 in [2G, 4G)).
    "hist_edges": (
        "BEGIN { @h = hist(0); @h = hist(-1); @h = hist(-5000); @h = hist(1); @h = hist(2); @h = hist(3);"
        " @h = hist(4); @h = hist(7); @h = hist(8); @h = hist(1023); @h = hist(1024); @h = hist(2147483647);"
        " @h = hist(2147483648); @h = hist(1099511627776); exit(); }",
        ["[2G, 4G)", "(..., 0)", "[0]", "[1]"]),
    # lhist(): below min, at min, inside, at max - 1, at max, above max.
    "lhist_edges": (
        "BEGIN { @l = lhist(-1, 0, 100, 10); @l = lhist(0, 0, 100, 10); @l = lhist(55, 0, 100, 10);"
        " @l = lhist(99, 0, 100, 10); @l = lhist(100, 0, 100, 10); @l = lhist(101, 0, 100, 10);"
        " @l = lhist(1000000, 0, 100, 10); exit(); }",
        ["(..., 0)", "[100, ...)"]),
    # A step that does not divide the range: the values in [9, 10] share
    # the last bucket with everything above.
    "lhist_uneven_step": (
        "BEGIN { @u = lhist(0, 0, 10, 3); @u = lhist(5, 0, 10, 3); @u = lhist(8, 0, 10, 3);"
        " @u = lhist(9, 0, 10, 3); @u = lhist(10, 0, 10, 3); @u = lhist(11, 0, 10, 3); exit(); }",
        []),
    # sum/avg/stats with negatives (avg truncates toward zero), count.
    "sum_avg_stats_negative": (
        "BEGIN { @s = sum(-5); @s = sum(3); @a = avg(-7); @a = avg(2); @st = stats(-7); @st = stats(2);"
        " @c = count(); @c = count(); @z = sum(0); exit(); }",
        ["@s: -2", "@c: 2", "@st: count 2, average -2, total -5"]),
    # min()/max() with 0.17's quirks: the slot starts at 0, so max() of
    # negatives only and min() above 2**32-1 leave the map empty.
    "min_max_quirks": (
        "BEGIN { @a = max(0); @b = max(-1); @b = max(5); @c = max(5); @c = max(-1); @d = min(0); @d = min(5);"
        " @e = min(-1); @e = min(3); @f = min(7); @f = min(0); @g = min(9); @g = min(4); @g = min(6);"
        " @h[1] = max(-3); @h[2] = max(0); @h[3] = max(2); @i = min(4294967295); @j = min(-5000000000);"
        " @k = max(5000000000); @m = min(2147483648); exit(); }",
        ["@b: 5", "@e: -1", "@g: 4", "@j: -5000000000", "@k: 5000000000"]),
    "keyed_avg_stats_sorted": (
        "BEGIN { @a[1] = avg(10); @a[2] = avg(-10); @a[3] = avg(5); @a[3] = avg(6); @s[\"x\"] = stats(1);"
        " @s[\"y\"] = stats(100); @s[\"y\"] = stats(-50); @m[\"p\"] = min(3); @m[\"q\"] = min(1);"
        " @x[7, \"a\"] = max(9); @x[8, \"b\"] = max(2); exit(); }",
        ["@s[y]: count 2, average 25, total 50"]),
    "keyed_hist_lhist": (
        "BEGIN { @h[\"a\"] = hist(5); @h[\"a\"] = hist(6); @h[\"b\"] = hist(100); @h[\"c\"] = hist(0);"
        " @h[\"c\"] = hist(1); @h[\"c\"] = hist(2); @l[1] = lhist(3, 0, 10, 2); @l[2] = lhist(7, 0, 10, 2);"
        " @l[2] = lhist(8, 0, 10, 2); exit(); }",
        []),
    "multi_and_string_keys": (
        "BEGIN { @s[\"a\"] = 1; @s[\"bb\"] = 2; @s[\"ccc\"] = 3; delete(@s[\"bb\"]); @k[\"x\", \"y\"] = 4;"
        " @k[\"x\", \"z\"] = 5; @i[1, 2, 3] = 6; @i[-1, -2, -3] = 7; @m[1, \"one\", -1] = count(); exit(); }",
        ["@k[x, z]: 5", "@i[-1, -2, -3]: 7"]),
    "integer_map_arithmetic": (
        "BEGIN { @x = 5; @x++; @x++; @x += 10; @x -= 3; @x--; @y[1] = 1; @y[1]++; @y[2] += 7; @y[3] -= 2;"
        " $w = @x++; $v = ++@x; printf(\"%d %d %d %d\\n\", @x, @y[1] + @y[2], $w, $v); exit(); }",
        ["15 9 13 15"]),
    "maps_in_expressions": (
        "BEGIN { @m[1] = 5; @m[2] = 7; $v = @m[1] + @m[2] * 2 + @m[3]; printf(\"%d\\n\", $v);"
        " @n = @m[2] > @m[1] ? 100 : 200; printf(\"%d %d\\n\", @n, @n / 3); @s[\"k\"] = \"val\";"
        " printf(\"%s|%s|\\n\", @s[\"k\"], @s[\"none\"]); exit(); }",
        ["19", "100 33", "val||"]),
    "print_clear_zero_delete": (
        "BEGIN { @m[1] = 10; @m[2] = 5; @m[3] = 20; @m[4] = 6; print(@m); print(@m, 2); print(@m, 0, 5);"
        " delete(@m[3]); print(@m); clear(@m); print(@m); @z[1] = count(); @z[2] = count();"
        " @z[2] = count(); zero(@z); print(@z); @z[3] = count(); print(@z); @c = count(); clear(@c); print(@c);"
        " @d = count(); delete(@d); exit(); } END { @m[9] = 9; }",
        []),
    "print_aggregations": (
        "BEGIN { @c = count(); @c = count(); @s = sum(10); @h = hist(3); @l = lhist(3, 0, 10, 1);"
        " @a = avg(4); @st = stats(8); print(@c); print(@s); print(@h); print(@l); print(@a); print(@st);"
        " zero(@c); print(@c); @c = count(); print(@c); print(@h, 0, 1); exit(); }",
        []),
    "print_top_div": (
        "BEGIN { @m[1] = 1; @m[2] = 2; @m[3] = 3; @m[4] = 4; print(@m, 2); print(@m, 10); print(@m, 0, 2);"
        " @n[\"a\"] = 30; @n[\"b\"] = 20; print(@n, 1, 10); @c[\"x\"] = count(); @c[\"y\"] = count();"
        " @c[\"y\"] = count(); print(@c, 1); exit(); }",
        ["@n[a]: 3", "@c[y]: 2"]),
    "print_values_tuples": (
        "BEGIN { @t = (1, \"two\", -3); print(@t); $t = (5, \"x\"); printf(\"%d %s\\n\", $t.0, $t.1);"
        " print((1, 2)); print((-5, (1, 2))); print(123); print(-4); print(\"str\"); @u[1] = (5, \"five\");"
        " @u[2] = (6, \"six\"); print(@u); exit(); }",
        ["(-5, (1, 2))", "@u[2]: (6, six)"]),
    # 0.17 prints 8-byte integer keys as int64 whatever their type, smaller
    # ones by their type; a sum is signed only when the summed type is.
    "key_and_sum_signedness": (
        "BEGIN { @k[(uint64)-1, (uint32)-1, (uint16)-1, (uint8)-1] = 1; @j[(uint16)-1] = 2; @i[(int32)-1] = 3;"
        " @w[(uint64)-2] = 4; @t = ((uint64)-1, (uint32)-1); @a = sum((uint32)-1); @b = sum((uint8)255);"
        " @c = sum((uint64)5); @c = sum((uint64)-6); @d = sum(-5); @v = (uint64)-1; exit(); }",
        ["@k[-1, 4294967295, 65535, 255]: 1", "@w[-2]: 4", "@c: 18446744073709551615", "@d: -5"]),
}


@pytest.mark.parametrize("name", sorted(BEGIN_CASES))
def test_begin(name: str) -> None:
    script, expect = BEGIN_CASES[name]
    compare(script, wait_exit=True, expect=expect)


def test_empty_maps_at_exit() -> None:
    compare("BEGIN { @mx = max(-3); @mx = max(-10); @mn = min(5000000000); @ok = min(-9); @i[1] = 1;"
            " delete(@i[1]); @a = avg(1); clear(@a); @h = hist(1); clear(@h); if (0) { @never = 1; } exit(); }",
            wait_exit=True, expect=["@ok: -9"])


# --------------------------------------------------------------------------
# Workload-driven aggregations
# --------------------------------------------------------------------------

WRITE_SIZES = [0, 1, 2, 3, 4, 100, 999, 1000, 1001, 5000, 65536, 3, 3]


def test_write_sizes_every_aggregation() -> None:
    """Writes of known sizes to /dev/null: every aggregation of args->count."""
    script = ("tracepoint:syscalls:sys_enter_write /pid == $1 && args->fd == $2/ {"
              " @c = count(); @s = sum(args->count); @a = avg(args->count); @mn = min(args->count);"
              " @mx = max(args->count); @st = stats(args->count); @h = hist(args->count);"
              " @l = lhist(args->count, 0, 1000, 100); @k[args->count] = count(); }")
    with Devnull() as dn:
        out = compare(script, lambda: dn.write(WRITE_SIZES), params=[PID, dn.fd])
    n, total = len(WRITE_SIZES), sum(WRITE_SIZES)
    assert f"@c: {n}\n" in out
    assert f"@s: {total}\n" in out
    assert f"@st: count {n}, average {total // n}, total {total}" in out
    assert "@mn: 0\n" in out and "@mx: 65536\n" in out
    assert "@k[3]: 3\n" in out


def test_exit_values_hist_negative(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """sys_exit_openat of a missing path: the return value -2 lands in hist's
    negative bucket; lseek on a file returns 0, 5 and 2**40."""
    script = ("tracepoint:syscalls:sys_exit_openat /pid == $1/ { @r = hist(args->ret); @ret[args->ret < 0] = count(); }"
              " tracepoint:syscalls:sys_exit_lseek /pid == $1/ { @l = hist(args->ret); @st = stats(args->ret);"
              " @mx = max(args->ret); @mn = min(args->ret); @k[args->ret] = count(); }")
    path = tmp_path / "seek"
    path.write_bytes(b"")

    def work() -> None:
        open_n("/nonexistent/pytrace-diff", 4)
        fd = os.open(path, os.O_RDONLY)
        for off in (0, 5, 1 << 40, 5):
            os.lseek(fd, off, 0)
        os.close(fd)
    out = compare(script, work, params=[PID])
    assert "@ret[1]: 4" in out and "@ret[0]: 1" in out
    assert "@mx: 1099511627776" in out and "@mn: 0" in out and "@k[5]: 2" in out
    assert "@st: count 4, average 274877906946, total 1099511627786" in out


def test_multi_key_and_string_key_counts() -> None:
    """Counts keyed by (fd, size), by the file name string and by comm."""
    script = ("tracepoint:syscalls:sys_enter_write /pid == $1 && args->fd == $2/ { @w[args->fd == $2, args->count] = count(); }"
              " tracepoint:syscalls:sys_enter_openat /pid == $1/ { @f[str(args->filename)] = count();"
              " @c[comm, str(args->filename)] = count(); @n = count(); }")
    with Devnull() as dn:
        def work() -> None:
            dn.write([7, 7, 7, 9])
            open_n("/tmp/pytrace-diff-a", 3)
            open_n("/tmp/pytrace-diff-bb", 5)
        out = compare(script, work, params=[PID, dn.fd])
    assert "@w[1, 7]: 3" in out and "@w[1, 9]: 1" in out
    assert "@f[/tmp/pytrace-diff-a]: 3" in out and "@f[/tmp/pytrace-diff-bb]: 5" in out
    assert "@n: 8" in out


def test_integer_maps_increment_from_probe() -> None:
    """@x++ and @x += n on plain integer maps from a tracepoint, per key."""
    script = ("tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @x++; @y += 3; @z[tid == pid] += 2; @d--; }")
    out = compare(script, lambda: getpid_n(11), params=[PID])
    assert "@x: 11" in out and "@y: 33" in out and "@z[1]: 22" in out and "@d: -11" in out


def test_delete_and_read_in_probe() -> None:
    """Maps read and deleted inside a probe: a running total that resets."""
    script = ("tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @n++; if (@n % 4 == 0) { @resets++;"
              " delete(@n); } @seen[@n > 2] = count(); }")
    out = compare(script, lambda: getpid_n(10), params=[PID])
    assert "@resets: 2" in out and "@n: 2" in out


def test_latency_pattern_map_in_predicate() -> None:
    """The classic start-time map: stored on entry, read in the exit
    probe's predicate and arithmetic, then deleted."""
    script = ("BEGIN { @start[0] = 1; } tracepoint:syscalls:sys_enter_clock_nanosleep /pid == $1/ { @start[tid] = nsecs; }"
              " tracepoint:syscalls:sys_exit_clock_nanosleep /pid == $1 && @start[tid]/ { @n = count();"
              " @ok = sum(nsecs - @start[tid] > 1000); @secs = hist((nsecs - @start[tid]) / 1000000000);"
              " delete(@start[tid]); }")
    # Five sleeps of the workload and the harness's own settle sleep.
    compare(script, lambda: nanosleep(5, 2000), params=[PID], expect=["@n: 6\n", "@ok: 6\n", "@start[0]: 1"])


def test_interval_output_and_end() -> None:
    """interval probes printing and clearing a map; END prints the rest."""
    script = ("tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @calls = count(); }"
              " interval:ms:700 { @ticks++; if (@ticks == 2) { print(@calls); clear(@calls); exit(); } }"
              " END { printf(\"ticks %d\\n\", @ticks); }")
    out = compare(script, lambda: getpid_n(6), params=[PID], wait_exit=True)
    assert "@calls: 6" in out and "ticks 2" in out
