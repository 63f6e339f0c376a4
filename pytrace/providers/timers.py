"""Shared parsing for timer-like attach points (profile and interval):
``unit:value`` with unit in hz, s, ms, us (and ns), or ``value`` with a
unit suffix (``1s``, ``100ms``) as newer bpftrace accepts."""

from __future__ import annotations

import re

from .base import parse_int

UNITS = ("hz", "s", "ms", "us", "ns")
_SUFFIXED = re.compile(r"^([0-9_]+)(hz|s|ms|us|ns)$")


def parse_rate(parts: list[str]) -> tuple[str, int] | tuple[str, None, int]:
    """(unit, value) from the parts after the provider name, or (problem,
    None, index of the part at fault, 0 for the whole attach point)."""
    if len(parts) == 2:
        unit, value_text = parts
        unit_at, value_at = 1, 2
    elif len(parts) == 1 and parts[0]:
        m = _SUFFIXED.match(parts[0])
        if not m:
            return "a unit and a value are needed", None, 0
        value_text, unit = m.group(1), m.group(2)
        unit_at = value_at = 1
    else:
        return "a unit and a value are needed", None, 0
    if unit not in UNITS:
        return f"unknown unit '{unit}' (use hz, s, ms or us)", None, unit_at
    value = parse_int(value_text) if value_text else None
    if value is None or value <= 0:
        return f"invalid value '{value_text}': a positive integer is needed", None, value_at
    return unit, value


def period_ns(unit: str, value: int) -> int:
    """The period in nanoseconds (for hz: 1e9 / value)."""
    if unit == "hz":
        return max(1, 1_000_000_000 // value)
    return value * {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[unit]
