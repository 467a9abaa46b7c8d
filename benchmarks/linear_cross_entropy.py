"""Benchmark linear + cross-entropy: the materialising baseline, torch's chunked path, and lib's.

    python -m benchmarks.linear_cross_entropy                       # N=4096, H=1024, V in {32000, 128256}
    python -m benchmarks.linear_cross_entropy --sizes 512x64x1000 --repeats 1 --no-save

For float32 hidden states ``x`` (N x H), a vocabulary head ``W`` (V x H) and random class
indices, each implementation runs forward+backward (the gradients of ``x`` and ``W``):

* ``baseline``: ``F.cross_entropy(x @ W.T, y)``, which materialises the N x V logits;
* ``torch_chunked_auto``: torch's ``F.linear_cross_entropy`` with
  ``options=LinearCrossEntropyOptions()``, its automatic chunk size;
* ``torch_chunked``: the same with ``batch_chunk_size`` set to lib's default chunk size;
* ``lib``: ``lib.functional.linear_cross_entropy`` with its default chunk size.

One forward+backward at these sizes takes seconds to minutes on a small CPU, so each
measurement is one call in a fresh process (after a tiny call that starts torch's thread
pools and caches), timed and watched for its peak memory above the inputs (glibc's bytes in
use, sampled after every ATen operation, as in :mod:`benchmarks.cross_entropy`). torch's chunked
path runs as one custom operator: a chunk buffer it allocates and frees inside that operator
is never sampled, so the peaks of ``torch_chunked*`` are lower bounds (by one chunk's logits,
``chunk x V x 4`` bytes, as chapter 52 shows); lib's buffers come from visible operations and
are counted. Each repeat
runs every implementation once, one after another, in an order that rotates from repeat to
repeat, so that a change in the machine's load (a shared machine) touches every
implementation alike; the CSV keeps the median over the repeats. The first baseline run
saves its loss and gradients, and every run reports its largest absolute difference from
them. Results are appended to ``benchmarks/results/linear_cross_entropy.csv`` with the date,
machine and torch version.

The chunked approach: Liger-Kernel (Hsu et al. 2024) and torch's own chunked path; lib's
function is explained in the chapter "Cross-entropy at scale" (``chapters/52_at_scale.ipynb``).
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.cross_entropy import MALLOC, _glibc_in_use, _PeakInUse, append_rows, cpu_peak_mib, machine_name
from lib import functional as L

RESULTS = Path(__file__).resolve().parent / "results" / "linear_cross_entropy.csv"
SIZES = [(4096, 1024, 32000), (4096, 1024, 128256)]
FIELDS = ["date", "machine", "device", "torch", "N", "H", "V", "implementation", "chunk_size", "repeats",
          "malloc", "forward_backward_ms", "peak_memory_mib", "loss_max_abs_diff", "grad_input_max_abs_diff",
          "grad_weight_max_abs_diff"]


def baseline(x, W, y, chunk_size):
    """The logits materialised: ``cross_entropy(x @ W.T, y)``."""
    return F.cross_entropy(x @ W.T, y)


def torch_chunked_auto(x, W, y, chunk_size):
    return F.linear_cross_entropy(x, W, y, options=torch.nn.LinearCrossEntropyOptions())


def torch_chunked(x, W, y, chunk_size):
    return F.linear_cross_entropy(x, W, y, options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=chunk_size))


def lib(x, W, y, chunk_size):
    return L.linear_cross_entropy(x, W, y, chunk_size=chunk_size)


IMPLEMENTATIONS = {"baseline": baseline, "torch_chunked_auto": torch_chunked_auto, "torch_chunked": torch_chunked,
                   "lib": lib}


def chunk_size(name, n, h, v):
    """The rows per chunk an implementation uses (None for the baseline, which does not chunk)."""
    if name == "baseline":
        return None
    if name == "torch_chunked_auto":
        options = torch.nn.LinearCrossEntropyOptions()._adjust(n, h, v, torch.float32, torch.device("cpu"))
        return options.batch_chunk_size
    return L._lce_default_chunk_size(h)  # lib's default, and the size given to torch's chunked path


def inputs(n, h, v, seed=0):
    """Hidden states, a head scaled like a trained one (logits of order 1) and class indices."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, generator=generator)
    W = torch.randn(v, h, generator=generator) / h**0.5
    y = torch.randint(0, v, (n,), generator=generator)
    return x, W, y


def forward_backward(name, x, W, y, chunk):
    """One forward+backward; returns the loss and the gradients of ``x`` and ``W``."""
    x = x.detach().requires_grad_()
    W = W.detach().requires_grad_()
    loss = IMPLEMENTATIONS[name](x, W, y, chunk)
    loss.backward()
    return loss.detach(), x.grad, W.grad


