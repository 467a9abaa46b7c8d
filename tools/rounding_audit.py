"""How far each printed number is from showing a different last digit.

A GPU adds in another order than a CPU and has its own ``exp`` and ``log``, so a float32
result computed there may differ from the CPU's in its last bits. A chapter's stored output
is the same on every device only if each number it prints is far, in float32 steps, from a
rounding boundary of its printed form: ``2.79115`` printed with 4 decimals is ``2.7911`` or
``2.7912`` depending on its last bit.

The values are recorded when the re-execute tool records a chapter: :mod:`lib.display` hands
every floating-point value it formats (``show``, ``table``, and tensors a cell returns) to the
recorder :mod:`lib._audit`, and ``python -m tools.reexecute`` writes them to
``tests/rounding/<chapter>.json`` with the hash of what they depend on (:func:`dependency_hash`:
the chapter's code cells, the sources of ``lib``, the torch release). This module measures
each value's distance to the nearest rounding boundary in units in the last place (ulps) of
its dtype at that value. A Python float counts as float32 when float32 holds it exactly (it
came from ``.item()`` of a float32 tensor), else as float64. Integer-valued tensors (printed as
``2000.``), zeros and infinities are printed exactly and counted apart.

Only what goes through :mod:`lib.display` is seen. A chapter formats a number with its own
f-string only for constants and values it computes on the CPU on purpose (the float64
entropy of chapter 11, the float16 table of chapter 24), which no device changes.

    python -m tools.rounding_audit                       # every chapter, worst margins first
    python -m tools.rounding_audit chapters/41_gpu.ipynb --ulps 64
    python -m tools.rounding_audit --execute             # measure afresh (as on a GPU)

It reads the stored records where their hash is current and executes a chapter only where it
is stale or ``--execute`` asks. ``tests/test_rounding.py`` requires a margin of
:data:`MIN_ULPS` for every chapter.
"""

import argparse
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np

from tools import guards

ROOT = Path(__file__).resolve().parent.parent
#: Where the re-execute tool stores each chapter's records.
RECORDS = ROOT / "tests" / "rounding"

#: The margin every printed number must keep, in ulps of its dtype. CUDA's float32 ``expf``
#: is within 2 ulps of the exact result and its ``logf`` within 1 (CUDA C++ Programming
#: Guide, appendix "Mathematical Functions"), the CPU's within 1; + - * / are exact-rounded on
#: both. A loss of a handful of such steps, or a sum taken in another order, moves by a few
#: ulps; 8 leaves room for that. It is a judgement, not a bound: a number closer than this
#: needs an argument why it cannot move (``tests/test_rounding.py`` keeps those).
MIN_ULPS = 8

#: Explicit mantissa bits of each dtype, for its ulp at a value.
MANTISSA_BITS = {"torch.float64": 52, "torch.float32": 23, "torch.float16": 10, "torch.bfloat16": 7}

@dataclass(frozen=True)
class Printed:
    """One printed value: where, what, how it was formatted, and how far it is from changing."""

    cell: int
    value: float
    dtype: str
    decimals: int
    mode: str
    ulps: float
    hazard: str = "a rounding boundary"

    def __str__(self):
        return (f"code cell {self.cell}: {self.value!r} ({self.dtype}, {self.mode}, "
                f"{self.decimals} decimals) is {self.ulps:.1f} ulps from {self.hazard}")

    @property
    def text(self):
        """The value as printed in fixed notation, a key that survives re-execution."""
        return f"{self.value:.{self.decimals}f}"


def ulp(value, dtype):
    """The spacing of ``dtype``'s numbers at ``value`` (normal range); ``"float"`` is a Python float."""
    if dtype == "float":
        dtype = "torch.float32" if float(np.float32(value)) == value else "torch.float64"
    return 2.0 ** (math.floor(math.log2(abs(value))) - MANTISSA_BITS[dtype])


def margin_ulps(value, dtype, decimals, mode):
    """Distance of ``value`` to the nearest rounding boundary of its printed form, in ulps of ``dtype``.

    Zero for a nonzero integer printed by torch as an integer (``2000.``): the smallest change
    shows. Infinite for zeros, infinities and nan, which come from exact arithmetic or not at all.
    """
    if not math.isfinite(value) or value == 0:
        return math.inf
    if mode == "int":
        return 0.0
    if mode == "sci":  # torch's {:.4e}; "text" is Python's {:.4f}, as "fixed"
        step = 10.0 ** (math.floor(math.log10(abs(value))) - decimals)
    else:
        step = 10.0 ** -decimals
    scaled = abs(value) / step
    distance = abs(scaled - math.floor(scaled) - 0.5) * step
    return distance / ulp(value, dtype)


