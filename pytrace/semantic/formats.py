"""Format strings: printf-style (printf, system, cat) and strftime-style (time, strftime).

This module owns the *meaning* of a bpftrace format string, for the type
checker (which conversions there are, where they sit, which argument types they
take) and for the runtime (turning decoded values into the exact text that
bpftrace 0.17 prints).  It knows nothing about the AST or diagnostics: offsets
are character offsets into the already-unescaped format string and the caller
maps them to source positions.

bpftrace 0.17 is the reference, and it is quirkier than C.  Everything below
was established by running /usr/bin/bpftrace 0.17 (see tests/unit/test_formats.py):

* A conversion is exactly what 0.17's regex finds, scanning left to right::

      %-?[0-9]*(\\.[0-9]+)?(LEN?[duxXpo] | c | s | r | rx | rh)

  with LEN one of ``hh h l ll j z t``.  So the only flags are ``-`` and a
  leading ``0`` of the width; ``+``, space, ``#``, ``*``, ``%i``, ``%e``,
  ``%f``, ``L`` and ``%lc`` are *not* conversions: 0.17 leaves them in the text
  (and then complains "Too many arguments" when an argument was meant for them).
  ``%%`` is not special to the scan either, so in ``"%%d"`` the scan finds the
  conversion ``%d`` at offset 1.
* The text up to and including conversion *i* is handed to C ``snprintf`` with
  argument *i*; the text after the last conversion is written out verbatim.
  Hence ``%%`` prints ``%`` before the last conversion but ``%%`` after it (and
  in a format with no conversions at all), and a stray ``%`` before the last
  conversion is undefined behaviour in C.
* Integers are cast to the C type named by the length modifier before
  formatting, and *no* modifier means ``int``: ``printf("%d", 5000000000)``
  prints 705032704 and ``printf("%u", -1)`` prints 4294967295.
* ``%r``/``%rx``/``%rh`` only work bare: ``%5r`` is passed to snprintf, which
  prints the specifier itself.
* The output of one conversion is cut at its first NUL byte (``%c`` of 0).

Problems are *returned*, never raised: parse_format() returns the segments and
a list of FormatProblem, each an "error" (0.17 rejects it or its output is
undefined) or a "warning" (0.17 accepts it but prints something surprising).
"""

from __future__ import annotations

import re
import time
from typing import Iterable, NamedTuple, Sequence

from pytrace.records import dataclass, replace
from pytrace.semantic.types import (
    AggregationType,
    BoolType,
    BufferType,
    EnumType,
    IntType,
    PointerType,
    StackType,
    StringType,
    SymbolKind,
    SymbolType,
    Type,
)

# --------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------

INTEGER, STRING, BUFFER = "integer", "string", "buffer"

BUFFER_CONVERSIONS = frozenset({"r", "rx", "rh"})

# Width in bits of the C type each length modifier names on x86_64.  The empty
# modifier is plain int: 0.17 really does truncate "%d" to 32 bits.
_LENGTH_BITS = {"hh": 8, "h": 16, "": 32, "l": 64, "ll": 64, "j": 64, "z": 64, "t": 64}

SEVERITY_ERROR, SEVERITY_WARNING = "error", "warning"

SUPPORTED_SUMMARY = "%d %u %x %X %o %p (with an optional hh h l ll j z t), %c %s %r %rx %rh"


