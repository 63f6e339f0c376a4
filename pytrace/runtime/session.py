"""A tracing session: maps and programs in, probes attached, events out.

A run goes as in bpftrace 0.17: BEGIN runs, the other probes are attached,
"Attaching N probes..." and the test marker are printed, then what BEGIN
printed, then events until exit(), SIGINT/SIGTERM, the end of the -c
command or of the -p process (or the reader of the output going away);
then the probes are detached, END runs, lost events and full maps are
reported and the maps printed.

``Session`` is a context manager: whatever happens (normal exit, exit(),
Ctrl-C, SIGTERM, an error half-way through attaching, a Python exception),
leaving it closes every link, perf event, program and map it created,
perf-event tracepoints concurrently (each close waits for an RCU grace
period).
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from typing import Callable, TextIO

from ..bpf import attach as A
from ..bpf import elf
from ..bpf.maps import BpfMap
from ..bpf.program import VerifierError, load_program, test_run
from ..bpf.syscalls import BpfPermissionError
from ..bpf.progbtf import ProgramBtf
from ..bpf.ringbuf import RingBuffer
from ..bpf.syscalls import PAGE_SIZE, online_cpus, possible_cpus
from ..codegen.layout import COUNTERS_SECTION, MAP_ARRAY, MAP_PERCPU_ARRAY, MAP_RINGBUF, MAP_STACK_TRACE, \
    RINGBUF_BYTES, SCRATCH_MAP, STACK_MAP_ENTRIES, Layout, read_counters, read_hits
from ..codegen.llvm import module as M
from ..codegen.llvm.calls import RINGBUF_MAP, start_ns
from ..codegen.llvm.irgen import CodegenError
from ..codegen.llvm.worker import CompilerProcess
from ..diagnostics import Diagnostics
from ..errors import EnvironmentProblem
from ..kernel import tracefs
from ..output import text as out_text
from ..records import dataclass, field
from ..semantic.pipeline import Compilation
from . import decode, iterators
from .child import Child
from .events import EventHandler, EventSink
from ..providers.base import AttachEnv
from .probes import attach_program
from .mapview import MapOutput
from .writer import OutputWriter

NOTIFY_ENV = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"


@dataclass
class RunOptions:
    quiet: bool = False
    verbose: bool = False
    json: bool = False
    unsafe: bool = False
    pid: int | None = None
    child: Child | None = None
    params: list[str] = field(default_factory=list)
    # -B: "line"/"none" flush every write, "full" never; None (default):
    # flush after each batch of events (and every write on a terminal).
    buffering: str | None = None
    # Where the __BPFTRACE_NOTIFY_PROBES_ATTACHED marker goes (stdout even with -o).
    notify_out: TextIO | None = None
    # The forked LLVM child started by the command line (None: fork one when compiling).
    compiler: CompilerProcess | None = None
    # SIGINT/SIGTERM stop the run (the command line).  A session run in a
    # thread (the REPL's probe sets) cannot install handlers: it is stopped
    # with request_stop().
    handle_signals: bool = True
    # Count every probe run in a .bss counter (Session.hits; the REPL's toolbar).
    count_hits: bool = False
    # print(value) of a non-map value hands the decoded value (int, str,
    # tuple...) here instead of printing it (pytrace.api: tools that build
    # their own output, e.g. JSON records).
    on_value: Callable[[object], None] | None = None


class Session(OutputWriter, MapOutput):
    def __init__(self, comp: Compilation, options: RunOptions, out: TextIO, err: TextIO) -> None:
        self.comp = comp
        self.options = options
        self.out = out
        self.err = err
        self.maps: dict[str, BpfMap] = {}
        self.prog_fds: dict[str, int] = {}
        self.attachments: list[A.Attachment] = []
        self.layout: Layout | None = None
        self.specs: list[M.ProgramSpec] = []
        self.exit_code = 0
        self.events = 0  # records consumed from the ring buffer
        self.stopping = False
        self.interrupted = False  # SIGINT/SIGTERM arrived (not exit())
        self.output_closed = False  # the reader of the output went away
        self._tracing = False  # in the event loop (see _stop)
        self.event_errors = 0
        self._error_messages: set[str] = set()
        # Output (text, or a system() call to run in order) kept back until
        # every probe is attached.
        self._held: list[str | Callable[[], None]] | None = None
        self.ringbuf: RingBuffer | None = None
        self.handler: EventHandler | None = None
        self.resolver: decode.Resolver | None = None
        self.data_maps: dict[str, BpfMap] = {}
        self._counter_offsets: dict[str, int] = {}
        # The REPL's toolbar reads the counters from its own thread while the
        # session's thread may be closing the maps: reads and close() hold
        # this lock, so a read never uses a closed (or reused) map fd.
        self._maps_lock = threading.Lock()
        self._last_counters = b""

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Detach and close everything.  Every step runs even when an earlier
        one fails (this also runs while another exception propagates)."""
        try:
            A.close_all(self.attachments)
        finally:
            self.attachments = []
            for fd in self.prog_fds.values():
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.prog_fds = {}
            if self.ringbuf is not None:
                try:
                    self.ringbuf.close()
                except BufferError:
                    pass  # a record view still exists: the mapping goes when it does
                self.ringbuf = None
            with self._maps_lock:
                for m in list(self.maps.values()) + list(self.data_maps.values()):
                    m.close()
                self.maps, self.data_maps = {}, {}

    # ------------------------------------------------------------------ loading
    def load(self, diags: Diagnostics) -> bool:
        comp = self.comp
        layout = M.build_layout(comp)
        self.layout = layout
        try:
            self.specs = M.plan_programs(comp, layout)
            # First pass of code generation discovers events and stack maps;
            # maps are then created and the final code embeds their fds.
            options = self._codegen_options()
            M.generate(comp, layout, self.specs, {}, options)
        except CodegenError as exc:
            diags.error(str(exc), exc.span, hints=exc.hints)  # type: ignore[arg-type]
            return False
        self._create_maps(layout)
        fds = {name: m.fd for name, m in self.maps.items()}
        layout.events.clear()
        layout.time_formats.clear()
        gen = M.generate(comp, layout, self.specs, fds, self._codegen_options())
        try:
            obj = elf.ElfObject.from_bytes(M.emit_object_safely(gen, self.options.compiler))
        except CodegenError as exc:
            span = self.comp.probes[0].probe.span if self.comp.probes else None
            diags.error(str(exc), span, hints=exc.hints)
            return False
        self.data_maps = elf.create_data_maps(obj)
        # Where each loss counter sits in the counters section (layout.read_counters).
        counters = next((sec for sec in obj.sections if sec.name == COUNTERS_SECTION), None)
        self._counter_offsets = {sym.name: sym.value for sym in obj.symbols
                                 if counters is not None and sym.shndx == counters.index}
        data_fds = {name: m.fd for name, m in self.data_maps.items()}
        license = str(comp.config.get("license", "GPL"))
        for spec in self.specs:
            linked = elf.link(obj, f"pytrace/{spec.name}", fds, data_fds)
            insns = linked.insns
            btf = ProgramBtf.load(spec.name, list(linked.subprogs)) if linked.subprogs else None
            try:
                fd = load_program(spec.prog_type, insns, license=license, name=spec.name[:15],
                                  log_level=1, btf_fd=btf.fd if btf else 0,
                                  func_info=btf.records if btf else b"",
                                  expected_attach_type=spec.expected_attach_type,
                                  attach_btf_id=self._attach_btf_id(spec))
            except (BpfPermissionError, VerifierError) as exc:
                # EPERM before any instruction was verified (an empty log, or only "processed 0
                # insns" for the map-element iterators here) refuses the program kind.
                provider = comp.providers.lookup(spec.attaches[0].provider)
                why = f"BPF_PROG_LOAD fails with {errno.errorcode.get(exc.errno or 0, exc.errno)} before the verifier runs"
                said = provider.load_refused(spec.attaches[0], why) if provider and exc.errno == errno.EPERM and \
                    (isinstance(exc, BpfPermissionError) or exc.insn_index is None) else None
                if said is not None:
                    raise EnvironmentProblem(said) from None
                if isinstance(exc, BpfPermissionError):
                    raise
                # Point at the statement the rejected instruction came from
                # (compiled again with a line table: see runtime/rejection.py).
                from . import rejection
                node = rejection.locate(comp, layout, self.specs, spec, fds, data_fds, self._codegen_options(),
                                        insns, exc.insn_index)
                rejection.report(diags, exc, spec, node, verbose=self.options.verbose, err=self.err)
                return False
            finally:
                if btf is not None:
                    btf.close()  # the program holds its own reference
            self.prog_fds[spec.name] = fd
            if self.options.verbose:
                self._describe_program(spec, fd)
        self._fill_filters()
        from ..kernel.symbols import UserSymbols
        self.resolver = decode.Resolver(layout, usyms=UserSymbols(demangle=self._demangle),
                                        stack_lookup=self._stack_lookup,
                                        boot_wall_ns=time.time_ns() - time.monotonic_ns(),
                                        func_names=self._func_names(layout))
        return True

    def _attach_btf_id(self, spec: M.ProgramSpec) -> int:
        """The kernel BTF id a BTF-attached program (fentry, iter) names at
        load time; 0 for the others."""
        if spec.btf_type is None:
            return 0
        from ..kernel.btf import Btf
        kind, name = spec.btf_type
        try:
            tid = Btf.load().type_id(kind, name)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot load {spec.attaches[0].target}: the kernel's BTF cannot be read "
                                     f"({exc.strerror or exc})", "it needs CONFIG_DEBUG_INFO_BTF=y") from None
        if tid is None:
            raise EnvironmentProblem(f"cannot load {spec.attaches[0].target}: the kernel's BTF has no {kind} "
                                     f"'{name}'")
        return tid

    def _describe_program(self, spec: M.ProgramSpec, fd: int) -> None:
        """-v: one line per loaded program (its kernel id, size and targets)."""
        from ..bpf.program import prog_info, prog_type_name
        try:
            info = prog_info(fd)
        except OSError:
            return
        targets = ", ".join(a.target for a in spec.attaches[:3]) + (
            f" and {len(spec.attaches) - 3} more" if len(spec.attaches) > 3 else "")
        print(f"Program {spec.name}: id {info.id}, {prog_type_name(spec.prog_type)}, "
              f"{info.xlated_len // 8} instructions, {info.jited_len} bytes JITed, for {targets}", file=self.err)

    def _codegen_options(self) -> dict[str, object]:
        child = self.options.child
        return {"params": self.options.params, "count_hits": self.options.count_hits,
                "start_ns": self._start_ns, "ncpus": len(online_cpus()),
                "possible_cpus": possible_cpus(),
                "cpid": child.pid if child else 0, "resolve_symbol": self._resolve_symbol}

    @property
    def _start_ns(self) -> int:
        if not hasattr(self, "_start"):
            self._start = start_ns()
        return self._start

    def _resolve_symbol(self, kind: str, name: str, binary: str | None = None) -> int | None:
        # One implementation for --emit and runs: kernel symbols, cgroup
        # inodes and the ELF symbols of the probe's binary (uaddr()).
        from ..kernel.addresses import default_resolve
        return default_resolve(kind, name, binary)

    @property
    def _demangle(self) -> bool:
        """config cpp_demangle (bpftrace's default 1): C++ names in func,
        usym and ustack demangled."""
        return bool(self.comp.config.get("cpp_demangle", True))

    def _func_names(self, layout: Layout) -> list[str]:
        """What 'func' prints for each probe (by probe index): the symbol,
        demangled unless cpp_demangle is off."""
        names = []
        by_target = {a.target: a for p in self.comp.probes for a in p.attaches}
        for target in layout.probe_names:
            a = by_target.get(target)
            if a is None:
                names.append(target)
                continue
            sym = (None if self._demangle else a.detail.get("elf_symbol")) or a.detail.get("symbol")
            names.append(str(sym or a.detail.get("func") or target))
        return names

    def _create_maps(self, layout: Layout) -> None:
        for ml in layout.maps.values():
            self.maps[ml.bpf_name] = BpfMap.create(ml.map_type, ml.key_size, ml.value_size, ml.max_entries,
                                                   ml.bpf_name, ml.flags)
        self.maps[RINGBUF_MAP] = BpfMap.create(MAP_RINGBUF, 0, 0, self.ring_bytes(), RINGBUF_MAP)
        if layout.scratch_size:
            self.maps[SCRATCH_MAP] = BpfMap.create(MAP_PERCPU_ARRAY, 4, layout.scratch_size, 1, SCRATCH_MAP)
        for name, depth in layout.stack_maps.items():
            self.maps[name] = BpfMap.create(MAP_STACK_TRACE, 4, 8 * 127, STACK_MAP_ENTRIES, name)
            del depth
        for spec in self.specs:
            if spec.filter_map:
                self.maps[spec.filter_map] = BpfMap.create(MAP_ARRAY, 4, 8, M.SYSCALL_TABLE_SIZE, spec.filter_map)

    def ring_bytes(self) -> int:
        """The event ring's size: RINGBUF_BYTES, or perf_rb_pages x 4096
        rounded up to a power of two when the script or the environment
        sets perf_rb_pages (bpftrace's knob for its per-CPU perf buffers;
        one ring shared by all CPUs here)."""
        if not self._perf_rb_pages_set():
            return RINGBUF_BYTES
        pages = max(1, int(self.comp.config.get("perf_rb_pages", 64)))
        size = pages * PAGE_SIZE
        return 1 << (size - 1).bit_length()

    def _perf_rb_pages_set(self) -> bool:
        names = ("BPFTRACE_PERF_RB_PAGES", "PYTRACE_PERF_RB_PAGES")
        if any(n in self.comp.options.environ for n in names):
            return True
        program = self.comp.program
        return program is not None and any(e.key == "perf_rb_pages" for block in program.config
                                           for e in block.entries)

    def _fill_filters(self) -> None:
        for spec in self.specs:
            if spec.filter_map:
                m = self.maps[spec.filter_map]
                for nr, value in spec.filter_entries.items():
                    m.update(nr.to_bytes(4, "little"), value.to_bytes(8, "little"))

    def _stack_lookup(self, mapname: str, sid: int) -> list[int] | None:
        m = self.maps.get(mapname)
        return None if m is None else m.stack(sid)

    # ------------------------------------------------------------------ attaching
    def attach(self) -> int:
        """Attach every program; returns the number of probes (as bpftrace
        counts them).  Stops early (returning what it counted) when SIGINT or
        SIGTERM arrived meanwhile; a failure raises, and ``close()`` then
        detaches what was attached before it."""
        child = self.options.child
        env = AttachEnv(tracefs.tracefs_root, self.options.pid if self.options.pid is not None
                        else (child.pid if child else None))
        count = 0
        for spec in self.specs:
            if self.stopping:
                break
            count += len(spec.attaches)
            if spec.kind in ("begin", "end"):
                continue
            self.attachments.extend(attach_program(spec, self.prog_fds[spec.name], self.comp.providers, env,
                                                   warn=lambda m: print(f"WARNING: {m}", file=self.err)))
        return count

    # ------------------------------------------------------------------ running
    def run(self) -> int:
        """Run BEGIN, attach, print events until exit()/a signal/the traced
        process ends, then detach, run END and print the maps.  SIGINT and
        SIGTERM only set a flag from the moment this starts, so the teardown
        below always runs; what leaving early skips is closed by ``close()``."""
        assert self.layout is not None and self.resolver is not None
        if not self.options.handle_signals:
            return self._run()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._run()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def request_stop(self) -> None:
        """Stop the run from another thread: the event loop sees it within
        its 0.1 s poll, then detaches, runs END and prints the maps."""
        self.stopping = True

    def _counters(self) -> bytes:
        """The .bss counters as last read (their final values once closed)."""
        with self._maps_lock:
            counters = self.data_maps.get(COUNTERS_SECTION)
            if counters is not None:
                self._last_counters = counters.lookup(bytes(4)) or b""
            return self._last_counters

    def hits(self) -> int:
        """How many times the probes ran (only counted with RunOptions.count_hits)."""
        if self.layout is None:
            return 0
        return read_hits(self.layout, self._counters(), self._counter_offsets)

    def lost_events(self) -> int:
        """Events lost in the kernel so far (the ring buffer was full)."""
        if self.layout is None:
            return 0
        return read_counters(self.layout, self._counters(), self._counter_offsets)[0]

    def _run(self) -> int:
        try:
            return self._trace()
        except Exception as exc:
            # The traceback's frames hold memoryviews of the ring buffer's
            # mapping (the consumer's and the handler's), and close() cannot
            # unmap it while they live: keep the text, drop the frames.
            import traceback
            exc.pytrace_traceback = "".join(traceback.format_exception(exc))  # type: ignore[attr-defined]
            raise exc.with_traceback(None)

    def _trace(self) -> int:
        assert self.layout is not None and self.resolver is not None
        self.ringbuf = RingBuffer(self.maps[RINGBUF_MAP])
        sink = EventSink(write=self._write, on_exit=self._on_exit, on_print_map=self._print_map,
                         on_clear=self._clear_map, on_print_value=self._print_value,
                         system=self._system if self.options.unsafe else None, json=self.options.json,
                         on_error=self._on_event_error)
        self.handler = EventHandler(self.layout, self.resolver, sink)
        self.ringbuf.callback = self.handler
        # bpftrace's order: BEGIN runs before the other probes are attached,
        # so its output (table headers) comes before any event's;
        # "Attaching N probes..." is printed once they are all attached (and
        # not at all when attaching fails), then what BEGIN printed.  exit()
        # in BEGIN ends the run without attaching anything.
        n = sum(len(spec.attaches) for spec in self.specs)
        self._held = []
        try:
            self._run_special("begin")
            if not self.stopping:
                self.attach()
        finally:
            held, self._held = self._held, None
        if not self.interrupted:
            if not self.options.quiet:
                if self.options.json:
                    from ..output import json as out_json
                    self._write(out_json.format_attached(n))
                else:
                    self._write(out_text.format_attached(n))
        self._flush()
        if not self.interrupted:
            # As bpftrace 0.17: Attaching..., the marker, then BEGIN's output.
            # bpftrace's test protocol: the variable's name, on its own line.
            if NOTIFY_ENV in os.environ:
                print(NOTIFY_ENV, file=self.options.notify_out or self.out, flush=True)
        for item in held:
            if isinstance(item, str):
                self._write(item)
            else:
                item()
        self._flush()
        if self.options.child and not self.stopping:
            self.options.child.release()
        if not self.stopping:
            iterators.run(self, self._write, self._flush)  # after BEGIN, before END; alone, they end the run
        child = self.options.child
        pid = self.options.pid
        batch_flush = self.options.buffering is None
        self._tracing = True
        traced = pid or (child.pid if child is not None else None)
        snapshots = traced is not None and self._symbolises_user_space()
        last_snapshot = 0.0
        try:
            while not self.stopping:
                if snapshots and time.monotonic() - last_snapshot > 0.02:
                    # Keep the traced process's mappings while it lives (see
                    # UserSymbols.snapshot): it may exit before its last
                    # events are decoded.  (~50 us a read, at most 50 a second.)
                    self.resolver.usyms.snapshot(traced)
                    last_snapshot = time.monotonic()
                # A bounded batch: a flood of events must not keep the loop
                # from seeing exit() or Ctrl-C.
                got = self.ringbuf.poll(0.1, limit=65536)
                self.events += got
                self.handler.flush()
                if got and batch_flush:
                    self._flush()
                if child is not None and child.exited():
                    break
                if pid and process_gone(pid):
                    break
        finally:
            self._tracing = False
        self._drain()
        A.close_all(self.attachments)
        self.attachments = []
        self._run_special("end")
        self._drain()
        self._report_lost()
        if self.event_errors > len(self._error_messages):
            print(f"pytrace: {self.event_errors} events could not be printed (errors above)", file=self.err)
        if self.comp.config.get("print_maps_on_exit", True):
            self.print_all_maps()
        self._flush()
        return self.exit_code

    def _symbolises_user_space(self) -> bool:
        """Whether the script prints user addresses as symbols (ustack,
        usym, func of a uprobe)."""
        from ..frontend import ast
        assert self.comp.program is not None
        return any(isinstance(n, (ast.Ident, ast.Call)) and n.name in ("ustack", "usym", "func")
                   for n in self.comp.program.walk())

    def _on_signal(self, signum: int, frame: object) -> None:
        self.interrupted = True
        self._stop()

    def _on_exit(self, code: int) -> None:
        self.exit_code = code
        self._stop()

    def _stop(self) -> None:
        """Stop tracing.  While events are being printed, detach at once:
        the consumer may be inside a drain that new events keep feeding (a
        script printing every syscall also sees the writes of its own
        output), and only detaching lets that drain end."""
        self.stopping = True
        if self._tracing and self.attachments:
            attachments, self.attachments = self.attachments, []
            A.close_all(attachments)

    def _drain(self) -> None:
        """Consume every pending event and write what the hot path collected."""
        if self.ringbuf is not None:
            self.ringbuf.drain()
        if self.handler is not None:
            self.handler.flush()

    def _run_special(self, kind: str) -> None:
        for spec in self.specs:
            if spec.kind == kind:
                test_run(self.prog_fds[spec.name], ctx=bytes(64))
        if self.ringbuf is not None:
            self._drain()

    def _on_event_error(self, message: str) -> None:
        """A record that could not be turned into output: reported once per
        distinct message; the total is reported at the end."""
        self.event_errors += 1
        if message not in self._error_messages:
            self._error_messages.add(message)
            print(message, file=self.err)

    def _system(self, command: str) -> None:
        import subprocess
        if self._held is not None:
            # BEGIN's output is held until attaching is done: keep the order.
            self._held.append(lambda: self._system(command))
            return
        self.out.flush()
        subprocess.run(command, shell=True)

    def _report_lost(self) -> None:
        counters = self.data_maps.get(COUNTERS_SECTION)
        if counters is None or self.layout is None:
            return
        total, full = read_counters(self.layout, counters.lookup(bytes(4)) or b"", self._counter_offsets)
        if total:
            if self.options.json:
                from ..output import json as out_json
                self._write(out_json.format_lost(total))
            else:
                print(out_text.format_lost(total), file=self.err, end="")
        for name, n in full.items():
            if n:
                ml = self.layout.maps[name]
                print(f"WARNING: map {name} was full: {n} update(s) dropped (max_entries {ml.max_entries}); "
                      f"raise it with BPFTRACE_MAX_MAP_KEYS or config = {{ max_map_keys = N }}",
                      file=self.err)


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its parent counts)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return True
    # "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'.
    state = stat[stat.rfind(b")") + 2: stat.rfind(b")") + 3]
    return state in (b"Z", b"X")
