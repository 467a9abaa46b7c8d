"""Benchmark cross-entropy: torch's kernel, lib's from-scratch version, and the naive formula.

    python -m benchmarks.cross_entropy                 # the sizes for this machine's device
    python -m benchmarks.cross_entropy --device cpu --sizes 4096x1000

For float32 logits of shape (N, C) and random class indices, each implementation is timed
forward and forward+backward with ``torch.utils.benchmark`` (the median of repeated runs),
in several fresh processes (``--processes``, default 3) whose medians are again reduced to
their median: on a small virtual machine, the cost of the page faults of fresh buffers
depends on the allocator's history, and a fresh process per measurement keeps one
implementation's history from colouring another's.

The peak memory of forward+backward above the inputs comes, on CUDA, from
``torch.cuda.max_memory_allocated``. On a CPU torch keeps no such count: the bytes glibc's
allocator has handed out and not taken back (``mallinfo2``, heap and mmapped chunks in use,
not what glibc keeps cached) are sampled after every ATen operation. Results are appended to
``benchmarks/results/cross_entropy.csv`` with the machine, torch version and date, and each
implementation's loss is checked against torch's before it is timed.
"""

import argparse
import csv
import ctypes
import ctypes.util
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils import benchmark
from torch.utils._python_dispatch import TorchDispatchMode

from lib import functional as L

RESULTS = Path(__file__).resolve().parent / "results" / "cross_entropy.csv"
SIZES = {"cpu": [(4096, 1000), (8192, 32000)],
         "cuda": [(4096, 1000), (8192, 32000), (8192, 128256)]}
#: glibc settings for the worker processes. "keep" stops glibc from handing freed buffers back to
#: the OS (and from mmap-ing large ones), so a measurement shows the computation rather than the
#: page faults of fresh memory, which are slow on a small virtual machine. PyTorch's performance
#: guide suggests another allocator (jemalloc, tcmalloc) on CPUs for the same reason.
MALLOC = {"default": {}, "keep": {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}}
FIELDS = ["date", "machine", "device", "torch", "N", "C", "implementation", "processes", "malloc",
          "forward_ms", "forward_backward_ms", "peak_memory_mib", "max_abs_diff_vs_torch"]


def naive_cross_entropy(logits, target):
    """The formula as first written: log of softmax, pick the true class, average."""
    return -(torch.log(torch.softmax(logits, dim=1)))[torch.arange(len(target), device=logits.device), target].mean()


IMPLEMENTATIONS = {"torch": F.cross_entropy, "lib": L.cross_entropy, "naive": naive_cross_entropy}


def machine_name(device):
    """The GPU's name, or the CPU's model and the number of threads torch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    return f"{model}, {torch.get_num_threads()} threads"


def measure(fn, logits, target, device, min_run_time):
    """Return (forward ms, forward+backward ms, peak MiB or None) of one implementation."""
    def forward():
        return fn(logits, target)

    def forward_backward():
        x = logits.detach().requires_grad_()
        fn(x, target).backward()

    globals_ = {"forward": forward, "forward_backward": forward_backward}
    # Timer runs on one thread unless told otherwise; use as many as torch (and machine_name) do.
    threads = torch.get_num_threads()
    fwd = benchmark.Timer("forward()", globals=globals_, num_threads=threads).blocked_autorange(
        min_run_time=min_run_time)
    fwd_bwd = benchmark.Timer("forward_backward()", globals=globals_, num_threads=threads).blocked_autorange(
        min_run_time=min_run_time)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        forward_backward()
        torch.cuda.synchronize(device)
        peak = (torch.cuda.max_memory_allocated(device) - baseline) / 2**20
    else:
        peak = cpu_peak_mib(forward_backward)
    return fwd.median * 1e3, fwd_bwd.median * 1e3, peak


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ["arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost"]]


def _glibc_in_use():
    """A function returning the bytes glibc's malloc has handed out (heap + mmapped), or None off glibc."""
    path = ctypes.util.find_library("c")
    try:
        mallinfo2 = ctypes.CDLL(path).mallinfo2
    except (OSError, AttributeError, TypeError):
        return None
    mallinfo2.restype = _MallInfo2

    def in_use():
        info = mallinfo2()
        return info.uordblks + info.hblkhd
    return in_use


class _PeakInUse(TorchDispatchMode):
    """Samples the bytes in use after every ATen operation and keeps the largest."""

    def __init__(self, in_use):
        super().__init__()
        self.in_use = in_use
        self.start = self.peak = in_use()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, self.in_use())
        return out


