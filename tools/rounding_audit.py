"""How far each printed number is from showing a different last digit.

A GPU adds in another order than a CPU and has its own ``exp`` and ``log``, so a float32
result computed there may differ from the CPU's in its last bits. A chapter's stored output
is the same on every device only if each number it prints is far, in float32 steps, from a
rounding boundary of its printed form: ``2.79115`` printed with 4 decimals is ``2.7911`` or
``2.7912`` depending on its last bit.

This tool executes chapters with :mod:`lib.display` recording every floating-point value it
formats (``show``, ``table``, and tensors a cell returns), then measures each value's
distance to the nearest rounding boundary in units in the last place (ulps) of its dtype at
that value. A Python float counts as float32 when float32 holds it exactly (it came from
``.item()`` of a float32 tensor), else as float64. Integer-valued tensors (printed as
``2000.``), zeros and infinities are printed exactly and counted apart.

Only what goes through :mod:`lib.display` is seen. A chapter formats a number with its own
f-string only for constants and values it computes on the CPU on purpose (the float64
entropy of chapter 11, the float16 table of chapter 24), which no device changes.

    python -m tools.rounding_audit                       # every chapter, worst margins first
    python -m tools.rounding_audit chapters/41_gpu.ipynb --ulps 64

``tests/test_rounding.py`` requires a margin of :data:`MIN_ULPS` for every chapter.
"""

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
from nbclient import NotebookClient

from tools import guards

#: The margin every printed number must keep, in ulps of its dtype. CUDA's float32 ``expf``
#: is within 2 ulps of the exact result and its ``logf`` within 1 (CUDA C++ Programming
#: Guide, appendix "Mathematical Functions"), the CPU's within 1; + - * / are exact-rounded on
#: both. A loss of a handful of such steps, or a sum taken in another order, moves by a few
#: ulps; 8 leaves room for that. It is a judgement, not a bound: a number closer than this
#: needs an argument why it cannot move (``tests/test_rounding.py`` keeps those).
MIN_ULPS = 8

#: Explicit mantissa bits of each dtype, for its ulp at a value.
MANTISSA_BITS = {"torch.float64": 52, "torch.float32": 23, "torch.float16": 10, "torch.bfloat16": 7}

#: Run first in the kernel: wrap lib.display's formatting so each formatted value is recorded.
RECORDER = r"""
import lib.display as _display
import torch as _torch

_audit_records = []
_audit_fmt, _audit_cell = _display.fmt, _display._cell


def _audit_tensor(value, decimals, mode=None):
    value = value.detach().cpu()
    if not value.is_floating_point() or value.numel() == 0:
        return
    if mode is None:
        with _display._print_options(decimals):
            formatter = _torch._tensor_str._Formatter(value)
        mode = "sci" if formatter.sci_mode else "int" if formatter.int_mode else "fixed"
    _audit_records.append(("tensor", value.double().flatten().tolist(), str(value.dtype), decimals, mode))


def _audit_recording_fmt(value, decimals=_display.DECIMALS):
    if isinstance(value, _torch.Tensor):
        _audit_tensor(value, decimals)
    elif isinstance(value, float):
        _audit_records.append(("tensor", [value], "float", decimals, "text"))
    return _audit_fmt(value, decimals)


def _audit_recording_cell(value, decimals):
    if isinstance(value, _torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        _audit_tensor(value, decimals, mode="text")
    elif isinstance(value, float):
        _audit_records.append(("tensor", [value], "float", decimals, "text"))
    return _audit_cell(value, decimals)


_display.fmt, _display._cell = _audit_recording_fmt, _audit_recording_cell
"""

#: Run last: hand the records back as the cell's output.
REPORT = "import json as _json; print(_json.dumps(_audit_records))"


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
    """Turn the recorder's records into :class:`Printed` values: one per element, and one per
    tensor for its distance to a switch of notation (:func:`switch_ulps`)."""
    printed, cell = [], 0
    for record in records:
        if record[0] == "cell":
            cell = record[1]
            continue
        _, values, dtype, decimals, mode = record
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


def audit(path, timeout=600):
    """Execute the notebook at ``path`` with recording on; return a :class:`Printed` per value."""
    notebook = nbformat.read(path, as_version=4)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    recorder = nbformat.v4.new_code_cell(RECORDER)
    marks = [nbformat.v4.new_code_cell(f"_audit_records.append(('cell', {n}))")
             for n in range(1, len(code_cells) + 1)]
    cells = [recorder]
    for mark, cell in zip(marks, code_cells, strict=True):
        cells += [mark, cell]
    report = nbformat.v4.new_code_cell(REPORT)
    notebook.cells = cells + [report]
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    return printed_values(json.loads("".join(o.get("text", "") for o in report.outputs)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    parser.add_argument("--ulps", type=float, default=MIN_ULPS, help="the margin to require")
    parser.add_argument("--show", type=int, default=5, help="smallest margins to list per chapter")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks or guards.chapter_notebooks():
        printed = audit(path)
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
