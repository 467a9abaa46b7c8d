"""lib.device and lib.display: the same numbers and the same text on every device."""

import pytest
import torch

from lib import device, display


def test_env_var_overrides_the_device(monkeypatch):
    monkeypatch.setenv(device.ENV_VAR, "cpu")
    assert device.get_device() == torch.device("cpu")
    monkeypatch.setenv(device.ENV_VAR, "not-a-device")
    with pytest.raises(ValueError, match="CEE_DEVICE"):
        device.get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_asking_for_cuda_without_cuda_is_an_error(monkeypatch):
    monkeypatch.setenv(device.ENV_VAR, "cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        device.get_device()


def test_default_is_cuda_when_available(monkeypatch):
    monkeypatch.delenv(device.ENV_VAR, raising=False)
    assert device.get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_seeded_draws_match_torch_manual_seed_on_the_cpu():
    torch.manual_seed(7777)
    expected = torch.randn(2, 5)
    assert torch.equal(device.randn(2, 5, seed=7777, device="cpu"), expected)
    assert torch.equal(device.randn(2, 5, seed=7777).cpu(), expected)
    torch.manual_seed(3)
    assert torch.equal(device.randint(0, 10, (64,), seed=3).cpu(), torch.randint(0, 10, (64,)))
    torch.manual_seed(4)
    assert torch.equal(device.rand(3, seed=4).cpu(), torch.rand(3))


def test_seed_must_be_an_int():
    with pytest.raises(TypeError):
        device.randn(2, seed=1.5)


def test_fmt_hides_device_and_autograd():
    x = torch.tensor([0.59814, 1.0], requires_grad=True)
    y = (x * 2).sum()
    assert display.fmt(y) == "tensor(3.1963)"
    assert display.fmt(x) == "tensor([0.5981, 1.0000])"
    assert display.fmt(torch.tensor(2.0, dtype=torch.float64)) == "tensor(2., dtype=torch.float64)"
    assert display.fmt(0.123456) == "0.1235"
    assert display.fmt([1.0, torch.tensor(2.0)]) == "[1.0000, tensor(2.)]"


@pytest.mark.gpu
def test_fmt_is_the_same_on_the_gpu():
    x = torch.tensor([0.59814, 1.0])
    assert display.fmt(x.cuda()) == display.fmt(x)


def test_fmt_leaves_print_options_alone():
    before = torch._tensor_str.PRINT_OPTS.precision
    display.fmt(torch.tensor(1.0), decimals=2)
    assert torch._tensor_str.PRINT_OPTS.precision == before


def test_table(capsys):
    display.table([["a", 1.0], ["bb", torch.tensor(0.5)]], header=["name", "value"])
    assert capsys.readouterr().out.splitlines() == [
        "name   value", "----  ------", "a     1.0000", "bb    0.5000"]
    display.table([["x", "7.5"], ["yy", "-"]], header=["text", "numbers as text"])
    assert capsys.readouterr().out.splitlines() == [
        "text  numbers as text", "----  ---------------", "x                 7.5", "yy                  -"]
    with pytest.raises(ValueError):
        display.table([[1]], header=["a", "b"])
