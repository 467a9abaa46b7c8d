"""Every printed number is far enough from a change of its text to print the same on a GPU.

nbval on a CPU cannot see that a stored ``tensor(2.7912)`` was 2.79115 and will read
``tensor(2.7911)`` on a GPU that adds in another order. :mod:`tools.rounding_audit` measures,
for every value a chapter prints, its distance to the nearest rounding boundary or switch of
torch's notation, in ulps. Values closer than :data:`~tools.rounding_audit.MIN_ULPS` must be
listed below with the reason they cannot move: exact arithmetic, or one correctly rounded
operation. The list must stay exact: an entry that is no longer close fails as well.
"""

import math

import nbformat
import numpy as np
import pytest

from tools import guards, rounding_audit
from tools.rounding_audit import MIN_ULPS, margin_ulps, switch_ulps

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


@pytest.mark.parametrize("path", guards.chapter_notebooks(), ids=lambda p: p.stem)
def test_printed_numbers_keep_their_text_on_another_device(path):
    printed = rounding_audit.audit(path)
    assert printed, f"{path.name}: the audit recorded no printed value"
    allowed = CANNOT_MOVE.get(path.stem, {})
    close = [p for p in printed if p.ulps < MIN_ULPS]
    unexplained = [str(p) for p in close if p.text not in allowed]
    assert not unexplained, (
        f"{path.name}: these printed values may print differently on another device; "
        "print fewer decimals, a Python float (.item()), or other data, or explain here why "
        "they cannot move:\n  " + "\n  ".join(unexplained))
    stale = sorted(set(allowed) - {p.text for p in close})
    assert not stale, f"{path.name}: listed as close but no longer printed close: {stale}"


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


def test_audit_finds_a_planted_boundary_value(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch\nfrom lib import display\n"
        "display.show(torch.tensor(2.79115), torch.tensor([0.25, 0.75]).sum(), torch.tensor(0.3))")])
    path = tmp_path / "planted.ipynb"
    nbformat.write(notebook, path)
    close = sorted(p.text for p in rounding_audit.audit(path) if p.ulps < MIN_ULPS)
    assert close == ["1.0000", "2.7912"]
