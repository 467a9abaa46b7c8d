"""lib.memory counts the tensors an operation creates, forward and backward."""

import torch
import torch.nn.functional as F

from lib import functional as L
from lib import memory


def forward_backward(fn, logits, labels):
    x = logits.detach().requires_grad_()
    fn(x, labels).backward()
    return x.grad


def created(fn, shape=(16, 7)):
    logits = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, shape[1], shape[:1], generator=torch.Generator().manual_seed(1))
    grad, made = memory.allocations(forward_backward, fn, logits, labels)
    return grad, [a.operation for a in made if a.shape == shape]


def test_views_and_in_place_results_are_not_allocations():
    x = torch.randn(4, 3)
    _, made = memory.allocations(lambda: (x.t(), x[1:], x.view(12), x.exp_()))
    assert made == []
    _, made = memory.allocations(lambda: (x + 1, x.exp()))
    assert [(a.operation, a.shape, a.nbytes) for a in made] == [("add", (4, 3), 48), ("exp", (4, 3), 48)]


def test_torch_cross_entropy_creates_three_n_by_c_tensors():
    # log-probabilities kept by the forward pass; the gradient with respect to them; then
    # the gradient with respect to the logits
    _, made = created(F.cross_entropy)
    assert made == ["_log_softmax", "nll_loss_backward", "_log_softmax_backward_data"]


def test_lib_cross_entropy_creates_one_and_it_becomes_the_gradient():
    grad, made = created(L.cross_entropy)
    assert made == ["sub"]
    expected, _ = created(F.cross_entropy)
    torch.testing.assert_close(grad, expected)


def test_counts_the_result_not_internal_workspace():
    _, made = memory.allocations(lambda: torch.randn(5, 5).sum())
    assert [a.shape for a in made] == [(5, 5), ()]
