"""Boot a Debian kernel under QEMU and run one command in it as root.

This module owns the kernel-matrix harness (recipe and measured facts:
/work/shared/reference/qemu-kernel-matrix.md):

* the kernel comes from ``scripts/setup-kernels``: Debian's generic
  ``linux-image-6.1.*-amd64`` unpacked with ``dpkg-deb -x`` under
  ``/var/cache/pytrace-kernels/<version>/`` (the running system's /boot is
  never touched);
* the uncompressed vmlinux is cut out of the bzImage and booted through PVH
  (the xz decompressor costs ~3.5 s under TCG), cached next to the kernel;
* a cached gzip initramfs holds static busybox, ``/init`` and the modules the
  boot needs (virtio, 9p, overlay, virtio_console, virtio_blk: all ``=m`` in
  Debian); a sparse per-run raw image is the guest's /dev/vda; the
  per-run files (the command, the rw shares) go in a second, uncompressed newc
  archive appended at a 4-byte-aligned offset (the kernel ignores a segment
  that is not aligned);
* the guest mounts the host's ``/`` read-only over 9p under an overlay with a
  tmpfs upper layer (the whole tree looks writable, writes vanish), mounts
  tracefs, debugfs, bpffs and cgroup2, and runs the command in a chroot with
  stdout/stderr on two virtio-serial ports, which the host reads from FIFOs
  (the 8250 UART is 20x slower and not binary-clean);
* the exit status comes back on the serial console as ``@@RIK_RC=n@@``.

KVM is used only when /proc/cpuinfo has vmx/svm: a PVM ``/dev/kvm`` (this
machine's) accepts KVM_CREATE_VM but emulates ring-0 code at ~1 M insn/s and
cannot boot a stock kernel, so "does /dev/kvm open" is the wrong test.

Command line, for trying things by hand::

    python3 -m tests.kernels.qemu [--rw DIR] [--timeout S] -- uname -r
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import lzma
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

DEFAULT_CACHE = Path("/var/cache/pytrace-kernels")
# Set in the guest's environment; tests/guest checks it (with the kprobe PMU).
GUEST_ENV = "PYTRACE_KERNEL_GUEST"
# What /init must load to reach the 9p root, the virtio-serial ports and the
# scratch disk (virtio_blk is =m in Debian's 6.1); the closure over
# modules.dep adds netfs, fscache, virtio_ring, ...
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay", "virtio_console", "virtio_blk")
# The guest's only block device, /dev/vda: a sparse raw image made per run in
# the run's temporary directory, so block-layer probes see nothing but the
# I/O a test makes (the root is 9p + overlay + tmpfs, which issue none).
DISK_MIB = 64
GUEST_DISK = "/dev/vda"
# Bumped when /init or the archive layout changes, so cached images rebuild.
LAYOUT_VERSION = "3"
NINEP_OPTS = "trans=virtio,version=9p2000.L,msize=262144"

Output = Callable[[bytes], None]


class HarnessError(RuntimeError):
    """The guest could not be prepared or booted (not a failing command)."""


@dataclass(frozen=True)
class Kernel:
    """A kernel package unpacked by scripts/setup-kernels."""

    root: Path
    version: str

    @property
    def bzimage(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def moddir(self) -> Path:
        return self.root / "lib" / "modules" / self.version

    @property
    def config(self) -> Path:
        return self.root / "boot" / f"config-{self.version}"


@dataclass
class GuestResult:
    """What one boot returned. ``rc`` is -1 when the guest reported none."""

    rc: int
    stdout: bytes
    stderr: bytes
    console: str
    seconds: float
    timed_out: bool = False
    error: str = ""
    argv: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[int | bytes]:
        """Unpacks as ``rc, stdout, stderr``."""
        return iter((self.rc, self.stdout, self.stderr))


def _version_key(name: str) -> list[int | str]:
    return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", name)]


def find_kernels(cache: Path | None = None) -> list[Kernel]:
    """Kernels unpacked under the cache, oldest first."""
    cache = cache or Path(os.environ.get("PYTRACE_KERNEL_CACHE", DEFAULT_CACHE))
    if not cache.is_dir():
        return []
    found = [Kernel(d, d.name) for d in cache.iterdir()
             if (d / ".complete").exists() and (d / "boot" / f"vmlinuz-{d.name}").exists()]
    return sorted(found, key=lambda k: _version_key(k.version))


def default_kernel(cache: Path | None = None) -> Kernel:
    kernels = find_kernels(cache)
    if not kernels:
        raise HarnessError("no guest kernel is unpacked; run scripts/setup-kernels first")
    return kernels[-1]


def accelerator() -> tuple[str, str]:
    """(accel, cpu) for QEMU: KVM only with hardware virtualisation (pitfall 1)."""
    forced = os.environ.get("PYTRACE_QEMU_ACCEL")
    if forced:
        return forced, "host" if forced == "kvm" else "max"
    try:
        flags = next((ln.split(":", 1)[1].split() for ln in open("/proc/cpuinfo")
                      if ln.startswith("flags")), [])
    except OSError:
        flags = []
    if ("vmx" in flags or "svm" in flags) and os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "kvm", "host"
    return "tcg", "max"


# --- newc (cpio "070701") writer -------------------------------------------

class Newc:
    """Builds a newc archive in memory: the format the kernel unpacks into rootfs."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._ino = 1

    def _pad(self) -> None:
        self._buf += b"\0" * (-len(self._buf) % 4)

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        raw = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0)
        self._ino += 1
        self._buf += b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        self._pad()
        self._buf += data
        self._pad()

    def dir(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, 0o040000 | mode)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, 0o020000 | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return bytes(self._buf)