@dataclass(frozen=True)
class Literal:
    """Text between conversions.  ``text`` is what gets printed (``%%`` already
    reduced to ``%`` where 0.17's snprintf would do so); ``start``/``end`` cover
    the source characters in the format string."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Conversion:
    """One conversion specifier, ``fmt[start:end]``.

    ``flags`` is a subset of ``"-0"`` in that order (0.17 knows no others),
    ``width_star`` is always False (0.17 has no ``*``; kept so the shape matches
    C).  ``swallowed`` marks a conversion whose ``%`` 0.17's snprintf reads as
    the second half of ``%%``: it still needs an argument, which is not printed.
    """

    start: int
    end: int
    flags: str
    width: int | None
    width_star: bool
    precision: int | None
    length: str
    conv: str
    text: str = ""
    swallowed: bool = False

    @property
    def spec(self) -> str:
        """The specifier without flags/width/precision, as 0.17 names it ("ld", "rx")."""
        return self.length + self.conv

    @property
    def kind(self) -> str:
        """The argument kind this conversion takes: INTEGER, STRING or BUFFER."""
        if self.conv in BUFFER_CONVERSIONS:
            return BUFFER
        return STRING if self.conv == "s" else INTEGER

    @property
    def bare(self) -> bool:
        """True when there are no flags, width or precision."""
        return not self.flags and self.width is None and self.precision is None


Segment = Literal | Conversion


@dataclass(frozen=True)
class FormatProblem:
    """Something wrong in a format string, at ``fmt[start:end]``."""

    start: int
    end: int
    message: str
    severity: str = SEVERITY_ERROR


@dataclass(frozen=True)
class ArgProblem:
    """An argument that does not fit the format string.

    ``index`` is the 0-based argument index; for "not enough arguments" it is
    the number of arguments supplied (one past the last) and ``conversion`` is
    the first conversion left without an argument, so the caller can point at it.
    """

    index: int
    message: str
    conversion: Conversion | None = None


class ParseResult(NamedTuple):
    """What parse_format() returns; unpacks as ``segments, problems``."""

    segments: list[Segment]
    problems: list[FormatProblem]

    @property
    def conversions(self) -> list[Conversion]:
        return [s for s in self.segments if isinstance(s, Conversion)]


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

# 0.17's format_specifier_re.  rx/rh must come before r: 0.17 reads "%rx" as
# one conversion (verified: it prints hex, not the buffer followed by "x").
_SPEC_RE = re.compile(
    r"%(-?)([0-9]*)(?:\.([0-9]+))?(?:(hh|h|ll|l|j|z|t)?([duxXpo])|(c|s|rx|rh|r))"
)

# What glibc's printf would read as a conversion at a '%', to size a stray one.
_C_SPEC_RE = re.compile(r"%[-+ #0'I]*(?:\*|[0-9]+)?(?:\.(?:\*|[0-9]*))?(?:hh|h|ll|l|L|q|j|z|Z|t)?(.?)", re.S)
_C_CONVERSION_CHARS = frozenset("diouxXeEfFgGaAcCsSpnm")


def parse_format(fmt: str) -> ParseResult:
    """Split ``fmt`` into literal text and conversions the way bpftrace 0.17 does.

    Returns ``(segments, problems)``; segments tile ``fmt`` exactly, in order.
    """
    matches = list(_SPEC_RE.finditer(fmt))
    segments: list[Segment] = []
    problems: list[FormatProblem] = []
    pos = 0
    for m in matches:
        conv = _conversion_from_match(m)
        # The text before this conversion goes through snprintf with it.
        text, swallowed = _scan_snprintf_text(fmt, pos, conv.start, problems)
        if pos < conv.start:
            segments.append(Literal(pos, conv.start, text))
        if swallowed:
            conv = replace(conv, swallowed=True)
            problems.append(FormatProblem(
                conv.start - 1, conv.end,
                f"bpftrace 0.17 reads '%{conv.text}' as '%' followed by the conversion "
                f"'{conv.text}': it takes an argument but prints "
                f"'%{_swallowed_text(conv)}' and not the argument",
                SEVERITY_WARNING))
        elif conv.conv in BUFFER_CONVERSIONS and not conv.bare:
            problems.append(FormatProblem(
                conv.start, conv.end,
                f"'{conv.text}': bpftrace 0.17 supports no flags, width or precision on "
                f"%{conv.conv} and prints the specifier literally",
                SEVERITY_WARNING))
        segments.append(conv)
        pos = conv.end
    if pos < len(fmt):
        segments.append(Literal(pos, len(fmt), fmt[pos:]))
        _check_tail_text(fmt, pos, problems)
    return ParseResult(segments, problems)


def _conversion_from_match(m: re.Match[str]) -> Conversion:
    minus, digits, precision, length, int_conv, other_conv = m.groups()
    flags = minus
    # A width written with leading zeros is C's '0' flag plus a width.
    if digits.startswith("0"):
        flags += "0"
    width = int(digits) if digits.strip("0") else None
    return Conversion(
        start=m.start(), end=m.end(), flags=flags, width=width, width_star=False,
        precision=int(precision) if precision is not None else None,
        length=length or "", conv=int_conv or other_conv, text=m.group(0))


def _scan_snprintf_text(
    fmt: str, start: int, conv_start: int, problems: list[FormatProblem]
) -> tuple[str, bool]:
    """Walk ``fmt[start:conv_start]`` as snprintf will.  Returns the printed text
    and whether the conversion's own '%' gets eaten as the tail of a '%%'."""
    out: list[str] = []
    i = start
    while i < conv_start:
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        if fmt[i + 1] == "%":  # safe: fmt[conv_start] is '%', so i + 1 exists
            out.append("%")
            if i + 1 == conv_start:
                return "".join(out), True
            i += 2
            continue
        m = _C_SPEC_RE.match(fmt, i)
        assert m is not None
        if m.group(1) in _C_CONVERSION_CHARS or m.end() > conv_start:
            # snprintf would consume or misread an argument here (or, when the
            # spec runs into the conversion's '%', eat the conversion).
            end = min(m.end(), conv_start)
            problems.append(FormatProblem(
                i, end,
                f"'{fmt[i:end]}' is not a bpftrace 0.17 conversion (those are "
                f"{SUPPORTED_SUMMARY}); before a later conversion it garbles the output; "
                f"write '%%' for a literal '%'"))
        else:
            # glibc prints an invalid specification as written.
            end = m.end()
            problems.append(FormatProblem(
                i, i + 1, "lone '%' before a conversion; write '%%' for a literal '%'",
                SEVERITY_WARNING))
        out.append(fmt[i:end])
        i = end
    return "".join(out), False


