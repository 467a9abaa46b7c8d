"""lib.functional refuses exactly the arguments torch.nn.functional refuses, with the same exception class.

Exhaustive grids over the arguments that decide whether a call is valid: the input's shape
(0-d, 1-d, 2-d, K-d, empty) and dtype, the target's shape (matching, wrong N, wrong trailing
dims, an extra dim, 0-d, empty, the input's own shape for class probabilities), the target's
dtype (every integer, bool and floating type), the target's values (valid, out of range,
negative, ignored), weight (none, right, wrong dtype, wrong length, 2-d), ``pos_weight``,
``ignore_index`` (negative or not, with probability targets too), ``label_smoothing``
(inside and outside [0, 1]) and ``reduction`` strings. Where the full product is too large it is
sampled deterministically (``random.Random(seed)``), so every run checks the same cases.

For each case: torch raises iff lib raises, and then with the same exception class (messages
may differ; the messages the chapters show are checked by nbval). When both return, the
results have the same shape, dtype and values (tolerances in ``TOL``).

One deliberate deviation, kept and documented: torch 2.13 fails for uint8 class-index targets
with a weight, label smoothing and the mean reduction (``gather`` wants an int64 index, see
``torch_gather_bug`` in tests/test_functional.py); lib returns torch's value for the same
targets as int64.
"""

import itertools
import random
import warnings

import pytest
import torch
import torch.nn.functional as F

from lib import functional as L

TOL = {torch.float64: dict(rtol=1e-7, atol=1e-7), torch.float32: dict(rtol=1e-4, atol=1e-5),
       torch.bfloat16: dict(rtol=2e-2, atol=2e-2), torch.float16: dict(rtol=2e-3, atol=2e-3)}

DTYPES = [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool,
          torch.float16, torch.float32, torch.float64, torch.bfloat16]
