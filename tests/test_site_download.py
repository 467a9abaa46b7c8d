"""The book as a reader downloads it: the archive the site links, unpacked in an empty folder,
installed with the commands of the page "Run the book yourself", runs a chapter to its stored
outputs. (What the archive holds: test_archive.py.)
"""

import importlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.browser import ROOT, Tab, require_chromium

require_chromium()

pytestmark = pytest.mark.heavy  # see conftest.py


def test_the_downloaded_book_runs(site, browser, tmp_path):
    """The archive linked from every page, unpacked in an empty folder, installs with the commands
    of the page "Run the book yourself" and runs a chapter to its stored outputs.

    The fresh virtual environment (the page's ``python3 -m venv .venv``) sees, from this test's
    environment, only the distributions that the archive's ``requirements.txt`` requires, with
    everything they require in turn (``_requirement_closure``): nothing else, not the repository's
    ``lib``. The page's install command then finds those requirements satisfied (pip checks each
    version against the archive's ``requirements.txt``, and would install from the index any it
    found missing) and installs the archive's own ``lib`` (``-e .``) from the unpacked folder;
    nbval runs a chapter there with nothing on ``PYTHONPATH``. A requirement missing from the
    archive's ``requirements.txt`` (nbval, ipykernel, ...), or a file missing from the archive,
    fails the run. What it does not repeat is downloading and unpacking the wheels: CI's install
    (``.ci/run``) does that, from the lock compiled from the same ``requirements.txt``."""
    tab = Tab(browser, site)
    try:
        page = tab.open("chapters/11_entropy.html")
        link = page.locator("footer a[download]")
        assert link.count() == 1
        with page.expect_download() as download:
            link.click()
        archive = tmp_path / "book.zip"
        download.value.save_as(archive)
    finally:
        tab.close()
    commands = re.search(r"```bash\n(.*?)```", (ROOT / "run.md").read_text(encoding="utf-8"), re.S).group(1)
    venv, install, _ = commands.strip().splitlines()
    assert venv == "python3 -m venv .venv" and install == ".venv/bin/python -m pip install -r requirements.txt"
    shutil.unpack_archive(archive, tmp_path / "unpacked")
    book = tmp_path / "unpacked" / "cross-entropy-executed"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CEE_DEVICE")}

    def run(command):
        result = subprocess.run(command, shell=True, cwd=book, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    run(venv)
    version, site_packages = run(".venv/bin/python -c 'import sys, sysconfig; print(sys.version_info[:2]); "
                                 "print(sysconfig.get_path(\"purelib\"))'").splitlines()
    assert version == str(sys.version_info[:2]), "the page's python3 is not this test's Python"
    visible = _expose(_requirement_closure(book / "requirements.txt"), tmp_path / "requirements")
    Path(site_packages, "requirements.pth").write_text(f"{visible}\n", encoding="utf-8")
    run(install + " --quiet")
    lib = run(".venv/bin/python -c 'import lib; print(lib.__file__)'").strip()
    assert Path(lib).resolve().is_relative_to(book.resolve()), f"lib imported from {lib}, not from the archive"
    out = run(".venv/bin/python -m pytest -q -p no:cacheprovider -n 0 chapters/11_entropy.ipynb")  # one file
    assert re.search(r"\b\d+ passed\b", out) and "failed" not in out, out


def _requirement_closure(requirements):
    """The installed distributions that ``requirements`` (a requirements file) names, and those
    they require, recursively (markers evaluated, extras followed), as ``importlib.metadata``
    distributions of this test's environment. The editable ``-e .`` line is left out."""
    found, todo = {}, []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            todo.append(Requirement(line))
    while todo:
        requirement = todo.pop()
        key = canonicalize_name(requirement.name)
        extras = set(requirement.extras)
        if key in found and extras <= found[key][1]:
            continue
        distribution = importlib.metadata.distribution(requirement.name)  # missing: the test fails here
        extras |= found.get(key, (None, set()))[1]
        found[key] = (distribution, extras)
        for needed in map(Requirement, distribution.requires or []):
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append(needed)
    return [distribution for distribution, _ in found.values()]


def _expose(distributions, folder):
    """A folder of links to the files of ``distributions`` (their top-level packages, modules and
    metadata), to put on a fresh environment's path; returns the folder."""
    folder.mkdir()
    for distribution in distributions:
        for file in distribution.files or []:
            top = file.parts[0]
            if top == ".." or (folder / top).exists():
                continue  # scripts outside site-packages; a folder shared by a namespace package
            (folder / top).symlink_to(distribution.locate_file(top))
    return folder