def _check_tail_text(fmt: str, start: int, problems: list[FormatProblem]) -> None:
    """Warn about '%' in text that 0.17 writes out verbatim (after the last conversion)."""
    i = fmt.find("%", start)
    while i != -1:
        if i + 1 == len(fmt):
            problems.append(FormatProblem(
                i, i + 1, "lone '%' at the end of the format string is printed as is",
                SEVERITY_WARNING))
            return
        if fmt[i + 1] == "%":
            problems.append(FormatProblem(
                i, i + 2,
                "bpftrace 0.17 prints '%%' after the last conversion as '%%', not '%'",
                SEVERITY_WARNING))
            i = fmt.find("%", i + 2)
            continue
        m = _C_SPEC_RE.match(fmt, i)
        if m is not None and m.group(1) in _C_CONVERSION_CHARS:
            problems.append(FormatProblem(
                i, m.end(),
                f"'{m.group(0)}' is not a bpftrace 0.17 conversion (those are "
                f"{SUPPORTED_SUMMARY}); it is printed as is",
                SEVERITY_WARNING))
            i = fmt.find("%", m.end())
            continue
        i = fmt.find("%", i + 1)


# --------------------------------------------------------------------------
# Checking arguments
# --------------------------------------------------------------------------
#
# bpftrace 0.17 (src/format_string.cpp validate_format_string) checks the count
# first, then each argument in order, and stops at the first problem:
#
#   printf: Not enough arguments for format string (1 supplied, 2 expected)
#   printf: Too many arguments for format string (2 supplied, 1 expected)
#   printf: %d specifier expects a value of type integer (string supplied)
#
# ("printf" is replaced by "cat"/"system"; the token is the specifier without
# '-', width and precision, e.g. "%ld".)  Before comparing it maps ksym, usym,
# probe, username, kstack, ustack, inet (ntop), timestamp (strftime),
# mac_address, cgroup_path and strerror to string, and pointer to integer.
# Observed with 0.17 (the table in tests/unit/test_formats.py records each case):
#
#   d u x X o p c (+ length)  integer, pointer, comparisons (integers in 0.17),
#                             kaddr(), casts.  Anything else: "... (string supplied)"
#                             for strings and all the string-like types above,
#                             "(buffer|tuple|record|array|none supplied)",
#                             "(count|sum|avg|min|max|stats|hist|lhist supplied)".
#   s                         string and the string-like types (stacks too);
#                             "%s specifier expects a value of type string
#                             (integer supplied)" for integers and pointers.
#   r rx rh                   buf() only: "%r specifier expects a value of type
#                             buffer (string supplied)".
#
# So %s with an integer, %d with a string and %r with a string are errors;
# %p/%x with a pointer, %p with an integer and %c with an integer are fine.
# We make the same decisions in our own words, and report every bad argument
# rather than only the first (but only the count when that is wrong, since the
# pairing is then meaningless).