def switch_ulps(values, dtype, mode):
    """How far, in ulps, torch's printing of a tensor is from switching notation.

    torch prints a tensor whose values are all integers without decimals (``tensor(10.)``,
    not ``tensor(10.0000)``), so a ratio that is 10 exactly on one device and 10.000001 on
    another prints differently; and it switches every value to scientific notation when
    the largest nonzero magnitude exceeds 1e8, the smallest falls below 1e-4, or their
    ratio exceeds 1000. Returns ``(ulps, what)`` for the nearest switch.
    """
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    if not finite:
        return math.inf, ""
    # Scientific notation wins over integers: only a tensor printed with fixed decimals can
    # lose them.
    to_integers = max(abs(v - round(v)) / ulp(v, dtype) for v in finite) if mode == "fixed" else math.inf
    relative_ulp = 2.0 ** -MANTISSA_BITS[dtype]
    smallest, largest = min(finite), max(finite)
    to_scientific = min(abs(math.log(largest / smallest / 1000.0)), abs(math.log(largest / 1.0e8)),
                        abs(math.log(smallest / 1.0e-4))) / relative_ulp
    if to_integers <= to_scientific:
        return to_integers, "printing as integers, without decimals"
    return to_scientific, "switching to scientific notation"


def printed_values(records):
    """Turn the recorder's records (:mod:`lib._audit`) into :class:`Printed` values: one per
    element, and one per tensor for its distance to a switch of notation (:func:`switch_ulps`)."""
    printed = []
    for cell, dtype, decimals, mode, values in records:
        for value in values:
            hazard = "showing decimals (printed as an integer)" if mode == "int" else "a rounding boundary"
            printed.append(Printed(cell, value, dtype, decimals, mode,
                                   margin_ulps(value, dtype, decimals, mode), hazard))
        if mode in ("fixed", "sci"):  # torch's own notation, chosen per tensor
            ulps, hazard = switch_ulps(values, dtype, mode)
            if ulps < math.inf:
                largest = max((v for v in values if math.isfinite(v)), key=abs)
                printed.append(Printed(cell, largest, dtype, decimals, mode, ulps, hazard))
    return printed


def torch_release():
    import torch

    return torch.__version__.split("+")[0]


def dependency_hash(path):
    """SHA-256 of what a chapter's printed values depend on: its code cells, in order, the
    sources of ``lib`` (the recorder included) and the torch release (``2.13.0`` for every
    build of it). Markdown, outputs and tags do not count."""
    digest = hashlib.sha256()
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(b"\0cell\0" + cell.source.encode())
    for source in sorted((ROOT / "lib").rglob("*.py")):
        digest.update(b"\0lib\0" + source.relative_to(ROOT).as_posix().encode() + b"\0" + source.read_bytes())
    digest.update(b"\0torch\0" + torch_release().encode())
    return digest.hexdigest()


def record_path(path):
    return RECORDS / f"{Path(path).stem}.json"


def store(path, records):
    """Write the records of the chapter at ``path``, with their :func:`dependency_hash`."""
    RECORDS.mkdir(exist_ok=True)
    data = {"chapter": Path(path).name, "hash": dependency_hash(path), "torch": torch_release(),
            "records": records}
    text = json.dumps(data, indent=None, separators=(",", ":"))
    # one record per line, so that a diff shows which values changed
    text = text.replace(',"records":[[', ',"records":[\n[').replace("],[", "],\n[")
    record_path(path).write_text(text + "\n", encoding="utf-8")


def stored(path):
    """The stored records of the chapter at ``path`` if their hash is current, else ``None``."""
    try:
        data = json.loads(record_path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data["records"] if data["hash"] == dependency_hash(path) else None


def execute(path, timeout=600):
    """Execute the notebook at ``path`` as the re-execute tool does (without writing it) and
    return a :class:`Printed` per value."""
    from tools import reexecute

    return printed_values(reexecute.execute_and_record(path, timeout)[1])


def audit(path, execute_always=False):
    """A :class:`Printed` per value of the chapter at ``path``: from its stored records where
    their hash is current, else (or with ``execute_always``) from a fresh execution."""
    records = None if execute_always else stored(path)
    return execute(path) if records is None else printed_values(records)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    parser.add_argument("--ulps", type=float, default=MIN_ULPS, help="the margin to require")
    parser.add_argument("--show", type=int, default=5, help="smallest margins to list per chapter")
    parser.add_argument("--execute", action="store_true", help="execute even where the record is current")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks or guards.chapter_notebooks():
        printed = audit(path, execute_always=args.execute)
        exact = sum(1 for p in printed if math.isinf(p.ulps))  # zeros, inf, nan
        close = sorted((p for p in printed if p.ulps < args.ulps), key=lambda p: p.ulps)
        finite = sorted((p for p in printed if math.isfinite(p.ulps)), key=lambda p: p.ulps)
        print(f"{path.name}: {len(printed)} printed values, {exact} exact, "
              f"{len(close)} closer than {args.ulps:g} ulps to a boundary")
        for p in (close or finite)[: max(args.show, len(close))]:
            print("   ", p)
        failed |= bool(close)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