C = 3


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def outcome(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - the class is what is compared
            return error


def disagreement(lib_call, torch_call, *tensors):
    """None when lib and torch agree on this call, else a description of the difference.

    Values are compared with the tolerance of the least precise floating dtype among the
    result and ``tensors`` (a float16 input gives float16's tolerance to a float32 result).
    """
    ours, theirs = outcome(lib_call), outcome(torch_call)
    if isinstance(theirs, Exception) or isinstance(ours, Exception):
        if type(ours) is type(theirs):
            return None
        return f"torch: {type(theirs).__name__}: {theirs}; lib: {type(ours).__name__}: {ours}"
    if ours.shape != theirs.shape or ours.dtype != theirs.dtype:
        return f"torch: {theirs.shape} {theirs.dtype}; lib: {ours.shape} {ours.dtype}"
    try:
        dtypes = [theirs.dtype] + [t.dtype for t in tensors if t is not None and t.is_floating_point()]
        tol = max((TOL[d] for d in dtypes if d in TOL), key=lambda t: t["rtol"], default={})
        torch.testing.assert_close(ours, theirs, equal_nan=True, **tol)
    except AssertionError as error:
        return f"values differ: {error}"
    return None


def values(shape, dtype, kind, ignore_index=-100, seed=0):
    """A tensor of class indices (or, for floating dtypes, probabilities) of the given kind."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "probabilities":
        return torch.rand(shape, generator=gen).to(dtype)
    index = torch.randint(0, C, shape, generator=gen)
    if index.numel():
        flat = index.view(-1)
        flat[0] = {"valid": flat[0], "out of range": C, "negative": -1, "ignored": ignore_index}[kind]
    return index.to(dtype) if dtype != torch.bool else index.clamp(0, 1).bool()


# --- cross_entropy and nll_loss -----------------------------------------------------------------

INPUTS = {"0-d": (), "1-d": (C,), "2-d": (2, C), "3-d": (2, C, 4), "4-d": (2, C, 4, 2),
          "5-d": (2, C, 2, 2, 2), "empty": (0, C), "empty K-d": (0, C, 2)}


def target_shapes(shape):
    """The target shapes tried against an input of ``shape``."""
    indices = shape[:1] + shape[2:] if len(shape) >= 2 else ()
    shapes = {"class indices": indices, "probabilities": shape, "extra dim": indices + (1,),
              "0-d": (), "empty": (0,), "wrong N": (3,) + indices[1:]}
    if len(shape) >= 3:
        shapes["wrong trailing dims"] = indices[:-1] + (indices[-1] + 1,)
    return shapes


WEIGHTS = {"none": None, "right": lambda: torch.rand(C), "float64": lambda: torch.rand(C, dtype=torch.float64),
           "wrong length": lambda: torch.rand(C + 1), "(1, C)": lambda: torch.rand(1, C),
           "(C, 1)": lambda: torch.rand(C, 1), "int64": lambda: torch.ones(C, dtype=torch.long)}


def torch_gather_bug(target, weight, label_smoothing, reduction):
    """torch 2.13: uint8 targets, a weight, label smoothing and 'mean' may fail in gather; lib accepts them.

    Where torch does fail there, lib must return torch's value for the same targets as int64.
    """
    return (target.dtype == torch.uint8 and weight is not None and label_smoothing > 0
            and reduction == "mean")


def classification_case(fn, input_kind, target_kind, dtype, weight, label_smoothing=0.0,
                        ignore_index=-100, reduction="mean", values_kind="valid", input_dtype=torch.float32):
    shape = INPUTS[input_kind]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    x = x.to(input_dtype) if input_dtype.is_floating_point else (x * 3).to(input_dtype)
    t_shape = target_shapes(shape)[target_kind]
    kind = "probabilities" if target_kind == "probabilities" and dtype.is_floating_point else values_kind
    target = values(t_shape, dtype, kind, ignore_index)
    w = WEIGHTS[weight]() if WEIGHTS[weight] else None
    kwargs = dict(weight=w, ignore_index=ignore_index, reduction=reduction)
    if fn == "cross_entropy":
        kwargs["label_smoothing"] = label_smoothing
        theirs = outcome(lambda: F.cross_entropy(x, target, **kwargs))
        if (torch_gather_bug(target, w, label_smoothing, reduction) and isinstance(theirs, RuntimeError)
                and "gather" in str(theirs)):
            return disagreement(lambda: L.cross_entropy(x, target, **kwargs),
                                lambda: F.cross_entropy(x, target.long(), **kwargs))
    return disagreement(lambda: getattr(L, fn)(x, target, **kwargs),
                        lambda: getattr(F, fn)(x, target, **kwargs), x, target, w)


def shape_grid():
    for input_kind in INPUTS:
        for target_kind in target_shapes(INPUTS[input_kind]):
            yield input_kind, target_kind


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_classification_shapes_dtypes_weights_exhaustive(fn):
    """Every input shape x target shape x target dtype x weight, other arguments at their defaults."""
    failures = []
    for (input_kind, target_kind), dtype, weight in itertools.product(shape_grid(), DTYPES, WEIGHTS):
        problem = classification_case(fn, input_kind, target_kind, dtype, weight)
        if problem:
            failures.append(f"{input_kind} input, {target_kind} target {dtype}, weight {weight}: {problem}")
    assert not failures, f"{len(failures)} disagreements:\n" + "\n".join(failures[:40])


OPTIONS = dict(dtype=[torch.int64, torch.uint8, torch.int32, torch.float32, torch.float64, torch.float16],
               weight=["none", "right", "float64", "(1, C)"],
               label_smoothing=[0.0, 0.1, 1.0, 1.5, -0.1],
               ignore_index=[-100, -1, 0, 1],
               reduction=["mean", "sum", "none", "batchmean", "avg"],
               values_kind=["valid", "out of range", "negative", "ignored"],
               input_dtype=[torch.float32, torch.float64, torch.bfloat16, torch.int64])


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_classification_options_sampled(fn):
    """A fixed sample of the full product of shapes and every option, with bad values among them."""
    grid = list(itertools.product(list(shape_grid()), *OPTIONS.values()))
    failures = []
    for (input_kind, target_kind), *options in random.Random(11).sample(grid, 2500):
        kwargs = dict(zip(OPTIONS, options, strict=True))
        if fn == "nll_loss":
            kwargs.pop("label_smoothing")
        problem = classification_case(fn, input_kind, target_kind, **kwargs)
        if problem:
            failures.append(f"{input_kind} input, {target_kind} target, {kwargs}: {problem}")
    assert not failures, f"{len(failures)} disagreements:\n" + "\n".join(failures[:40])


@pytest.mark.parametrize("ignore_index", [-100, -1, 0, 2, 5])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.5, 1.0, 1.5, -0.5])
def test_probability_targets_ignore_index_and_label_smoothing(ignore_index, label_smoothing):
    for input_kind in ["1-d", "2-d", "3-d", "empty"]:
        for dtype in DTYPES:
            problem = classification_case("cross_entropy", input_kind, "probabilities", dtype, "right",
                                          label_smoothing, ignore_index)
            assert problem is None, (input_kind, dtype, problem)


# --- binary_cross_entropy, binary_cross_entropy_with_logits, kl_div -----------------------------

BINARY_INPUTS = {"0-d": (), "1-d": (C,), "2-d": (2, C), "3-d": (2, C, 2), "empty": (0, C)}


def binary_target_shapes(shape):
    return {"same": shape, "broadcastable": shape[-1:], "extra dim": shape + (1,), "0-d": (),
            "empty": (0,), "wrong": shape[:-1] + (C + 1,) if shape else (2,)}


def weight_shapes(shape):
    return {"none": None, "same": shape, "last dim": shape[-1:], "(1,)": (1,), "wrong": (C + 1,),
            "more dims": (2,) + shape}


def binary_case(fn, input_kind, target_kind, dtype, weight_kind, weight_dtype=torch.float32,
                pos_weight_kind="none", input_dtype=torch.float32, reduction="mean", out_of_range=False,
                log_target=False):
    shape = BINARY_INPUTS[input_kind]
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(shape, generator=gen)
    if fn == "binary_cross_entropy" and out_of_range and x.numel():
        x.view(-1)[0] = 1.5
    elif fn != "binary_cross_entropy":
        x = (x - 0.5) * 6 if fn == "binary_cross_entropy_with_logits" else x.log()
    x = x.to(input_dtype)
    target = values(binary_target_shapes(shape)[target_kind], dtype, "probabilities", seed=3)
    if fn == "kl_div" and log_target and dtype.is_floating_point:
        target = target.log()
    w_shape = weight_shapes(shape)[weight_kind]
    w = None if w_shape is None else (torch.rand(w_shape, generator=gen) + 0.5).to(weight_dtype)
    if fn == "kl_div":
        kwargs = dict(reduction=reduction, log_target=log_target)
    else:
        kwargs = dict(weight=w, reduction=reduction)
    if fn == "binary_cross_entropy_with_logits":
        pw_shape = weight_shapes(shape)[pos_weight_kind]
        kwargs["pos_weight"] = None if pw_shape is None else torch.rand(pw_shape, generator=gen) * 3
    return disagreement(lambda: getattr(L, fn)(x, target, **kwargs), lambda: getattr(F, fn)(x, target, **kwargs),
                        x, target, w, kwargs.get("pos_weight"))


BINARY = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]


@pytest.mark.parametrize("fn", BINARY)
def test_binary_shapes_and_dtypes_exhaustive(fn):
    """Every input shape x target shape x target dtype x input dtype, with and without a weight."""
    failures = []
    for input_kind in BINARY_INPUTS:
        for target_kind, dtype, weight_kind, input_dtype in itertools.product(
                binary_target_shapes(BINARY_INPUTS[input_kind]), DTYPES, ["none", "same"],
                [torch.float32, torch.float64, torch.float16, torch.int64]):
            if fn == "kl_div" and weight_kind != "none":
                continue
            problem = binary_case(fn, input_kind, target_kind, dtype, weight_kind, input_dtype=input_dtype)
            if problem:
                failures.append(f"{input_kind} {input_dtype} input, {target_kind} {dtype} target, "
                                f"weight {weight_kind}: {problem}")
    assert not failures, f"{len(failures)} disagreements:\n" + "\n".join(failures[:40])


BINARY_OPTIONS = dict(dtype=[torch.float32, torch.float64, torch.int64, torch.bool],
                      weight_kind=["none", "same", "last dim", "(1,)", "wrong", "more dims"],
                      weight_dtype=[torch.float32, torch.float64, torch.int64],
                      pos_weight_kind=["none", "same", "last dim", "wrong", "more dims"],
                      input_dtype=[torch.float32, torch.float64, torch.bfloat16],
                      reduction=["mean", "sum", "none", "batchmean", "avg"],
                      out_of_range=[False, True], log_target=[False, True])


@pytest.mark.parametrize("fn", BINARY)
def test_binary_options_sampled(fn):
    shapes = [(i, t) for i in BINARY_INPUTS for t in binary_target_shapes(BINARY_INPUTS[i])]
    grid = list(itertools.product(shapes, *BINARY_OPTIONS.values()))
    failures = []
    for (input_kind, target_kind), *options in random.Random(12).sample(grid, 1500):
        kwargs = dict(zip(BINARY_OPTIONS, options, strict=True))
        problem = binary_case(fn, input_kind, target_kind, **kwargs)
        if problem:
            failures.append(f"{input_kind} input, {target_kind} target, {kwargs}: {problem}")
    assert not failures, f"{len(failures)} disagreements:\n" + "\n".join(failures[:40])


# --- softmax and log_softmax --------------------------------------------------------------------

@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_arguments_exhaustive(fn):
    """Every input shape x input dtype x dim (in range, out of range, implicit) x dtype argument."""
    failures = []
    shapes = [(), (C,), (2, C), (2, C, 2), (0, C), (2, 0)]
    for shape, input_dtype, dim, dtype in itertools.product(
            shapes, DTYPES, [None, 0, 1, -1, 2, -3], [None, torch.float64, torch.float16, torch.int64]):
        x = (torch.randn(shape, generator=torch.Generator().manual_seed(4)) * 3).to(input_dtype)
        problem = disagreement(lambda x=x, dim=dim, dtype=dtype: getattr(L, fn)(x, dim, dtype=dtype),
                               lambda x=x, dim=dim, dtype=dtype: getattr(F, fn)(x, dim, dtype=dtype), x)
        if problem:
            failures.append(f"{shape} {input_dtype}, dim={dim}, dtype={dtype}: {problem}")
    assert not failures, f"{len(failures)} disagreements:\n" + "\n".join(failures[:40])