_EXPECTS = {INTEGER: "an integer", STRING: "a string", BUFFER: "a buffer (from buf())"}


def value_kind(t: Type) -> str | None:
    """The printf argument kind of type ``t`` under 0.17's rules, or None if no
    conversion accepts it."""
    if isinstance(t, (IntType, BoolType, EnumType, PointerType)):
        return INTEGER
    if isinstance(t, SymbolType):
        # kaddr() is a plain integer address in 0.17 (%d works, %s is rejected).
        return INTEGER if t.kind is SymbolKind.KADDR else STRING
    if isinstance(t, (StringType, StackType)):
        return STRING
    if isinstance(t, BufferType):
        return BUFFER
    return None


def _describe(t: Type) -> str:
    if isinstance(t, AggregationType):
        return f"{t} (an aggregation, which only print() can show)"
    return str(t)


def check_args(
    conversions: Iterable[Segment], arg_types: Sequence[Type], func: str = "printf"
) -> list[ArgProblem]:
    """Check argument types against the conversions of a parsed format string.

    ``conversions`` may be the full segment list; literals are ignored.  ``func``
    prefixes the messages ("printf", "cat", "system").
    """
    convs = [c for c in conversions if isinstance(c, Conversion)]
    supplied, expected = len(arg_types), len(convs)
    if supplied < expected:
        return [ArgProblem(
            supplied,
            f"{func}: not enough arguments for the format string "
            f"({supplied} supplied, {expected} expected)",
            convs[supplied])]
    if supplied > expected:
        return [ArgProblem(
            expected,
            f"{func}: too many arguments for the format string "
            f"({supplied} supplied, {expected} expected)")]
    problems: list[ArgProblem] = []
    for i, (conv, t) in enumerate(zip(convs, arg_types)):
        if isinstance(t, EnumType) and conv.kind == STRING:
            continue  # the enumerator's name (bpftrace 0.22)
        if value_kind(t) != conv.kind:
            problems.append(ArgProblem(
                i, f"{func}: {conv.text} expects {_EXPECTS[conv.kind]}, got {_describe(t)}",
                conv))
    return problems


# --------------------------------------------------------------------------
# Rendering (runtime)
# --------------------------------------------------------------------------


def render(segments: Sequence[Segment], values: Sequence[object]) -> str:
    """Format decoded values as bpftrace 0.17 prints them.

    Values: ``int`` (or bool) for integer conversions, already sign-decoded
    from their type; ``str`` or ``bytes`` for %s (symbols, stacks etc. already
    resolved to text); ``bytes`` for %r/%rx/%rh.  Bytes that are not UTF-8
    (``%c`` of 0xe9, a cut multi-byte character) come back as lone surrogates
    (``surrogateescape``); encode with that handler to get 0.17's exact bytes,
    or use render_bytes().
    """
    return render_bytes(segments, values).decode("utf-8", "surrogateescape")


def render_bytes(segments: Sequence[Segment], values: Sequence[object]) -> bytes:
    """Like render(), but return the exact bytes."""
    out: list[bytes] = []
    it = iter(values)
    for seg in segments:
        if isinstance(seg, Literal):
            out.append(_encode(seg.text))
            continue
        try:
            value = next(it)
        except StopIteration:
            raise ValueError("render: fewer values than conversions") from None
        piece = _render_conversion(seg, value)
        # snprintf's result is used as a C string: a NUL (from %c of 0) ends it.
        out.append(piece.split(b"\0", 1)[0])
    if next(it, _END) is not _END:
        raise ValueError("render: more values than conversions")
    return b"".join(out)


_END = object()  # sentinel for "no more values"; never mutated


