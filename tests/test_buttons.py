"""The repository and Colab buttons follow ``repository: url:`` in ``_config.yml``, and nothing else.

Two builds of the whole book (``--warningiserror --nitpick``). The tests of the copy come first
and those of the run's one build last: under pytest-xdist the copy's build overlaps that one,
which another worker may be making.

- no repository (``url: ""``, as committed; the run's one build of the repository, which the
  site test opens too, ``built_book`` in tests/conftest.py): no repository, issue or launch button on any page,
  and no link without a target (``href=""``) or a button pointing at ``#``;
- in a copy of the repository, ``url: https://github.com/example/cross-entropy-executed`` with
  ``python -m tools.colab`` run:
  every page links that repository and its issues, every chapter has a Colab button that opens
  ``chapters/<file>.ipynb`` of the branch on Colab, and every chapter carries the Colab cell,
  which does nothing outside Colab (no output, nbval passes on a chapter) and on Colab clones the
  repository and makes ``lib`` importable.

The committed chapters must match the committed configuration (``python -m tools.colab --check``).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tools import colab, guards, sphinx_book

pytestmark = pytest.mark.heavy  # see conftest.py

ROOT = Path(__file__).resolve().parent.parent
URL = "https://github.com/example/cross-entropy-executed"
IGNORE = shutil.ignore_patterns("_build", ".git", ".venv", "venv", "__pycache__", ".hypothesis", ".pytest_cache",
                                ".ipynb_checkpoints", "*.egg-info")


def _toc_pages(root):
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def _notebook_pages(root):
    return [page for page in _toc_pages(root) if (root / f"{page}.ipynb").exists()]


def _env(root):
    return {**os.environ, "PYTHONPATH": str(root)}


def _copy(tmp_path_factory, name, url):
    """A copy of the repository with ``repository: url:`` set to ``url``."""
    root = tmp_path_factory.mktemp(name) / "book"
    shutil.copytree(ROOT, root, ignore=IGNORE)
    config = root / "_config.yml"
    text = config.read_text(encoding="utf-8")
    marker = '\nrepository:\n  url: ""\n'
    assert marker in text, "_config.yml has no 'repository: url: \"\"' block"
    config.write_text(text.replace(marker, f'\nrepository:\n  url: "{url}"\n'), encoding="utf-8")
    return root


def _build(root):
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(root), "--warningiserror", "--nitpick", "--keep-going"]
    build = subprocess.run(command, capture_output=True, text=True, env=_env(root), cwd=root)
    if build.returncode != 0:
        pytest.fail(f"the book did not build:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}", pytrace=False)
    return root / "_build" / "html"


@pytest.fixture(scope="module")
def plain(built_book):
    """The committed repository (``url: ""``) and the run's one build of it (tests/conftest.py,
    shared with the site test: the same sources, built with ``--warningiserror --nitpick``)."""
    assert _repository_url(ROOT) == ""
    return ROOT, built_book


def _repository_url(root):
    return (yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")).get("repository") or {}).get("url")


@pytest.fixture(scope="module")
def with_url(tmp_path_factory):
    root = _copy(tmp_path_factory, "url", URL)
    tool = subprocess.run([sys.executable, "-m", "tools.colab"], capture_output=True, text=True,
                          env=_env(root), cwd=root)
    assert tool.returncode == 0, tool.stdout + tool.stderr
    return root, _build(root)


class _Links(HTMLParser):
    """Every ``<a>`` of a page as (href or None, class, title)."""

    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            attrs = dict(attrs)
            self.links.append((attrs.get("href"), attrs.get("class") or "", attrs.get("title") or ""))


def _links(html, page):
    parser = _Links()
    parser.feed((html / f"{page}.html").read_text(encoding="utf-8"))
    return parser.links


def _dead_links(links):
    """Links that lead nowhere: no or empty href, or a button (class btn) pointing at "#"."""
    return [link for link in links
            if not (link[0] or "").strip() or ("btn" in link[1].split() and link[0].strip() == "#")]


# --- a repository: its buttons, on every page -----------------------------------------------------

def test_repository_and_issue_buttons_on_every_page(with_url):
    root, html = with_url
    for page in _toc_pages(root):
        links = _links(html, page)
        repository = [href for href, cls, _ in links if "btn-source-repository-button" in cls.split()]
        issues = [href for href, cls, _ in links if "btn-source-issues-button" in cls.split()]
        assert repository == [URL], f"{page}.html: {repository}"
        assert len(issues) == 1 and issues[0].startswith(f"{URL}/issues/new?"), f"{page}.html: {issues}"
        assert not _dead_links(links), f"{page}.html: {_dead_links(links)}"


def test_colab_button_on_every_chapter_only(with_url):
    root, html = with_url
    notebooks = _notebook_pages(root)
    assert len(notebooks) == len(colab.chapters(root))  # every chapter is in the table of contents
    for page in _toc_pages(root):
        colab_links = [href for href, _, title in _links(html, page) if title == "Launch on Colab"]
        if page in notebooks:
            expected = f"https://colab.research.google.com/github/example/cross-entropy-executed/blob/main/{page}.ipynb"
            assert colab_links == [expected], f"{page}.html: {colab_links}"
            assert colab_links == [colab.colab_link(colab.repository(root), page)]
        else:
            assert colab_links == [], f"{page}.html (not a notebook): {colab_links}"


# --- a repository: the Colab cell ---------------------------------------------------------------

def _setup_cells(notebook):
    return [c for c in notebook["cells"] if colab.TAG in c.get("metadata", {}).get("tags", [])]


def test_colab_cell_in_every_chapter(with_url):
    root, html = with_url
    for path in colab.chapters(root):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells = _setup_cells(notebook)
        assert len(cells) == 1, path.name
        cell = cells[0]
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        assert code[0] is cell, f"{path.name}: the Colab cell is not the first code cell"
        assert "remove-cell" in cell["metadata"]["tags"] and cell["outputs"] == []
        source = "".join(cell["source"])
        assert f"{URL!r}" in source and "'main'" in source
        assert guards.check(notebook) == [], f"{path.name}: {guards.check(notebook)}"
        page = (html / path.relative_to(root).with_suffix(".html")).read_text(encoding="utf-8")
        assert "google.colab" not in page, f"{path.name}: the Colab cell shows on the site"
    assert colab.mismatches(root) == []


def _run_cell(root, tmp_path, on_colab):
    """Run the Colab cell of chapter 12 in a fresh interpreter; return what it observed (a dict)."""
    notebook = json.loads((root / "chapters" / "12_cross_entropy.ipynb").read_text(encoding="utf-8"))
    source = "".join(_setup_cells(notebook)[0]["source"])
    (tmp_path / "cell.py").write_text(source, encoding="utf-8")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    script = textwrap.dedent(f"""
        import json, os, shutil, subprocess, sys, types
        calls = []
        def fake_run(command, **kwargs):  # git clone, without the network: a copy of the book
            calls.append(command)
            shutil.copytree({str(root)!r}, command[-1], ignore=shutil.ignore_patterns("_build"))
            return subprocess.CompletedProcess(command, 0)
        subprocess.run = fake_run
        if {on_colab!r}:
            sys.modules["google.colab"] = types.ModuleType("google.colab")
        path_before, cwd_before = list(sys.path), os.getcwd()
        source = open({str(tmp_path / "cell.py")!r}, encoding="utf-8").read()
        namespace = {{}}
        for run in range(2):  # run twice, as Run All twice would
            exec(compile(source, "cell", "exec"), namespace)
        cwd_after = os.getcwd()
        import lib
        print(json.dumps({{"calls": calls, "cwd_before": cwd_before, "cwd_after": cwd_after,
                          "path_added": [p for p in sys.path if p not in path_before],
                          "lib": lib.__file__, "home": sorted(os.listdir({str(home)!r})),
                          "work": sorted(os.listdir({str(work)!r})), "names": sorted(namespace)}}))
    """)
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": ""}
    if not on_colab:
        env["PYTHONPATH"] = str(root)  # lib from the book, as nbval runs it
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=work, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads(result.stdout)


def test_colab_cell_does_nothing_outside_colab(with_url, tmp_path):
    root, _ = with_url
    result, seen = _run_cell(root, tmp_path, on_colab=False)
    assert result.stderr == ""
    assert seen["calls"] == [] and seen["path_added"] == [] and seen["home"] == [] and seen["work"] == []
    assert seen["cwd_after"] == seen["cwd_before"]
    assert seen["names"] == ["__builtins__", "sys"]  # it imports sys, and defines nothing else
    assert Path(seen["lib"]).is_relative_to(root)


def test_colab_cell_on_colab_clones_once_and_imports_lib(with_url, tmp_path):
    root, _ = with_url
    result, seen = _run_cell(root, tmp_path, on_colab=True)
    clone = tmp_path / "home" / "cross-entropy-executed"
    assert seen["calls"] == [["git", "clone", "--quiet", "--depth", "1", "--branch", "main", URL, str(clone)]]
    assert seen["path_added"] == [str(clone)]
    assert seen["cwd_after"] == str(clone / "chapters")
    assert Path(seen["lib"]).is_relative_to(clone)
    assert (clone / "chapters" / ".." / "benchmarks" / "results" / "cross_entropy.csv").exists()  # chapter 41 reads it


def test_nbval_passes_with_the_colab_cell(with_url):
    """The cell runs under nbval in CI: stored without output, it must print nothing."""
    root, _ = with_url
    chapter = root / "chapters" / "12_cross_entropy.ipynb"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", str(chapter)],  # one file: no workers
                         capture_output=True, text=True, env=_env(root), cwd=root)
    assert run.returncode == 0, run.stdout[-3000:]


# --- the configuration and the tool, without a build ----------------------------------------------

def test_committed_chapters_match_the_committed_config():
    """``python -m tools.colab --check``: the cells are there exactly when a URL is set."""
    assert colab.mismatches(ROOT) == [], "run python -m tools.colab"


def test_adding_and_removing_the_cell_restores_the_chapter():
    repo = colab.repository(ROOT) or {"url": URL, "owner": "example", "name": "cross-entropy-executed",
                                      "branch": "main", "path": ""}
    for path in colab.chapters(ROOT):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        added = colab.apply(notebook, repo)
        assert guards.check(added) == guards.check(notebook)
        assert colab.apply(added, repo) == added
        assert colab.apply(added, None) == colab.apply(notebook, None)


@pytest.mark.parametrize("url", ["https://gitlab.com/example/book", "github.com/example/book", "https://github.com/x"])
def test_a_url_colab_cannot_open_is_an_error(tmp_path, url):
    (tmp_path / "_config.yml").write_text(f"repository:\n  url: {url}\n", encoding="utf-8")
    with pytest.raises(colab.RepositoryError):
        colab.repository(tmp_path)


@pytest.mark.parametrize("key", ["repository_url", "use_repository_button", "launch_buttons"])
def test_buttons_are_not_set_in_html_theme_options(tmp_path, key):
    """One place: a repository key in html_theme_options (the theme's) stops the build."""
    (tmp_path / "_config.yml").write_text('repository:\n  url: ""\n', encoding="utf-8")
    config = SimpleNamespace(html_theme_options={key: True})
    with pytest.raises(sphinx_book.ExtensionError):
        sphinx_book._repository_buttons(SimpleNamespace(srcdir=str(tmp_path)), config)


# --- no repository: no button -------------------------------------------------------------------

def test_no_repository_no_buttons(plain):
    root, html = plain
    for page in _toc_pages(root):
        text = (html / f"{page}.html").read_text(encoding="utf-8")
        for mark in ("btn-source-repository-button", "btn-source-issues-button", "btn-source-edit-button",
                     "dropdown-launch-buttons", "dropdown-source-buttons", "colab.research.google.com",
                     "github.com/example"):
            assert mark not in text, f"{page}.html: {mark} without a repository"
        assert not _dead_links(_links(html, page)), f"{page}.html: {_dead_links(_links(html, page))}"


def test_no_repository_no_colab_cell(plain):
    root, _ = plain
    for path in colab.chapters(root):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        assert not [c for c in notebook["cells"] if colab.TAG in c.get("metadata", {}).get("tags", [])], path.name
