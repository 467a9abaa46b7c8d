"""The pre-commit hooks pass on a clean copy of the repository, and catch what they are for.

The hooks (.pre-commit-config.yaml) are local: the notebook guards, the notebooks' normalised
metadata and ruff. The test clones the committed checkout into a temporary folder and runs
``pre-commit run --all-files`` there, with the hook environments in pre-commit's cache
(PRE_COMMIT_HOME, default ``~/.cache/pre-commit``): the first run on a machine installs them
from PyPI. Without pre-commit the test is skipped on a workstation and fails under CI.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".pre-commit-config.yaml"


def hooks():
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


@pytest.fixture(scope="module")
def clone(tmp_path_factory, tool):
    """A git clone of this checkout's committed state, and a function running pre-commit in it."""
    executable = tool("pre-commit", "for the hooks")
    folder = tmp_path_factory.mktemp("precommit") / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT_")) or k == "PRE_COMMIT_HOME"}
    env["PYTHONPATH"] = str(folder)

    def run(*args):
        return subprocess.run([executable, "run", *args], cwd=folder, env=env, capture_output=True, text=True,
                              timeout=900)

    return folder, run


def test_the_hooks_are_local_and_change_nothing():
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert [repo["repo"] for repo in config["repos"]] == ["local"]  # no hook repository to clone
    entries = {hook["id"]: hook["entry"] for hook in hooks()}
    assert entries["notebook-guards"] == "python -m tools.guards"
    assert entries["notebook-metadata"] == "python .ci/notebook_metadata.py"  # no --fix: outputs are never touched
    assert entries["ruff"].startswith("ruff check") and "--fix" not in entries["ruff"]
    (ruff,) = [hook for hook in hooks() if hook["id"] == "ruff"]
    checked = re.compile(ruff["files"])  # the Python of lib, tools, tests, benchmarks and the root conftest.py
    assert all(checked.search(path) for path in ["lib/functional.py", "tools/guards.py", "tests/conftest.py",
                                                 "benchmarks/results.py", "conftest.py"])
    assert not any(checked.search(path) for path in ["chapters/11_entropy.ipynb", "chapters/conftest.py"])


def test_hook_dependencies_are_the_locked_versions():
    locked = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", (ROOT / "requirements-lock.txt").read_text(), re.M))
    for hook in hooks():
        for dependency in hook.get("additional_dependencies", []):
            name, version = dependency.split("==")
            if name in locked:
                assert locked[name] == version, f"{hook['id']}: {dependency}, the lock has {locked[name]}"


def test_pre_commit_passes_on_a_clean_clone(clone):
    folder, run = clone
    done = run("--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    for hook in hooks():
        assert re.search(rf"^{re.escape(hook['name'])}\.+Passed$", done.stdout, re.M), done.stdout
    assert subprocess.run(["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True).stdout == ""


def test_the_hooks_catch_planted_faults(clone):
    folder, run = clone
    chapter = sorted((folder / "chapters").glob("*.ipynb"))[0]
    original = chapter.read_text(encoding="utf-8")
    notebook = json.loads(original)
    notebook["metadata"]["widgets"] = {"state": {}}  # what Jupyter adds when a notebook is saved
    chapter.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    done = run("notebook-metadata", "--files", str(chapter.relative_to(folder)))
    assert done.returncode == 1 and "normalised form" in done.stdout, done.stdout
    assert chapter.read_text(encoding="utf-8") != original  # reported, not rewritten

    first_code = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    first_code["execution_count"] = 99  # not executed top to bottom
    notebook["metadata"].pop("widgets")
    chapter.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    done = run("notebook-guards", "--files", str(chapter.relative_to(folder)))
    assert done.returncode == 1, done.stdout
    chapter.write_text(original, encoding="utf-8")

    module = folder / "tools" / "planted.py"
    module.write_text("import os\n", encoding="utf-8")  # F401: imported and unused
    done = run("ruff", "--files", str(module.relative_to(folder)))
    module.unlink()
    assert done.returncode == 1 and "F401" in done.stdout, done.stdout
