"""Every printed number is far enough from a change of its text to print the same on a GPU.

nbval on a CPU cannot see that a stored ``tensor(2.7912)`` was 2.79115 and will read
``tensor(2.7911)`` on a GPU that adds in another order. :mod:`tools.rounding_audit` measures,
for every value a chapter prints, its distance to the nearest rounding boundary or switch of
torch's notation, in ulps. Values closer than :data:`~tools.rounding_audit.MIN_ULPS` must be
listed below with the reason they cannot move: exact arithmetic, or one correctly rounded
operation. The list must stay exact: an entry that is no longer close fails as well.

The values come from ``tests/rounding/<chapter>.json``, which the re-execute tool writes when
it records the chapter, with the hash of the chapter's code cells, ``lib`` and the torch
release. A chapter whose record is stale (or missing) is executed here to measure it, and its
record fails :func:`test_audit_record_is_current` until the chapter is re-recorded. With
``CEE_AUDIT_EXECUTE=1`` (the GPU check sets it), or on a device other than the CPU, every
chapter is executed and measured where it runs.
"""

import json
import math
import os

import nbformat
import numpy as np
import pytest

from lib import device
from tools import guards, rounding_audit
from tools.rounding_audit import MIN_ULPS, margin_ulps, switch_ulps

#: Measure by executing every chapter instead of reading its current record.
EXECUTE = bool(os.environ.get("CEE_AUDIT_EXECUTE")) or device.get_device().type != "cpu"

UNDERFLOW = ("exp of -1000 or less underflows to exactly 0 in float32, exp(0) = 1 and log(1) = 0 "
             "in every libm, and the remaining + and - act on integers below 2^24: exact")

#: chapter -> printed text -> why that value is the same on every IEEE-754 device.
CANNOT_MOVE = {
    "21_logits_softmax": {
        "1.1590": "exp(0.1476), one expf: CUDA's is within 2 ulps of the exact value, the CPU's "
                  "within 1, so they differ by at most 3 ulps; the margin is 7",
    },
    "24_numerical_stability": {
        "2000.0000": UNDERFLOW,
        "-2000.0000": UNDERFLOW,
        "-1000.0000": UNDERFLOW,
        "1.0000": UNDERFLOW,
        "120.0000": "exp(-120) underflows to 0 in float32 and log(1) = 0: -120 - 0 is exact",
        "-120.0000": "exp(-120) underflows to 0 in float32 and log(1) = 0: -120 - 0 is exact",
        "59872.0000": "float16 rounding of exp(11) = 59874.14: the float16 neighbours are 32 apart "
                      "and the midpoint 59888 is 14 away, 10^6 times exp's float32 error",
        "90000.0000": "40000 times 2.25: every partial sum, in any order, is a multiple of 1/4 "
                      "below 2^22, so float32 adds exactly",
        "-999.5924": "-1000 + log(1 + e^-1 + e^-2): the float32 sum rounds to a grid 6.1e-5 wide, "
                     "1.3e-5 from where its rounding would change, 100 times the error of the log term",
    },
    "31_weight": {
        "33.3333": "1000 / (3 * 10): exact sum and product of small integers, then one IEEE "
                   "division, correctly rounded on CPU and GPU alike",
        "333.3333": "the correctly rounded quotients times the exact counts: one IEEE "
                    "multiplication of bit-identical operands",
    },
}


def close_values(path, printed):
    """What is wrong with the ``printed`` values of the chapter at ``path``: values closer than
    :data:`MIN_ULPS` that :data:`CANNOT_MOVE` does not explain, and entries it lists in vain."""
    allowed = CANNOT_MOVE.get(path.stem, {})
    close = [p for p in printed if p.ulps < MIN_ULPS]
    unexplained = [str(p) for p in close if p.text not in allowed]
    stale = sorted(set(allowed) - {p.text for p in close})
    return unexplained, stale


@pytest.mark.parametrize("path", guards.chapter_notebooks(), ids=lambda p: p.stem)
def test_printed_numbers_keep_their_text_on_another_device(path):
    printed = rounding_audit.audit(path, execute_always=EXECUTE)
    assert printed, f"{path.name}: the audit recorded no printed value"
    unexplained, stale = close_values(path, printed)
    assert not unexplained, (
        f"{path.name}: these printed values may print differently on another device; "
        "print fewer decimals, a Python float (.item()), or other data, or explain here why "
        "they cannot move:\n  " + "\n  ".join(unexplained))
    assert not stale, f"{path.name}: listed as close but no longer printed close: {stale}"


@pytest.mark.parametrize("path", guards.chapter_notebooks(), ids=lambda p: p.stem)
def test_audit_record_is_current(path):
    record = rounding_audit.record_path(path)
    command = f"python -m tools.reexecute {path.relative_to(rounding_audit.ROOT).as_posix()}"
    assert record.exists(), f"{path.name} has no rounding audit record: re-record it with {command}"
    assert rounding_audit.stored(path) is not None, (
        f"tests/rounding/{record.name} was recorded for other code cells, another lib or another torch "
        f"release (test_printed_numbers_keep_their_text_on_another_device measured afresh): re-record "
        f"the chapter with {command}")


