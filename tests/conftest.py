"""Fixtures shared by the test modules.

torch is imported where it is used, not at the top: pytest-xdist's controlling process loads this
file too, and runs no test (importing torch there delayed the workers' start by seconds)."""

import functools
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from filelock import FileLock

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


@pytest.fixture(scope="session")
def built_book(book_build_command, tmp_path_factory):
    """The book built once per test run, in the repository (``_build/html``, which CI keeps), with
    ``book_build_command``; returns the HTML folder, or fails the test that asks for it (every one,
    with the build's log) when the build failed. The site test and the button test's no-repository
    case both read this build. Under pytest-xdist the workers share it: the first to ask builds
    it under a file lock in the run's temporary folder, the others wait and read its result."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    result = shared / "book-build.json"
    with FileLock(str(shared / "book-build.lock")):
        if not result.exists():
            build = subprocess.run(book_build_command, cwd=ROOT, capture_output=True, text=True)
            result.write_text(json.dumps({"returncode": build.returncode,
                                          "log": f"{build.stdout[-4000:]}\n{build.stderr[-4000:]}"}))
    built = json.loads(result.read_text())
    if built["returncode"] != 0:
        pytest.fail(f"the book did not build:\n{built['log']}", pytrace=False)
    return ROOT / "_build" / "html"


@pytest.fixture(scope="module")
def site(built_book):
    """The run's one build of the book (``built_book``, which CI keeps and test_buttons.py reads
    too), served on 127.0.0.1 for one site test module (tests/browser.py): yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (``browser.CHROMIUM``), one per test module."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def tool():
    """``tool(name, purpose)``: the path of the command ``name`` that requirements.txt installs
    (next to this interpreter, else on PATH). Without it the test is skipped on a workstation and
    fails under CI (``CI`` set), where it must be there."""

    def find(name, purpose):
        found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
        if found is None:
            message = f"{name} is needed {purpose} (pip install -r requirements.txt)"
            if os.environ.get("CI"):
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        return found

    return find


@pytest.fixture(scope="module")
def one_thread():
    """Thousands of tiny calls: one intra-op thread. With torch's default pool, every small kernel
    wakes the other threads, which costs milliseconds per call on a busy 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: skipped without it, run by the GPU check (``.ci/gpu``)."""
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (the GPU check, .ci/gpu, runs it)")
    for item in gpu:
        item.add_marker(skip)