def _encode(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _swallowed_text(conv: Conversion) -> str:
    # 0.17 rewrites a bare %r/%rx/%rh in its part to %s before snprintf.
    if conv.conv in BUFFER_CONVERSIONS and conv.bare:
        return "s"
    return conv.text[1:]


def _render_conversion(conv: Conversion, value: object) -> bytes:
    if conv.swallowed:
        return _encode(_swallowed_text(conv))
    if conv.conv in BUFFER_CONVERSIONS:
        if not conv.bare:
            return _encode(conv.text)  # glibc prints an unknown conversion as is
        return hex_format_buffer(_as_bytes(value, conv), conv.conv).encode("ascii")
    if conv.conv == "s":
        return _pad(_as_bytes(value, conv)[: conv.precision], conv)
    n = _as_int(value, conv)
    if conv.conv == "c":
        return _pad(bytes([n & 0xFF]), conv)  # precision and '0' do not apply to %c
    if conv.conv == "p":
        return _render_pointer(n & (2**64 - 1), conv)
    bits = _LENGTH_BITS[conv.length]
    n &= (1 << bits) - 1
    sign = ""
    if conv.conv == "d":
        if n >= 1 << (bits - 1):
            n -= 1 << bits
        if n < 0:
            sign, n = "-", -n
        digits = str(n)
    elif conv.conv == "u":
        digits = str(n)
    elif conv.conv == "o":
        digits = format(n, "o")
    else:
        digits = format(n, conv.conv)  # 'x' or 'X'
    if conv.precision == 0 and n == 0:
        digits = ""  # C: precision 0 prints nothing for zero
    return _pad_number(sign, "", digits, conv).encode("ascii")


def _render_pointer(n: int, conv: Conversion) -> bytes:
    if n == 0:
        # glibc prints "(nil)", ignoring precision and the '0' flag.
        return _pad(b"(nil)", conv)
    return _pad_number("", "0x", format(n, "x"), conv).encode("ascii")


def _pad_number(sign: str, prefix: str, digits: str, conv: Conversion) -> str:
    if conv.precision is not None:
        digits = digits.rjust(conv.precision, "0")
    body = sign + prefix + digits
    fill = (conv.width or 0) - len(body)
    if fill <= 0:
        return body
    if "-" in conv.flags:
        return body + " " * fill
    if "0" in conv.flags and conv.precision is None:
        return sign + prefix + "0" * fill + digits
    return " " * fill + body


def _pad(data: bytes, conv: Conversion) -> bytes:
    # C pads by bytes, not characters, and ignores '0' for %s and %c.
    fill = (conv.width or 0) - len(data)
    if fill <= 0:
        return data
    return data + b" " * fill if "-" in conv.flags else b" " * fill + data


def _as_int(value: object, conv: Conversion) -> int:
    if isinstance(value, int):  # bool is an int
        return int(value)
    raise TypeError(f"{conv.text} needs an integer value, got {type(value).__name__}")


def _as_bytes(value: object, conv: Conversion) -> bytes:
    if isinstance(value, str):
        return _encode(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{conv.text} needs a str or bytes value, got {type(value).__name__}")


def hex_format_buffer(data: bytes, conv: str = "r") -> str:
    """0.17's hex_format_buffer: %r keeps printable ASCII (32..126) and writes
    other bytes as \\xNN; %rx writes every byte as \\xNN; %rh as "NN NN ..."."""
    if conv == "rh":
        return " ".join(f"{b:02x}" for b in data)
    if conv == "rx":
        return "".join(f"\\x{b:02x}" for b in data)
    return "".join(chr(b) if 32 <= b <= 126 else f"\\x{b:02x}" for b in data)


# --------------------------------------------------------------------------
# strftime-style formats: time() and strftime()
# --------------------------------------------------------------------------
#
# 0.17 does no compile-time checking of these: the string goes to glibc
# strftime(), which prints unknown conversions (%Q, %N, "%10f") as written and
# a trailing lone '%' as '%'.  strftime() (not time()) first replaces every
# "%f" with the zero-padded 6-digit microseconds, textually, so "%%f" is broken
# too ("%%123456" -> strftime "%1..." -> error).  Verified outputs:
#   time("%H:%M:%S.%f\n")          -> "23:34:09.%f"
#   strftime("%H:%M:%S.%f", nsecs) -> "23:34:09.834252"
#   strftime("%k|%l|%N|%f", nsecs) -> "23|11|%N|478141"
# Both format into a 64-byte buffer (strftime(): BPFTRACE_STRLEN): a result of
# 64 bytes or more, or an empty one, makes strftime() return 0, and 0.17 then
# logs "strftime returned 0" and prints "(?)" (strftime()) or nothing (time()).
# strftime(fmt, nsecs) counts from boot: seconds = boot time's tv_sec and
# nsecs = boot tv_nsec + the argument, combined as tv_sec + nsecs / 1e9 in
# double precision, exactly as render_time() does.

# glibc strftime conversion characters (after optional flags, width and E/O).
_TIME_CONVERSIONS = frozenset("aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ%")  # no %+ in glibc
_TIME_SPEC_RE = re.compile(r"%[-_0^#]*[0-9]*[EO]?(.?)", re.S)
TIME_BUILTINS = ("time", "strftime")
UNRESOLVED_TIMESTAMP = "(?)"  # what 0.17's strftime() prints when formatting fails


def check_time_format(fmt: str, builtin: str = "strftime") -> list[FormatProblem]:
    """Problems in a time()/strftime() format.  0.17 accepts any string, so all
    of these are warnings about text that will be printed as written."""
    if builtin not in TIME_BUILTINS:
        raise ValueError(f"builtin must be one of {TIME_BUILTINS}, not {builtin!r}")
    problems: list[FormatProblem] = []
    i = fmt.find("%")
    while i != -1:
        m = _TIME_SPEC_RE.match(fmt, i)
        assert m is not None
        ch = m.group(1)
        spec = m.group(0)
        if not ch:
            problems.append(FormatProblem(
                i, m.end(), "lone '%' at the end of the format string is printed as is",
                SEVERITY_WARNING))
        elif ch == "f" and builtin == "strftime":
            if spec != "%f":
                problems.append(FormatProblem(
                    i, m.end(),
                    f"'{spec}': bpftrace only replaces a bare '%f' with microseconds; "
                    "this is printed as is", SEVERITY_WARNING))
        elif ch == "f":
            problems.append(FormatProblem(
                i, m.end(), "time() does not support %f (only strftime() does); "
                "it is printed as is", SEVERITY_WARNING))
        elif ch == "%" and spec == "%%" and builtin == "strftime" and fmt.startswith("f", m.end()):
            problems.append(FormatProblem(
                i, m.end() + 1,
                "bpftrace 0.17 replaces the '%f' inside '%%f' with microseconds, "
                "which garbles the format", SEVERITY_WARNING))
        elif ch not in _TIME_CONVERSIONS:
            problems.append(FormatProblem(
                i, m.end(), f"'{spec}' is not a strftime conversion; it is printed as is",
                SEVERITY_WARNING))
        i = fmt.find("%", m.end())
    return problems


def render_time(
    fmt: str,
    seconds: int,
    nsecs: int,
    utc: bool = False,
    *,
    builtin: str = "strftime",
    buffer_size: int = 64,
) -> str | None:
    """Format a timestamp as 0.17's time()/strftime() do.

    The instant is ``seconds + nsecs / 1e9`` (nsecs may exceed a second).  For
    strftime() pass the boot time's seconds and its nanoseconds plus the
    argument; for time() the wall clock.  0.17 always uses local time; ``utc``
    is there for later versions' strftime(..., utc).  Returns None where 0.17 reports
    "strftime returned 0" (result empty or at least ``buffer_size`` bytes): the
    caller prints UNRESOLVED_TIMESTAMP for strftime() and nothing for time().
    """
    if builtin not in TIME_BUILTINS:
        raise ValueError(f"builtin must be one of {TIME_BUILTINS}, not {builtin!r}")
    # Same double-precision arithmetic as 0.17, so rounding at second edges agrees.
    whole = int(seconds + nsecs / 1e9)
    if builtin == "strftime":
        micros = (nsecs % 1_000_000_000) // 1000
        fmt = fmt.replace("%f", f"{micros:06d}")
    if utc:
        gm = time.gmtime(whole)
        # glibc's gmtime_r names the zone "GMT"; Python's says "UTC".
        tm = time.struct_time(tuple(gm)[:9], {"tm_zone": "GMT", "tm_gmtoff": 0})
    else:
        tm = time.localtime(whole)
    try:
        text = time.strftime(fmt, tm)
    except ValueError:  # embedded NUL or a date glibc cannot represent
        return None
    size = len(_encode(text))
    if size == 0 or size >= buffer_size:
        return None
    return text
