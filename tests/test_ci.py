"""CI runs what the README tells a new user to run, in a fresh virtual environment.

``.ci/run`` sends every command through one ``run`` function; with ``CEE_CI_DRY_RUN=1`` it
prints them (``+ command``) instead of running them. The tests run it that way and compare the
printed commands with the README's two commands. CI may differ from them only in the
documented ways: the install takes the lock file (plus PyPI's missing CPU build of torch from
PyTorch's index where pip needs it) and then ``lib`` with ``--no-deps``, pytest writes a JUnit
report, ``--quiet`` flags, and the steps around them (Chromium, pip's own upgrade, clearing an
old build). CI builds the book once, in the test run, with README command 1's build command
(``book_build_command`` in ``tests/conftest.py``, plus ``--all``; ``built_book`` runs it once
for the site test and the button test), and then checks that the site is there.
"""

import ast
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / ".ci" / "run"
LOCK = "requirements-lock.txt"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
REPORT = "--junitxml=_build/test-report.xml"
QUIET = {"--quiet", "-q", "-qq"}


def readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def readme_steps():
    """The README's commands, one per step: venv, install, build (command 1), test (command 2)."""
    install_and_build, test = readme_commands()
    return [*install_and_build.split(" && "), test]


def words(command):
    return [word for word in shlex.split(command) if word not in QUIET]


def expected_ci_commands():
    """What CI must run, in order, derived from the README's commands with the documented changes."""
    venv, install, build, test = (words(step) for step in readme_steps())
    assert venv == ["python3", "-m", "venv", ".venv"], venv
    assert install[-2:] == ["-r", "requirements.txt"], install
    assert build[1] == "build", build
    lock_install = [*install[:-1], LOCK]
    lib_install = [*install[:-2], "--no-deps", "-e", "."]
    return [
        ["rm", "-rf", ".venv"],  # a fresh virtual environment every time
        venv,
        lock_install,
        lib_install,
        [*test, REPORT],  # builds the book: the site test runs README command 1's build
        SITE_CHECK,
    ]


#: After the tests, CI checks that the site test left the built book (README command 1's build).
SITE_CHECK = ["test", "-f", "_build/html/index.html"]


#: Commands CI may run besides the README's: Chromium's check and install, pip's own upgrade,
#: removing the previous build (keeping the test report).
ALLOWED_EXTRA = [
    re.compile(r"chromium --version|apt-get (update|install -y chromium)"),
    re.compile(r"\.venv/bin/python -m pip install --upgrade pip"),
    re.compile(r"rm -rf( _build/[\w.]+)+"),
]


def dry_run(script=CI, torch_index=None):
    """Run ``script`` in dry mode and return the commands it prints, as word lists."""
    env = {**os.environ, "CEE_CI_DRY_RUN": "1"}
    env.pop("CEE_CI_TORCH_INDEX", None)
    if torch_index is not None:
        env["CEE_CI_TORCH_INDEX"] = torch_index
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return [words(line[2:]) for line in done.stdout.splitlines() if line.startswith("+ ")]


def command_problems(commands):
    """Every way in which the printed ``commands`` of a CI script differ from the README's."""
    found = []
    expected = expected_ci_commands()
    main = []
    for command in commands:
        if command[-2:] == ["--extra-index-url", TORCH_CPU_INDEX] and LOCK in command:
            command = command[:-2]  # the documented index for torch's CPU build
        if command in expected:
            main.append(command)
        elif not any(pattern.fullmatch(" ".join(command)) for pattern in ALLOWED_EXTRA):
            found.append(f"CI runs a command the README does not document: {' '.join(command)}")
    if main != expected:
        found.append(f"CI's commands {main} are not the README's, in order: {expected}")
    return found


def script_problems(script_text):
    """What the dry mode cannot see: a command that bypasses run, or whose failure is ignored."""
    found = []
    if not script_text.startswith("#!/usr/bin/env bash") or "\nset -euo pipefail\n" not in script_text:
        found.append("CI must stop at the first failing command (set -euo pipefail)")
    for line in script_text.splitlines():
        code = line.split("#", 1)[0].strip()
        if ".venv/bin/" in code and not code.startswith("run "):
            found.append(f"a command that bypasses run (the dry mode would not show it): {line.strip()}")
        if code.startswith("run ") and re.search(r"\|\||&&|;|\||&$", code):
            found.append(f"a command whose failure or output is hidden from set -e: {line.strip()}")
    return found