def test_no_record_without_its_chapter():
    chapters = {p.stem for p in guards.chapter_notebooks()}
    assert sorted(p.stem for p in rounding_audit.RECORDS.glob("*.json") if p.stem not in chapters) == []


def test_a_stored_value_on_a_boundary_fails(tmp_path, monkeypatch):
    """The check reads the stored record when its hash is current (no execution), and a value
    moved onto a rounding boundary there fails it."""
    path = guards.CHAPTERS / "21_logits_softmax.ipynb"
    records = json.loads(rounding_audit.record_path(path).read_text(encoding="utf-8"))["records"]
    monkeypatch.setattr(rounding_audit, "RECORDS", tmp_path)
    monkeypatch.setattr(rounding_audit, "execute", lambda *a, **k: pytest.fail("executed a current record"))
    rounding_audit.store(path, records)
    assert close_values(path, rounding_audit.audit(path)) == ([], [])
    cell, dtype, decimals, mode, values = records[0]
    records[0] = [cell, dtype, decimals, mode, [f32(2.79115)] + values[1:]]
    rounding_audit.store(path, records)
    unexplained, _ = close_values(path, rounding_audit.audit(path))
    assert len(unexplained) == 1 and "2.79115" in unexplained[0], unexplained


def test_a_changed_code_cell_makes_the_record_stale(tmp_path, monkeypatch):
    source = guards.CHAPTERS / "21_logits_softmax.ipynb"
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes())
    monkeypatch.setattr(rounding_audit, "RECORDS", tmp_path)
    rounding_audit.store(path, [[1, "torch.float32", 4, "fixed", [0.25]]])
    assert rounding_audit.stored(path) == [[1, "torch.float32", 4, "fixed", [0.25]]]
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[-1].source += " "  # markdown: not a dependency
    nbformat.write(notebook, path)
    assert rounding_audit.stored(path) is not None
    code = next(c for c in notebook.cells if c.cell_type == "code")
    code.source += "\n"
    nbformat.write(notebook, path)
    assert rounding_audit.stored(path) is None


def f32(value):
    return float(np.float32(value))


def test_margin_is_measured_in_ulps_of_the_dtype():
    # 2.79115 sits on the boundary between 2.7911 and 2.7912
    assert margin_ulps(f32(2.79115), "torch.float32", 4, "fixed") < 1
    assert margin_ulps(f32(2.79117), "torch.float32", 4, "fixed") > 8
    # the same distance is many more float64 ulps
    assert margin_ulps(2.79115 + 1e-9, "torch.float64", 4, "fixed") > 1e6
    # a Python float that float32 holds exactly counts as float32
    assert margin_ulps(f32(2.791151), "float", 4, "text") == pytest.approx(
        margin_ulps(f32(2.791151), "torch.float32", 4, "fixed"))
    # torch's {:.4e}: 1.23455e-05 is on a boundary of the mantissa
    assert margin_ulps(f32(1.23455e-5), "torch.float32", 4, "sci") < 2
    # exact zeros and non-finite values cannot move; an integer printed as one can
    assert margin_ulps(0.0, "torch.float32", 4, "fixed") == math.inf
    assert margin_ulps(math.inf, "torch.float32", 4, "fixed") == math.inf
    assert margin_ulps(2000.0, "torch.float32", 4, "int") == 0


def test_switches_of_torch_notation_count():
    near_one = f32(1 + 2 ** -23)
    ulps, what = switch_ulps([near_one], "torch.float32", "fixed")
    assert ulps < 2 and "integers" in what
    # the smallest magnitude a few ulps above 1e-4, where torch switches to {:.4e}
    ulps, what = switch_ulps([f32(1e-4 * (1 + 2 ** -21)), 0.05], "torch.float32", "fixed")
    assert ulps < MIN_ULPS and "scientific" in what
    assert switch_ulps([0.3, 0.6], "torch.float32", "fixed")[0] > 1e5
    assert switch_ulps([0.0, math.inf], "torch.float32", "fixed")[0] == math.inf
    # in scientific notation, integers are printed with decimals anyway
    assert switch_ulps([1.6516e38], "torch.float32", "sci")[0] > 1e5


def test_recording_finds_a_planted_boundary_value(tmp_path):
    """End to end: the re-execute tool's run records what lib.display prints, cell by cell."""
    from tools import reexecute

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import torch\nfrom lib import display\ndisplay.setup()"),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("display.show(torch.tensor(2.79115), torch.tensor([0.25, 0.75]).sum())"),
        nbformat.v4.new_code_cell("display.table([[0.3]], ['p'])\ntorch.tensor([0.5, 2.0])")])
    path = tmp_path / "planted.ipynb"
    nbformat.write(notebook, path)
    _, records = reexecute.execute_and_record(path)
    assert [r[:4] for r in records] == [[2, "torch.float32", 4, "fixed"], [2, "torch.float32", 4, "int"],
                                        [3, "float", 4, "text"], [3, "torch.float32", 4, "fixed"]]
    close = sorted(p.text for p in rounding_audit.printed_values(records) if p.ulps < MIN_ULPS)
    assert close == ["1.0000", "2.7912"]
