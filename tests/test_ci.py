"""CI runs what the README tells a new user to run, in a fresh virtual environment."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_has_two_commands():
    assert len(readme_commands()) == 2


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install_and_build, test = readme_commands()
    assert ci.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in ci
    for step in install_and_build.split(" && "):
        assert step.replace(" --quiet", "") in ci.replace(" --quiet", ""), step
    assert test in ci
    assert "rm -rf .venv" in ci  # a fresh virtual environment every time
