"""The root conftest.py's settings: PyTorch's threads per pytest-xdist worker, heavy modules first."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
root_conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(root_conftest)


def test_each_worker_gets_its_share_of_the_cores():
    assert root_conftest.threads_per_worker(1, 2) is None  # one process: nothing changes
    assert root_conftest.threads_per_worker(2, 2) == 1
    assert root_conftest.threads_per_worker(2, 16) == 8
    assert root_conftest.threads_per_worker(16, 16) == 1
    assert root_conftest.threads_per_worker(3, 2) == 1  # never none


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("workers, cores, preset, expected", [
    ("2", 4, None, "2"),    # a worker of two on four cores: two threads, for torch and the kernels
    ("2", 4, "3", None),    # threads set in the environment: nothing is changed
    ("1", 4, None, None),   # one process (-n 0, or one worker): nothing is set
])
def test_configure_sets_the_threads_a_worker_and_its_kernels_use(monkeypatch, restore_threads,
                                                                   workers, cores, preset, expected):
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", workers)
    monkeypatch.setattr(root_conftest, "cores", lambda: cores)
    for name in root_conftest.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if preset:
        monkeypatch.setenv("OMP_NUM_THREADS", preset)
    before = torch.get_num_threads()
    root_conftest.pytest_configure(None)
    assert root_conftest.os.environ.get("MKL_NUM_THREADS") == expected
    assert root_conftest.os.environ.get("OMP_NUM_THREADS") == (expected or preset)
    assert torch.get_num_threads() == (int(expected) if expected else before)


def _item(nodeid, heavy=False):
    return SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: heavy if name == "heavy" else None)


def test_heavy_modules_come_first_in_order_of_their_test_counts():
    items = [_item("tests/test_a.py::x"), _item("tests/test_b.py::y", True), _item("chapters/c.ipynb::Cell 0"),
             _item("tests/test_d.py::p", True), _item("tests/test_d.py::q", True), _item("tests/test_a.py::z")]
    root_conftest.pytest_collection_modifyitems(None, items)
    assert [i.nodeid for i in items] == ["tests/test_d.py::p", "tests/test_d.py::q", "tests/test_b.py::y",
                                         "tests/test_a.py::x", "chapters/c.ipynb::Cell 0", "tests/test_a.py::z"]


def test_the_slow_modules_are_marked_heavy():
    for name in ["test_site.py", "test_site_download.py", "test_buttons.py", "test_benchmark_lce.py"]:
        assert "pytestmark = pytest.mark.heavy" in (ROOT / "tests" / name).read_text(encoding="utf-8"), name
