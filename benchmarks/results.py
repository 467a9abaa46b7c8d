"""The committed benchmark results, read from ``benchmarks/results/cross_entropy.csv``.

The CSV's schema lives here and in :mod:`benchmarks.cross_entropy`, which writes it; the book's
figures (``lib.plots.benchmark_bars``) take plain values. The chapter "Cross-entropy on a GPU"
reads the same file with :mod:`csv` (a chapter imports only ``lib``), and the tests compare what
it draws with :func:`bar_values`.
"""

import csv
import math

from benchmarks.cross_entropy import IMPLEMENTATIONS, RESULTS

#: The columns a figure can draw, with their axis labels.
METRICS = {"forward_backward_ms": "forward + backward  [ms]",
           "peak_memory_mib": "peak memory, forward + backward  [MiB]",
           "peak_tensors": "peak memory  [float32 N x C tensors]"}


def read(path=RESULTS):
    """Every row of the results file, as :class:`csv.DictReader` gives it (strings)."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def setup(row):
    """The machine and glibc setting that measured a row, as a figure's legend names it."""
    return f"{row['machine']}, malloc={row['malloc']}"


def value(row, metric):
    """A row's number for ``metric`` (a column, or ``peak_tensors``: the peak over one float32 N x C
    tensor); nan where the row has none."""
    column = "peak_memory_mib" if metric == "peak_tensors" else metric
    if not row[column]:
        return math.nan
    if metric == "peak_tensors":
        return float(row[column]) / (int(row["N"]) * int(row["C"]) * 4 / 2**20)
    return float(row[column])


def bar_values(rows, metric, label=setup):
    """``{label(row): [value of torch, lib, naive]}``, labels sorted; a missing row is nan."""
    found = {}
    for row in rows:
        found.setdefault(label(row), {})[row["implementation"]] = value(row, metric)
    return {key: [found[key].get(name, math.nan) for name in IMPLEMENTATIONS] for key in sorted(found)}


def machines(rows):
    """``(machine, device, torch, date)`` of every distinct measuring set-up, sorted."""
    return sorted({(r["machine"], r["device"], r["torch"], r["date"]) for r in rows})


# --- linear + cross-entropy (benchmarks/linear_cross_entropy.py) ---------------------------------

LINEAR_CROSS_ENTROPY_RESULTS = RESULTS.parent / "linear_cross_entropy.csv"


def read_linear_cross_entropy(path=LINEAR_CROSS_ENTROPY_RESULTS):
    """Every row of ``benchmarks/results/linear_cross_entropy.csv``, as strings."""
    return read(path)


def linear_cross_entropy_table(rows):
    """``{V: {implementation: (chunk size or None, ms, peak MiB)}}`` of the latest row of each pair."""
    table = {}
    for row in rows:  # later rows (a later run) replace earlier ones
        chunk = int(row["chunk_size"]) if row["chunk_size"] else None
        peak = float(row["peak_memory_mib"]) if row["peak_memory_mib"] else math.nan
        table.setdefault(int(row["V"]), {})[row["implementation"]] = (chunk, float(row["forward_backward_ms"]), peak)
    return table
