"""Fixtures shared by the test modules."""

import re
import shlex
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def book_build_command():
    """README command 1's build of the book, as words, with ``--all`` (every page, a fresh
    environment): the site test builds the book with it, and CI keeps that build (``.ci/run``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", text, re.S).group(1)
    first = next(line for line in block.splitlines() if line and not line.startswith("#"))
    build = shlex.split(first.split(" && ")[-1])
    assert build[0] == ".venv/bin/jupyter-book" and build[1] == "build", build
    return [str(Path(sys.executable).parent / "jupyter-book"), *build[1:], "--all"]


@pytest.fixture(scope="module")
def one_thread():
    """Thousands of tiny calls: one intra-op thread. With torch's default pool, every small kernel
    wakes the other threads, which costs milliseconds per call on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: skipped without it, run by the GPU check (``.ci/gpu``)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (the GPU check, .ci/gpu, runs it)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