# --- kernel image -----------------------------------------------------------

def _has_pvh_note(elf: bytes) -> bool:
    """True when the ELF has XEN_ELFNOTE_PHYS32_ENTRY (name "Xen", type 18)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, p_off, _va, _pa, p_filesz = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = p_off, p_off + p_filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The uncompressed ELF inside a bzImage, or None if it cannot boot via PVH."""
    if bzimage[0x202:0x206] != b"HdrS":
        return None
    setup_sects = bzimage[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = bzimage[start:start + payload_length]
    try:
        if payload.startswith(b"\xfd7zXZ\x00"):
            elf = lzma.decompress(payload)      # trailing size word is ignored
        elif payload.startswith(b"\x1f\x8b"):
            elf = zlib.decompressobj(31).decompress(payload)
        elif payload.startswith(b"\x5d\x00"):
            elf = lzma.decompress(payload, format=lzma.FORMAT_ALONE)
        else:
            return None                         # zstd, lz4, ...: boot the bzImage
    except (lzma.LZMAError, zlib.error):
        return None
    return elf if _has_pvh_note(elf) else None


def boot_image(kernel: Kernel) -> Path:
    """The file to pass to ``-kernel``: the cached PVH vmlinux, else the bzImage."""
    st = kernel.bzimage.stat()
    out = kernel.root / "pytrace-boot" / f"vmlinux-{st.st_size}-{int(st.st_mtime)}"
    marker = out.with_suffix(".nopvh")
    if out.exists():
        return out
    if marker.exists():
        return kernel.bzimage
    out.parent.mkdir(exist_ok=True)
    elf = extract_vmlinux(kernel.bzimage.read_bytes())
    if elf is None:
        marker.touch()
        return kernel.bzimage
    _write_atomic(out, elf)
    return out


def _write_atomic(path: Path, data: bytes) -> None:
    # Concurrent runs may build the same cache file: write aside, then rename.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# --- initramfs ----------------------------------------------------------------

def module_order(moddir: Path, wanted: Sequence[str]) -> list[Path]:
    """Module files for ``wanted`` and their dependencies, dependencies first."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
        base = Path(mod).name.split(".ko")[0]
        by_name[base] = by_name[base.replace("-", "_")] = mod
    order: list[str] = []

    def visit(mod: str) -> None:
        if mod in order:
            return
        # modules.dep lists a module's dependencies so that loading them from
        # last to first works (that is what modprobe does).
        for dep in reversed(deps.get(mod, [])):
            visit(dep)
        order.append(mod)

    for name in wanted:
        mod = by_name.get(name) or by_name.get(name.replace("-", "_"))
        if mod is None:
            raise HarnessError(f"module {name} is not in {moddir}/modules.dep")
        visit(mod)
    return [moddir / m for m in order]


INIT_SCRIPT = r"""#!/bin/busybox sh
# pytrace kernel-matrix guest init (tests/kernels/qemu.py).
/bin/busybox mkdir -p /proc /sys /dev /lower /upper /newroot /tmp
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "@@RIK_FAIL=$*@@"; sync; poweroff -f; }
while read -r m; do
  insmod "/modules/$m" || fail "insmod $m"
