"""A held-out parity suite: PyTorch's own test samples, run through torch and through lib.

torch ships the inputs its own test suite uses: ``OpInfo`` entries in
``torch.testing._internal.common_methods_invocations.op_db`` (``sample_inputs``, and
``error_inputs`` where an entry has them) and ``ModuleInfo`` entries in
``torch.testing._internal.common_modules.module_db`` (module inputs with constructor
arguments, and ``module_error_inputs``). None of them was written with lib in mind. For every
lib.functional function with a matching entry, every CPU float32 and float64 sample (and the
integer samples of the ``with_dtype`` softmax variants) goes through torch and lib:

* when torch returns: same shape, same dtype, same values (``TOL``: float64 1e-10, float32
  1e-5, relative and absolute) and, where torch differentiates, the same gradient for every
  input that requires one, for a fixed random cotangent (same tolerances);
* when torch raises: lib raises the same exception class.

``torch.testing._internal`` imports ``expecttest``, which torch itself does not install;
without it this module is skipped (the package is ``expecttest``, 0.3.0 was checked).
The databases are imported when a test first needs them (``_torch``): it takes seconds, and under
pytest-xdist only the worker that runs this module pays it. Importing them also loads a
hypothesis profile of torch's; the profile in force before is restored, so the other test
modules keep theirs.
"""

import functools
import warnings
from types import SimpleNamespace

import hypothesis
import pytest
import torch

from lib import functional as L

pytest.importorskip("expecttest", reason="torch.testing._internal needs the package expecttest (0.3.0)")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-5, atol=1e-5)}

# OpInfo (name, variant) -> lib.functional function
OPS = {
    ("softmax", ""): "softmax",
    ("softmax", "with_dtype"): "softmax",
    ("log_softmax", ""): "log_softmax",
    ("log_softmax", "with_dtype"): "log_softmax",
    ("nn.functional.cross_entropy", ""): "cross_entropy",
    ("nn.functional.nll_loss", ""): "nll_loss",
    ("nn.functional.binary_cross_entropy", ""): "binary_cross_entropy",
    ("nn.functional.binary_cross_entropy_with_logits", ""): "binary_cross_entropy_with_logits",
    ("nn.functional.kl_div", ""): "kl_div",
    ("nn.functional.linear_cross_entropy", ""): "linear_cross_entropy",
    ("nn.functional.linear_cross_entropy", "chunked"): "linear_cross_entropy",
    ("nn.functional.linear_cross_entropy", "chunked_none"): "linear_cross_entropy",
}


def _linear_cross_entropy(input, linear_weight, target, *, options=None, **kwargs):
    """lib's linear_cross_entropy called as torch's samples call torch's: ``options`` becomes
    lib's ``chunk_size`` (its ``batch_chunk_size``, the one option that changes the computation)."""
    chunk_size = None if options is None else options.batch_chunk_size
    return L.linear_cross_entropy(input, linear_weight, target, chunk_size=chunk_size, **kwargs)


#: lib.functional functions whose torch samples need a translation of their arguments
CALLS = {"linear_cross_entropy": _linear_cross_entropy}


def _unsupported(entry, sample):
    """A sample of a feature lib documents as not implemented: K-dimensional ``linear_weight``
    ``(C, d_1, ..., d_K, in_features)`` of linear_cross_entropy (lib raises NotImplementedError)."""
    return entry[0] == "nn.functional.linear_cross_entropy" and sample.args[0].dim() > 2