def measure(name, n, h, v, reference=None):
    """One measured forward+backward of ``name``: a row of :data:`FIELDS` (without the aggregates).

    ``reference``: a file with the baseline's loss and gradients to compare with; written
    first if the file does not exist and ``name`` is the baseline.
    """
    chunk = chunk_size(name, n, h, v)
    tiny = inputs(8, 4, 16)
    cpu_peak_mib(lambda: forward_backward(name, *tiny, min(chunk or 4, 4)))  # thread pools, caches, the mode
    x, W, y = inputs(n, h, v)
    in_use = _glibc_in_use()
    start = time.perf_counter()
    if in_use is None:
        result, peak = forward_backward(name, x, W, y, chunk), None
    else:
        recorder = _PeakInUse(in_use)
        with recorder:
            result = forward_backward(name, x, W, y, chunk)
        peak = (recorder.peak - recorder.start) / 2**20
    elapsed = time.perf_counter() - start
    diffs = ["", "", ""]
    if reference is not None:
        reference = Path(reference)
        if name == "baseline" and not reference.exists():
            torch.save(result, reference)
        if reference.exists():
            expected = torch.load(reference)
            diffs = [f"{(a - b).abs().max().item():.2e}" for a, b in zip(result, expected, strict=True)]
    return {"date": datetime.date.today().isoformat(), "machine": machine_name(torch.device("cpu")),
            "device": "cpu", "torch": torch.__version__, "N": n, "H": h, "V": v, "implementation": name,
            "chunk_size": "" if chunk is None else chunk, "repeats": 1, "malloc": "default",
            "forward_backward_ms": f"{elapsed * 1e3:.1f}", "peak_memory_mib": "" if peak is None else f"{peak:.1f}",
            "loss_max_abs_diff": diffs[0], "grad_input_max_abs_diff": diffs[1], "grad_weight_max_abs_diff": diffs[2]}


def in_fresh_process(name, size, reference, malloc="default"):
    n, h, v = size
    command = [sys.executable, "-m", "benchmarks.linear_cross_entropy", "--worker", "--sizes", f"{n}x{h}x{v}",
               "--implementations", name, "--reference", str(reference)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=dict(os.environ, **MALLOC[malloc]),
                          cwd=Path(__file__).resolve().parent.parent)
    (row,) = [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("ROW ")]
    return dict(row, malloc=malloc)


def run(sizes, implementations=tuple(IMPLEMENTATIONS), repeats=3, malloc="default"):
    """Every (size, implementation) measured ``repeats`` times, interleaved; one median row each."""
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            reference = Path(folder) / ("x".join(map(str, size)) + ".pt")
            names = list(implementations)
            if "baseline" in names:  # the first run of a size is the baseline's: it writes the reference
                names.remove("baseline")
                names.insert(0, "baseline")
            for repeat in range(repeats):
                order = names if repeat == 0 else names[repeat % len(names):] + names[:repeat % len(names)]
                for name in order:
                    row = in_fresh_process(name, size, reference, malloc)
                    runs.setdefault((size, name), []).append(row)
                    print(", ".join(f"{k}={row[k]}" for k in ["V", "implementation", "chunk_size",
                                                               "forward_backward_ms", "peak_memory_mib",
                                                               "loss_max_abs_diff", "grad_weight_max_abs_diff"]),
                          flush=True)
    rows = []
    for measured in runs.values():
        row = dict(measured[0], repeats=len(measured))
        for key in ["forward_backward_ms", "peak_memory_mib"]:
            values = [float(r[key]) for r in measured if r[key] != ""]
            row[key] = f"{statistics.median(values):.1f}" if values else ""
        for key in ["loss_max_abs_diff", "grad_input_max_abs_diff", "grad_weight_max_abs_diff"]:
            values = [float(r[key]) for r in measured if r[key] != ""]
            row[key] = f"{max(values):.2e}" if values else ""
        rows.append(row)
    return rows


def append(rows, path=RESULTS):
    append_rows(rows, path, FIELDS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", help="NxHxV, default: 4096x1024x32000 4096x1024x128256")
    parser.add_argument("--implementations", nargs="*", default=list(IMPLEMENTATIONS), choices=list(IMPLEMENTATIONS))
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per implementation and size")
    parser.add_argument("--malloc", default="default", choices=list(MALLOC), help="glibc settings of the workers")
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes] if args.sizes else SIZES
    if args.worker:
        for size in sizes:
            for name in args.implementations:
                print("ROW " + json.dumps(measure(name, *size, reference=args.reference)), flush=True)
        return
    rows = run(sizes, args.implementations, args.repeats, args.malloc)
    if not args.no_save:
        append(rows)


if __name__ == "__main__":
    main()
