"""The language itself: bpftrace 0.17 and pytrace on the same script.

Integer promotion and 0.17's arithmetic (division, modulo and >> are
always unsigned), comparisons, ternaries, control flow, tuples, string
functions, sizeof, bswap and positional parameters.
"""

from __future__ import annotations

import os

import pytest

from .difflib_pt import compare, getpid_n, have_bpftrace

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

PID = os.getpid()

BEGIN_CASES = {
    "exit_ends_the_probe": (
        'BEGIN { printf("before\\n"); if (1) { exit(); } printf("after\\n"); }'
        ' END { printf("end\\n"); }',
        ["before", "end"]),
    "casts_and_promotion": (
        'BEGIN { $x = (uint8)255; $y = (int8)-1; $z = (uint16)65537; $w = (int32)0x80000000;'
        ' printf("%d %d %d %d\\n", $x, $y, $z, $w); printf("%ld %lu\\n", $x + $y, $x * 2);'
        ' printf("%d %d %d %d\\n", (int8)200, (uint8)-56, (int16)40000, (int32)3000000000);'
        ' printf("%lu %ld\\n", (uint32)-1 + 1, (int32)-1 + 1); printf("%d\\n", 0x7fffffffffffffff + 1 < 0);'
        ' printf("%lu %ld\\n", 0xffffffffffffffff, 18446744073709551615); exit(); }',
        ["255 -1 1 -2147483648", "-56 200 -25536 -1294967296", "4294967296 0"]),
    # 0.17 divides, takes the modulo and shifts right unsigned whatever the
    # operand types (it only warns): -7 / 2 is (2**64 - 7) / 2.
    "unsigned_division_and_shift": (
        'BEGIN { $a = -7; $b = 2; printf("%d %d %ld %ld\\n", $a / $b, $a % $b, $a / $b, $a >> 1);'
        ' printf("%d %d %d %d %d\\n", 10 / 3, 10 % 3, 7 / 2, 100 / 7, 100 % 7); $w = (int32)0x80000000;'
        ' printf("%ld %ld\\n", $w >> 4, (uint32)$w >> 4); printf("%d %d\\n", 1 << 10, 1024 >> 3); exit(); }',
        ["-4 1 9223372036854775804 9223372036854775804", "1152921504472629248 134217728"]),
    "bitwise_and_comparisons": (
        'BEGIN { printf("%d %d %d %d %d %d\\n", 3 & 5, 3 | 5, 3 ^ 5, ~0, !5, !0);'
        ' printf("%d %d %d\\n", -1 < 1, (uint64)-1 > 1, (int32)-1 < (uint32)1); $a = (int8)-1; $b = (uint8)1;'
        ' printf("%d %d %d %ld\\n", $a < $b, $a > $b, $a == -1, $a * $b);'
        ' printf("%d %d %d %d\\n", 2 >= 2, 2 <= 1, 3 != 3, 4 == 4); exit(); }',
        ["1 7 6 -1 0 1"]),
    "ternaries_and_logic": (
        'BEGIN { $x = 1; $y = $x ? "t" : "f"; $z = !$x ? 1 : 2; printf("%s %d %d\\n", $y, $z, $x ? $x + 1 : 0);'
        ' @a = 1; @b = @a > 0 && @a < 2; @c = @a < 0 || @a == 1; @d = !(@a == 1); @e = 0 && (1 / 0);'
        ' printf("%d %d %d %d\\n", @b, @c, @d, @e); $s = @a == 1 ? "one" : "other"; printf("%s\\n", $s);'
        ' exit(); }',
        ["t 2 2", "1 1 0 0", "one"]),
    "if_else_chains": (
        'BEGIN { $i = 0; unroll(6) { if ($i == 0) { printf("zero\\n"); } else if ($i == 1) { printf("one\\n"); }'
        ' else if ($i < 4) { printf("small %d\\n", $i); } else { printf("big %d\\n", $i); } $i++; }'
        ' if ("abc" == "abc") { printf("streq\\n"); } exit(); }',
        ["zero\none\nsmall 2\nsmall 3\nbig 4\nbig 5\nstreq"]),
    "loops_unroll_while": (
        'BEGIN { $i = 0; $sum = 0; while ($i < 100) { $sum += $i; $i++; } printf("%d\\n", $sum);'
        ' $j = 10; while ($j > 0) { $j -= 3; } printf("%d\\n", $j); unroll(5) { $i = $i * 2; } printf("%d\\n", $i);'
        ' $k = 0; while ($k < 10) { $k++; if ($k == 2) { continue; } if ($k == 5) { break; } printf("w%d\\n", $k); }'
        ' unroll(3) { @u = count(); } exit(); }',
        ["4950\n-2\n3200\nw1\nw3\nw4", "@u: 3"]),
    "incdec_variables": (
        'BEGIN { $x = 5; $y = $x++ + 1; $z = ++$x; printf("%d %d %d\\n", $x, $y, $z); $x--; --$x;'
        ' printf("%d\\n", $x); $x += 10; $x -= 1; $x *= 2; $x /= 4; $x %= 5; $x <<= 3; $x |= 1;'
        ' printf("%d\\n", $x); exit(); }',
        ["7 6 7\n5"]),
    "tuples": (
        'BEGIN { $t = (1, "two", -3); printf("%d %s %d\\n", $t.0, $t.1, $t.2); @t = $t; @n = ((1, 2), "x");'
        ' print(@n); print(((int8)-1, (uint16)65535)); $u = (5, 6); @s = $u.0 + $u.1; exit(); }',
        ["1 two -3", "@s: 11"]),
    "strncmp_and_string_compare": (
        'BEGIN { printf("%d %d %d %d\\n", strncmp("hello", "help", 3), strncmp("hello", "help", 4),'
        ' strncmp("abc", "abc", 10), strncmp("abc", "abd", 2)); $s = "hello";'
        ' printf("%d %d %d\\n", $s == "hello", $s != "hellp", $s == "hell"); exit(); }',
        ["0 1 0 0", "1 1 0"]),
    "sizeof_and_bswap": (
        'BEGIN { printf("%d %d %d %d\\n", sizeof(int8), sizeof(uint64), sizeof(uint16), sizeof(int32));'
        ' printf("%d\\n", sizeof(struct task_struct) > 1000); $x = (uint32)1;'
        ' printf("%x %x %lx %x\\n", bswap((uint32)0x11223344), bswap((uint16)0x1122),'
        ' bswap((uint64)0x1122334455667788), bswap($x)); exit(); }',
        ["1 8 2 4", "44332211 2211 8877665544332211 1000000"]),
}