done < /modules/order
mount -t 9p -o NINEP,ro,cache=loose hostroot /lower || fail "9p root"
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir -p /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot || fail overlay
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs -o mode=0755 tmpfs $R/run
mount -t tracefs tracefs $R/sys/kernel/tracing
mount -t debugfs debugfs $R/sys/kernel/debug
mount -t bpf bpf $R/sys/fs/bpf
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup
. /rik/config
KV=$(uname -r)
# The guest kernel's modules where modprobe looks, its config where feature
# probes look (the host's /lib/modules has none for this version).
if [ -n "$RIK_MODDIR" ] && [ -d "$R$RIK_MODDIR" ]; then
  mkdir -p "$R/lib/modules/$KV" && mount --bind "$R$RIK_MODDIR" "$R/lib/modules/$KV"
fi
[ -n "$RIK_CONFIG" ] && [ -f "$R$RIK_CONFIG" ] && cp "$R$RIK_CONFIG" "$R/boot/config-$KV"
TAB=$(printf '\t')
while IFS="$TAB" read -r tag path; do
  [ -n "$tag" ] || continue
  mkdir -p "$R$path"
  mount -t 9p -o NINEP,cache=mmap "$tag" "$R$path" || fail "rw share $path"
done < /rik/shares
ip link set lo up
OUT=/dev/null; ERR=/dev/null
for p in /sys/class/virtio-ports/*; do
  case "$(cat "$p/name")" in
    rik.stdout) OUT=/dev/${p##*/} ;;
    rik.stderr) ERR=/dev/${p##*/} ;;
  esac
done
cp /rik/cmd.sh $R/run/rik-cmd.sh
chroot $R /bin/bash /run/rik-cmd.sh </dev/null >"$OUT" 2>"$ERR"
rc=$?
sync
while IFS="$TAB" read -r tag path; do
  [ -n "$tag" ] && umount "$R$path" 2>/dev/null
done < /rik/shares
echo "@@RIK_RC=$rc@@"
poweroff -f
""".replace("NINEP", NINEP_OPTS)


def _static_busybox() -> Path:
    for cand in (os.environ.get("PYTRACE_BUSYBOX", ""), "/bin/busybox", "/usr/bin/busybox"):
        if cand and Path(cand).is_file():
            data = Path(cand).read_bytes()[:4096]
            phoff, = struct.unpack_from("<Q", data, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
            interp = any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3  # PT_INTERP
                         for i in range(phnum) if phoff + (i + 1) * phentsize <= len(data))
            if not interp:
                return Path(cand)
    raise HarnessError("no static busybox found; run scripts/setup-kernels (installs busybox-static)")


def base_initramfs(kernel: Kernel) -> Path:
    """The cached gzip initramfs: busybox, /init, the boot modules and their order."""
    busybox = _static_busybox()
    mods = module_order(kernel.moddir, BOOT_MODULES)
    h = hashlib.sha256()
    for part in (LAYOUT_VERSION, INIT_SCRIPT, str(busybox), str(busybox.stat().st_mtime),
                 *(f"{m}:{m.stat().st_mtime}" for m in mods)):
        h.update(part.encode() + b"\0")
    out = kernel.root / "pytrace-boot" / f"initrd-{h.hexdigest()[:16]}.gz"
    if out.exists():
        return out
    out.parent.mkdir(exist_ok=True)
    ar = Newc()
    for d in ("bin", "dev", "proc", "sys", "modules", "rik"):
        ar.dir(d)
    # The kernel opens /dev/console for /init's stdio before devtmpfs exists.
    ar.chardev("dev/console", 5, 1)
    ar.file("bin/busybox", busybox.read_bytes(), 0o755)
    ar.file("init", INIT_SCRIPT.encode(), 0o755)
    for m in mods:
        ar.file(f"modules/{m.name}", m.read_bytes())
    ar.file("modules/order", "".join(f"{m.name}\n" for m in mods).encode())
    _write_atomic(out, gzip.compress(ar.finish(), 6))
    return out


def _run_archive(script: str, shares: Sequence[tuple[str, str]], kernel: Kernel) -> bytes:
    ar = Newc()
    ar.dir("rik")
    ar.file("rik/cmd.sh", script.encode(), 0o755)
    ar.file("rik/shares", "".join(f"{t}\t{p}\n" for t, p in shares).encode())
    ar.file("rik/config", (f"RIK_MODDIR={shlex.quote(str(kernel.moddir))}\n"
                           f"RIK_CONFIG={shlex.quote(str(kernel.config))}\n").encode())
    return ar.finish()


def command_script(command: str | Sequence[str], cwd: str, env: Mapping[str, str]) -> str:
    """The bash script run in the chroot: environment, limits, cwd, command."""
    cmd = command if isinstance(command, str) else shlex.join(command)
    base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb", GUEST_ENV: "1"}
    base.update(env)
    lines = ["set +e"] + [f"export {k}={shlex.quote(v)}" for k, v in base.items()]
    # BPF maps are charged to memlock on 6.1 only before memcg accounting
    # (5.11+) decides; keep bpftrace's and pytrace's rlimit bumps irrelevant.
    lines += ["ulimit -l unlimited", f"cd {shlex.quote(cwd)} || exit 125", cmd, ""]
    return "\n".join(lines)


def _qemu_path(p: str) -> str:
    return p.replace(",", ",,")   # QEMU's option syntax doubles commas


def run(command: str | Sequence[str], *, kernel: Kernel | None = None, timeout: float = 600,
        env: Mapping[str, str] | None = None, cwd: str = "/", rw_shares: Sequence[str] = (),
        on_stdout: Output | None = None, on_stderr: Output | None = None,
        memory: str = "2048M", smp: int = 1, disk_mib: int = DISK_MIB) -> GuestResult:
    """Boot ``kernel``, run ``command`` (a bash string or an argv) as root, power off.

    ``rw_shares`` are host directories mounted read-write at the same path in
    the guest (everything else is a copy-on-write view of the host).  A
    zero-filled ``disk_mib`` MiB virtio disk is the guest's ``/dev/vda``
    (none when 0); it is deleted with the run's temporary directory.  Output
    is streamed to ``on_stdout``/``on_stderr`` as it arrives and also returned.
    """
    kernel = kernel or default_kernel()
    image = boot_image(kernel)
    base = base_initramfs(kernel)
    accel, cpu = accelerator()
    shares = [(f"rw{i}", str(Path(p).resolve())) for i, p in enumerate(rw_shares)]
    for _tag, p in shares:
        if "\n" in p or "\t" in p or not Path(p).is_dir():
            raise HarnessError(f"rw share {p!r} is not a directory with a usable name")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pytrace-qemu-") as tmp:
        t = Path(tmp)
        blob = base.read_bytes()
        blob += b"\0" * (-len(blob) % 4)   # pitfall 4: the appended archive must be aligned
        blob += _run_archive(command_script(command, cwd, env or {}), shares, kernel)
        (t / "initrd").write_bytes(blob)
        fds: dict[int, tuple[bytearray, Output | None]] = {}
        keep: list[int] = []
        outputs: list[bytearray] = []
        argv = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
                "-nic", "none", "-no-reboot", "-machine", f"pc,accel={accel}", "-cpu", cpu,
                "-smp", str(smp), "-m", memory, "-kernel", _qemu_path(str(image)),
                "-initrd", _qemu_path(str(t / "initrd")),
                "-append", "console=ttyS0 panic=-1 quiet mitigations=off",
                "-serial", f"file:{_qemu_path(str(t / 'console.log'))}",
                "-device", "virtio-serial-pci",
                "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
                "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"]
        for name, cb in (("stdout", on_stdout), ("stderr", on_stderr)):
            # pipe chardev with path P uses P.in and P.out when they exist; one
            # FIFO for both directions would let QEMU read its own output back.
            base_path = t / name
            for suffix in (".in", ".out"):
                os.mkfifo(f"{base_path}{suffix}")
            rfd = os.open(f"{base_path}.out", os.O_RDONLY | os.O_NONBLOCK)
            # Our own writer keeps the FIFO from reading as EOF before QEMU opens it.
            keep.append(os.open(f"{base_path}.out", os.O_WRONLY | os.O_NONBLOCK))
            buf = bytearray()
            outputs.append(buf)
            fds[rfd] = (buf, cb)
            argv += ["-chardev", f"pipe,id=rik{name},path={_qemu_path(str(base_path))}",
                     "-device", f"virtserialport,chardev=rik{name},name=rik.{name}"]
        if disk_mib > 0:
            disk = t / "disk.raw"
            with open(disk, "wb") as f:
                f.truncate(disk_mib << 20)      # sparse: costs no host disk space
            # cache=none: the host's page cache stays out of the guest's I/O
            # timings (QEMU opens the image O_DIRECT).
            argv += ["-drive", f"file={_qemu_path(str(disk))},if=virtio,format=raw,cache=none,aio=threads"]
        for tag, p in shares:
            argv += ["-fsdev", f"local,id={tag},path={_qemu_path(p)},security_model=none,multidevs=remap",
                     "-device", f"virtio-9p-pci,fsdev={tag},mount_tag={tag}"]
        qlog = open(t / "qemu.log", "wb")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=qlog, stderr=qlog,
                                start_new_session=True)
        timed_out = False

        def drain(ready: list[int]) -> None:
            for fd in ready:
                buf, cb = fds[fd]
                while True:
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    if not chunk:
                        break
                    buf += chunk
                    if cb:
                        cb(chunk)

        try:
            deadline = t0 + timeout
            while True:
                ready, _, _ = select.select(list(fds), [], [], 0.2)
                drain(ready)
                if proc.poll() is not None:
                    drain(list(fds))
                    break
                if time.monotonic() > deadline:
                    timed_out = True
                    break
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            for fd in (*fds, *keep):
                os.close(fd)
            qlog.close()
        console = (t / "console.log").read_text(errors="replace") if (t / "console.log").exists() else ""
        qemu_err = (t / "qemu.log").read_text(errors="replace").strip()
    m = re.search(r"@@RIK_RC=(\d+)@@", console)
    error = ""
    if timed_out:
        error = f"timed out after {timeout:g} s"
    elif m is None:
        f = re.search(r"@@RIK_FAIL=(.*?)@@", console)
        error = (f"guest init failed: {f.group(1)}" if f else
                 f"guest reported no exit status (qemu exit {proc.returncode}"
                 + (f": {qemu_err}" if qemu_err else "") + ")")
    return GuestResult(rc=int(m.group(1)) if m else -1, stdout=bytes(outputs[0]),
                       stderr=bytes(outputs[1]), console=console,
                       seconds=time.monotonic() - t0, timed_out=timed_out, error=error, argv=argv)


def _stream(fd: int) -> Output:
    def write(chunk: bytes) -> None:
        os.write(fd, chunk)
    return write


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tests.kernels.qemu", description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", type=Path, help="an unpacked kernel directory (default: newest)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--rw", action="append", default=[], help="host directory shared read-write")
    ap.add_argument("--cwd", default=os.getcwd())
    ap.add_argument("--console", action="store_true", help="print the guest console at the end")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command given")
    kernel = Kernel(args.kernel.resolve(), args.kernel.resolve().name) if args.kernel else None
    try:
        res = run(cmd, kernel=kernel, timeout=args.timeout, rw_shares=args.rw, cwd=args.cwd,
                  on_stdout=_stream(1), on_stderr=_stream(2))
    except HarnessError as e:
        print(f"qemu harness: {e}", file=sys.stderr)
        return 125
    if args.console:
        sys.stderr.write(res.console)
    print(f"[guest rc={res.rc} in {res.seconds:.1f} s{'; ' + res.error if res.error else ''}]",
          file=sys.stderr)
    return res.rc if res.rc >= 0 else 125


if __name__ == "__main__":
    sys.exit(main())