# ModuleInfo class name -> the lib call with the module's own settings
MODULES = {
    "CrossEntropyLoss": lambda m, x, y: L.cross_entropy(x, y, m.weight, ignore_index=m.ignore_index,
                                                        reduction=m.reduction, label_smoothing=m.label_smoothing),
    "NLLLoss": lambda m, x, y: L.nll_loss(x, y, m.weight, ignore_index=m.ignore_index, reduction=m.reduction),
    "BCELoss": lambda m, x, y: L.binary_cross_entropy(x, y, m.weight, reduction=m.reduction),
    "BCEWithLogitsLoss": lambda m, x, y: L.binary_cross_entropy_with_logits(
        x, y, m.weight, reduction=m.reduction, pos_weight=m.pos_weight),
    "KLDivLoss": lambda m, x, y: L.kl_div(x, y, reduction=m.reduction, log_target=m.log_target),
    "Softmax": lambda m, x: L.softmax(x, m.dim),
    "LogSoftmax": lambda m, x: L.log_softmax(x, m.dim),
    "Softmax2d": lambda m, x: L.softmax(x, -3),
}


@functools.cache
def _torch():
    """torch's test databases: ``op_db``, ``ModuleErrorEnum``, and the entries this module runs,
    ``opinfos`` (of ``OPS``) and ``moduleinfos`` (of ``MODULES``)."""
    profile = hypothesis.settings._current_profile
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.testing._internal.common_methods_invocations import op_db
        from torch.testing._internal.common_modules import ModuleErrorEnum, module_db
    hypothesis.settings.load_profile(profile)
    return SimpleNamespace(
        op_db=op_db, ModuleErrorEnum=ModuleErrorEnum,
        opinfos={(op.name, op.variant_test_name): op for op in op_db if (op.name, op.variant_test_name) in OPS},
        moduleinfos={m.module_cls.__name__: m for m in module_db if m.module_cls.__name__ in MODULES})


def test_every_matching_entry_is_used():
    """Each listed entry exists in this torch, and no entry named after a lib function is left out."""
    assert set(_torch().opinfos) == set(OPS)
    assert set(_torch().moduleinfos) == set(MODULES)
    named_after_lib = {(op.name, op.variant_test_name) for op in _torch().op_db if op.name.split(".")[-1] in L.__all__
                       and not op.name.startswith("masked.")}  # torch.masked's ops take a mask: not F's
    assert named_after_lib <= set(OPS), named_after_lib - set(OPS)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the class is what is compared
            return error


def _tensors(*things):
    out = []
    for thing in things:
        if isinstance(thing, torch.Tensor):
            out.append(thing)
        elif isinstance(thing, (list, tuple)):
            out += _tensors(*thing)
        elif isinstance(thing, dict):
            out += _tensors(*thing.values())
    return out


def _grads(out, inputs, seed):
    """Gradients of ``<out, v>`` for a fixed random cotangent ``v``, or the exception torch raises."""
    v = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(out.dtype)
    return _quiet(torch.autograd.grad, (out * v).sum(), inputs, allow_unused=True)


def _same(ours, theirs, what):
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    assert ours.dtype == theirs.dtype, (what, ours.dtype, theirs.dtype)
    tol = TOL.get(theirs.dtype, TOL[torch.float32])
    torch.testing.assert_close(ours, theirs, equal_nan=True, msg=lambda m: f"{what}: {m}", **tol)


def compare(lib_call, torch_call, inputs, what):
    """torch and lib agree on one sample: outcome, and gradients where torch has them."""
    theirs = _quiet(torch_call)
    ours = _quiet(lib_call)
    if isinstance(theirs, Exception):
        assert type(ours) is type(theirs), (what, theirs, ours)
        return "error"
    assert not isinstance(ours, Exception), (what, ours)
    _same(ours, theirs, what)
    inputs = [t for t in inputs if t.requires_grad]
    if not inputs or not theirs.requires_grad:
        return "value"
    expected = _grads(theirs, inputs, seed=len(what))
    if isinstance(expected, Exception):  # e.g. a derivative torch does not implement: the input's only
        inputs = inputs[:1]
        expected = _grads(theirs, inputs, seed=len(what))
        if isinstance(expected, Exception):
            return "value"
    got = _grads(ours, inputs, seed=len(what))
    assert not isinstance(got, Exception), (what, got)
    for i, (g_ours, g_theirs) in enumerate(zip(got, expected, strict=True)):
        if g_theirs is None:
            continue
        assert g_ours is not None, (what, i)
        _same(g_ours, g_theirs, f"{what}, gradient {i}")
    return "gradient"