@pytest.mark.parametrize("name", sorted(BEGIN_CASES))
def test_begin(name: str) -> None:
    script, expect = BEGIN_CASES[name]
    compare(script, wait_exit=True, expect=expect)


def test_positional_parameters() -> None:
    out = compare('BEGIN { printf("%s %d %s %d\\n", str($2), $1 + 1, str($3), $#); @x = $1 * 2; @y = $4; exit(); }',
                  params=["41", "hello", "world"], wait_exit=True, expect=["hello 42 world 3", "@x: 82", "@y: 0"])
    assert out


def test_runtime_division_by_zero() -> None:
    """x / 0 is 0 and x % 0 is x at run time (the BPF instruction set)."""
    script = ('tracepoint:syscalls:sys_enter_write /pid == $1 && args->fd == $2/ {'
              ' printf("%d %d %d\\n", 5 / args->count, 5 % args->count, 17 % (args->count + 1)); }')
    from .difflib_pt import Devnull
    with Devnull() as dn:
        compare(script, lambda: dn.write([0, 3]), params=[PID, dn.fd], expect=["0 5 0\n1 2 1"])


def test_exit_from_tracepoint() -> None:
    """exit() in a tracepoint probe: the third event ends the session; END
    runs and maps are printed once."""
    script = ('tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @n++; printf("event %d\\n", @n);'
              ' if (@n == 3) { exit(); } } END { printf("end %d\\n", @n); }')
    compare(script, lambda: getpid_n(3), params=[PID], wait_exit=True,
            expect=["event 1\nevent 2\nevent 3\nend 3", "@n: 3"])


def test_end_block_and_variables() -> None:
    script = ('BEGIN { @start = 1; } tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @calls++; $v = @calls * 10;'
              ' @last = $v; } END { printf("calls=%d last=%d start=%d\\n", @calls, @last, @start); }')
    compare(script, lambda: getpid_n(4), params=[PID], expect=["calls=4 last=40 start=1"])
