"""Run-time configuration: bpftrace's config variables with their defaults.

Values come from, lowest priority first: the defaults below, the script's
``config = { ... }`` block, then ``BPFTRACE_<NAME>`` (or ``PYTRACE_<NAME>``)
environment variables, as in bpftrace where the environment wins.
"""

from __future__ import annotations

from typing import Mapping

from ..diagnostics import Diagnostics, suggest
from ..frontend import ast
from ..records import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    default: int | str | bool
    choices: tuple[str, ...] = ()
    doc: str = ""


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("max_map_keys", 4096, doc="entries per map"),
    Setting("max_strlen", 64, doc="bytes kept of a string"),
    Setting("max_probes", 512, doc="attach points per script"),
    Setting("max_bpf_progs", 1024, doc="BPF programs per script"),
    Setting("max_cat_bytes", 10240, doc="bytes printed by cat()"),
    Setting("max_type_res_iterations", 0, doc="type resolution passes (0: no limit)"),
    Setting("log_size", 1_000_000, doc="verifier log buffer size"),
    Setting("perf_rb_pages", 64, doc="ring buffer pages per CPU"),
    Setting("stack_mode", "bpftrace", ("bpftrace", "perf", "raw"), "default format of stacks"),
    Setting("cpp_demangle", True, doc="demangle C++ symbols"),
    Setting("lazy_symbolication", False, doc="resolve user symbols when printing"),
    Setting("cache_user_symbols", "PER_PROGRAM", ("PER_PROGRAM", "PER_PID", "NONE"), "user symbol cache"),
    Setting("missing_probes", "error", ("error", "warn", "ignore"), "what to do when a probe is missing"),
    Setting("print_maps_on_exit", True, doc="print every map at exit"),
    Setting("on_stack_limit", 32, doc="bytes above which values move off the BPF stack"),
    Setting("str_trunc_trailer", "..", doc="appended to truncated strings"),
    Setting("license", "GPL", doc="license of the BPF programs"),
    Setting("show_debug_info", False, doc="print debug information"),
    Setting("verify_llvm_ir", False, doc="verify the generated IR"),
)}
# Names accepted by older bpftrace versions.
ALIASES = {"strlen": "max_strlen", "map_keys_max": "max_map_keys"}


def _convert(setting: Setting, raw: int | str | bool) -> int | str | bool | None:
    d = setting.default
    if isinstance(d, bool):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int):
            return raw != 0
        low = str(raw).lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        return None
    if isinstance(d, int):
        if isinstance(raw, bool):
            return None
        try:
            return int(raw) if isinstance(raw, int) else int(str(raw), 0)
        except ValueError:
            return None
    text = str(raw)
    if setting.choices:
        for c in setting.choices:
            if c.lower() == text.lower():
                return c
        return None
    return text


def resolve(blocks: list[ast.Config], environ: Mapping[str, str], diags: Diagnostics) -> dict[str, int | str | bool]:
    values: dict[str, int | str | bool] = {k: s.default for k, s in SETTINGS.items()}
    for block in blocks:
        for entry in block.entries:
            name = ALIASES.get(entry.key, entry.key)
            setting = SETTINGS.get(name)
            if setting is None:
                diags.error(f"unknown config variable '{entry.key}'", entry.span,
                            hints=suggest(entry.key, list(SETTINGS)))
                continue
            v = entry.value
            raw: int | str | bool | None
            if isinstance(v, ast.Integer):
                raw = v.value
            elif isinstance(v, ast.Bool):
                raw = v.value
            elif isinstance(v, ast.String):
                raw = v.value
            elif isinstance(v, ast.Ident):
                raw = v.name
            else:
                raw = None
            value = None if raw is None else _convert(setting, raw)
            if value is None:
                want = " or ".join(setting.choices) if setting.choices else type(setting.default).__name__
                diags.error(f"invalid value for config variable '{name}' (expected {want})", v.span)
                continue
            values[name] = value
    for prefix in ("BPFTRACE_", "PYTRACE_"):
        for key, text in environ.items():
            if not key.startswith(prefix):
                continue
            name = key[len(prefix):].lower()
            name = ALIASES.get(name, name)
            setting = SETTINGS.get(name)
            if setting is None:
                continue
            value = _convert(setting, text)
            if value is None:
                diags.error(f"invalid value {text!r} in environment variable {key}", None)
                continue
            values[name] = value
    return values