def _dtypes(op):
    supported = op.supported_dtypes("cpu")
    dtypes = [d for d in (torch.float32, torch.float64) if d in supported]
    if op.variant_test_name == "with_dtype":  # integer inputs with dtype=float64
        dtypes += [d for d in (torch.int64, torch.uint8, torch.bool) if d in supported]
    return dtypes


@pytest.mark.parametrize("entry", sorted(OPS), ids=lambda e: "-".join(filter(None, e)))
def test_opinfo_samples(entry):
    op, fn = _torch().opinfos[entry], CALLS.get(OPS[entry], getattr(L, OPS[entry]))
    counts = {"value": 0, "gradient": 0, "error": 0, "not implemented": 0}
    for dtype in _dtypes(op):
        requires_grad = dtype.is_floating_point and op.supports_autograd
        for i, sample in enumerate(op.sample_inputs("cpu", dtype, requires_grad=requires_grad)):
            what = f"{entry} {dtype} sample {i}: {sample}"
            if _unsupported(entry, sample):
                assert isinstance(_quiet(fn, sample.input, *sample.args, **sample.kwargs), NotImplementedError), what
                counts["not implemented"] += 1
                continue
            inputs = _tensors(sample.input, sample.args, sample.kwargs)
            counts[compare(lambda sample=sample: fn(sample.input, *sample.args, **sample.kwargs),
                           lambda sample=sample: op.op(sample.input, *sample.args, **sample.kwargs),
                           inputs, what)] += 1
        if op.error_inputs_func is not None:
            for i, error in enumerate(op.error_inputs("cpu")):
                sample = error.sample_input
                assert isinstance(_quiet(op.op, sample.input, *sample.args, **sample.kwargs), error.error_type)
                counts[compare(lambda sample=sample: fn(sample.input, *sample.args, **sample.kwargs),
                               lambda sample=sample: op.op(sample.input, *sample.args, **sample.kwargs),
                               [], f"{entry} error {i}")] += 1
    assert counts["value"] + counts["gradient"] > 0, counts


@pytest.mark.parametrize("name", sorted(MODULES))
def test_moduleinfo_samples(name):
    info, call = _torch().moduleinfos[name], MODULES[name]
    seen = 0
    for dtype in (torch.float32, torch.float64):
        for i, sample in enumerate(info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True,
                                                           training=True)):
            ctor, fwd = sample.constructor_input, sample.forward_input
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = info.module_cls(*ctor.args, **ctor.kwargs).to(dtype)
            if fwd.kwargs:  # no loss module takes keyword inputs; none to map
                continue
            what = f"{name} {dtype} sample {i}: {ctor.kwargs} {[getattr(a, 'shape', a) for a in fwd.args]}"
            compare(lambda module=module, fwd=fwd: call(module, *fwd.args),
                    lambda module=module, fwd=fwd: module(*fwd.args), _tensors(fwd.args), what)
            seen += 1
        if info.module_error_inputs_func is None:
            continue
        for i, error in enumerate(info.module_error_inputs_func(info, device="cpu", dtype=dtype, requires_grad=False,
                                                                training=True)):
            ctor, fwd = error.module_error_input.constructor_input, error.module_error_input.forward_input
            assert error.error_on == _torch().ModuleErrorEnum.FORWARD_ERROR
            module = info.module_cls(*ctor.args, **ctor.kwargs)
            theirs = _quiet(module, *fwd.args)
            assert isinstance(theirs, error.error_type), (name, i, theirs)
            ours = _quiet(call, module, *fwd.args)
            assert type(ours) is type(theirs), (name, i, theirs, ours)
            seen += 1
    assert seen > 0