def cpu_peak_mib(fn):
    """Peak of the bytes in use during ``fn()`` above those at its start, in MiB; None without glibc.

    Sampled after each operation, so memory an operation frees before it returns is missed.
    """
    in_use = _glibc_in_use()
    if in_use is None:
        return None
    with _PeakInUse(in_use):  # the first call of fn, and the first dispatch mode, allocate once-only
        fn()                  # buffers (thread pools, caches of about 25 MiB): measure the second call
    recorder = _PeakInUse(in_use)
    with recorder:
        fn()
    return (recorder.peak - recorder.start) / 2**20


def run(device, sizes, min_run_time, seed=0, implementations=tuple(IMPLEMENTATIONS)):
    rows = []
    today = datetime.date.today().isoformat()
    for n, c in sizes:
        generator = torch.Generator().manual_seed(seed)
        logits = torch.randn(n, c, generator=generator).to(device)
        target = torch.randint(0, c, (n,), generator=generator).to(device)
        reference = F.cross_entropy(logits, target)
        for name in implementations:
            fn = IMPLEMENTATIONS[name]
            diff = (fn(logits, target) - reference).abs().item()
            fwd, fwd_bwd, peak = measure(fn, logits, target, device, min_run_time)
            row = {"date": today, "machine": machine_name(device), "device": device.type,
                   "torch": torch.__version__, "N": n, "C": c, "implementation": name, "processes": 1,
                   "malloc": "default",
                   "forward_ms": f"{fwd:.3f}", "forward_backward_ms": f"{fwd_bwd:.3f}",
                   "peak_memory_mib": "" if peak is None else f"{peak:.1f}",
                   "max_abs_diff_vs_torch": f"{diff:.2e}"}
            rows.append(row)
            print(", ".join(f"{k}={row[k]}" for k in ["device", "N", "C", "implementation", "forward_ms",
                                                       "forward_backward_ms", "peak_memory_mib",
                                                       "max_abs_diff_vs_torch"]), flush=True)
    return rows


def append_rows(rows, path, fields):
    """Append ``rows`` (dicts) to the CSV file ``path`` with the columns ``fields``, writing the
    header first when the file is new (every benchmark's results are kept this way)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def append(rows, path=RESULTS):
    append_rows(rows, path, FIELDS)


def in_fresh_processes(device, sizes, min_run_time, implementations, processes, malloc="default"):
    """Measure each (size, implementation) in ``processes`` fresh interpreters; keep the medians."""
    env = dict(os.environ, **MALLOC[malloc])
    rows = []
    for n, c in sizes:
        for name in implementations:
            runs = []
            for _ in range(processes):
                command = [sys.executable, "-m", "benchmarks.cross_entropy", "--worker", "--device", device.type,
                           "--sizes", f"{n}x{c}", "--implementations", name, "--min-run-time", str(min_run_time)]
                done = subprocess.run(command, capture_output=True, text=True, check=True, env=env,
                                      cwd=Path(__file__).resolve().parent.parent)
                runs += [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("ROW ")]
            row = dict(runs[0], processes=len(runs), malloc=malloc)
            for key in ["forward_ms", "forward_backward_ms", "peak_memory_mib"]:
                values = [float(r[key]) for r in runs if r[key] != ""]
                row[key] = f"{statistics.median(values):.3f}" if values else ""
            rows.append(row)
            print(", ".join(f"{k}={row[k]}" for k in ["device", "N", "C", "implementation", "processes", "malloc",
                                                       "forward_ms", "forward_backward_ms", "peak_memory_mib"]),
                  flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", nargs="*", help="NxC, default: all sizes for the device")
    parser.add_argument("--min-run-time", type=float, default=2.0, help="seconds per timing")
    parser.add_argument("--implementations", nargs="*", default=list(IMPLEMENTATIONS),
                        choices=list(IMPLEMENTATIONS))
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per measurement")
    parser.add_argument("--malloc", nargs="*", default=list(MALLOC), choices=list(MALLOC),
                        help="glibc settings of the workers (default: both, one row each)")
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes] if args.sizes else SIZES[device.type]
    if args.worker:
        for row in run(device, sizes, args.min_run_time, implementations=args.implementations):
            print("ROW " + json.dumps(row), flush=True)
        return
    rows = []
    for malloc in args.malloc:
        rows += in_fresh_processes(device, sizes, args.min_run_time, args.implementations, args.processes, malloc)
    if not args.no_save:
        append(rows)


if __name__ == "__main__":
    main()