def test_readme_has_two_commands():
    assert len(readme_commands()) == 2


def test_ci_runs_the_readme_commands():
    assert script_problems(CI.read_text(encoding="utf-8")) == []  # first: a dry run must run nothing
    assert command_problems(dry_run()) == []


def test_ci_with_and_without_pytorch_index():
    with_index = dry_run(torch_index=TORCH_CPU_INDEX)
    without = dry_run(torch_index="")
    assert [*words(f".venv/bin/python -m pip install -r {LOCK}"), "--extra-index-url", TORCH_CPU_INDEX] in with_index
    assert words(f".venv/bin/python -m pip install -r {LOCK}") in without
    for commands in (with_index, without):
        assert command_problems(commands) == []


def test_the_site_test_builds_with_the_readme_command(book_build_command):
    *_, build, _ = (words(step) for step in readme_steps())
    assert Path(book_build_command[0]).name == "jupyter-book" and book_build_command[1:] == [*build[1:], "--all"]
    # the run's one build (built_book in conftest.py) runs that command, in the repository
    conftest = ast.parse((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    (built,) = [f for f in ast.walk(conftest) if isinstance(f, ast.FunctionDef) and f.name == "built_book"]
    assert [a.arg for a in built.args.args][0] == "book_build_command"
    runs = [c for c in ast.walk(built) if isinstance(c, ast.Call) and ast.unparse(c.func) == "subprocess.run"]
    assert [ast.unparse(c.args[0]) for c in runs] == ["book_build_command"]
    assert "cwd=ROOT" in [ast.unparse(k) for k in runs[0].keywords]
    # the site fixture serves that build, and the site tests build nothing else
    (site,) = [f for f in ast.walk(conftest) if isinstance(f, ast.FunctionDef) and f.name == "site"]
    assert [a.arg for a in site.args.args] == ["built_book"]
    site_tests = sorted((ROOT / "tests").glob("test_site*.py")) + [ROOT / "tests" / "browser.py"]
    assert len(site_tests) >= 3
    for path in site_tests:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        assert not [s for s in strings if "jupyter-book" in s or "--warningiserror" in s], path.name


def test_dry_run_runs_nothing(tmp_path):
    copy = tmp_path / ".ci" / "run"
    copy.parent.mkdir()
    shutil.copy(CI, copy)
    shutil.copy(ROOT / LOCK, tmp_path / LOCK)
    (tmp_path / ".venv").mkdir()
    dry_run(copy, torch_index="")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".ci", ".venv", LOCK])


#: Faults planted in a copy of .ci/run: each must make the comparison fail.
FAULTS = {
    "pytest commented out": ("run .venv/bin/python -m pytest", "# run .venv/bin/python -m pytest"),
    "pytest failure ignored": ('-m pytest --junitxml="$REPORT"', '-m pytest --junitxml="$REPORT" || true'),
    "built site not checked": ("run test -f _build/html/index.html\n", ""),
    "a second build": ('run test -f _build/html/index.html\n',
                       'run .venv/bin/jupyter-book build . --warningiserror --nitpick --keep-going\n'),
    "no fresh venv": ("run rm -rf .venv\n", ""),
    "requirements.txt not the lock": ('-r "$LOCK"', "-r requirements.txt"),
    "lib not installed": ("run .venv/bin/python -m pip install --quiet --no-deps -e .\n", ""),
    "pytest outside run": ("run .venv/bin/python -m pytest", ".venv/bin/python -m pytest"),
    "an extra command": ('step "done"', 'run .venv/bin/python -m pip uninstall -y nbval\nstep "done"'),
    "no set -e": ("set -euo pipefail", "set -uo pipefail"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_planted_fault_is_caught(fault, tmp_path):
    old, new = FAULTS[fault]
    text = CI.read_text(encoding="utf-8")
    assert old in text, f"the fault {fault!r} no longer applies to .ci/run: update FAULTS"
    planted = tmp_path / ".ci" / "run"
    planted.parent.mkdir()
    planted.write_text(text.replace(old, new, 1), encoding="utf-8")
    shutil.copy(ROOT / LOCK, tmp_path / LOCK)
    if script_problems(planted.read_text(encoding="utf-8")):
        return
    assert command_problems(dry_run(planted, torch_index="")) != []
