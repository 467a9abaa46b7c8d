"""The book as one archive (tools/archive.py): everything a chapter needs, nothing of the build.

The end-to-end check (download from the built site, install in a fresh virtual environment,
run a chapter to its stored outputs) is ``test_the_downloaded_book_runs`` in test_site_download.py.
"""

import re
import zipfile

from tools import archive, guards


def test_the_archive_holds_the_chapters_lib_and_what_they_read(tmp_path):
    names = set(zipfile.ZipFile(archive.write(tmp_path / "book.zip")).namelist())
    inside = {name.removeprefix(f"{archive.NAME}/") for name in names}
    assert all(name.startswith(f"{archive.NAME}/") for name in names)
    assert {f"chapters/{p.name}" for p in guards.chapter_notebooks()} <= inside
    assert {"README.md", "requirements.txt", "pyproject.toml", "lib/__init__.py", "lib/functional.py"} <= inside
    for path in guards.chapter_notebooks():  # files a chapter opens relative to chapters/
        for parts in re.findall(r'Path\(\\"\.\.\\"\)((?: / \\"[^\\"]+\\")+)', path.read_text(encoding="utf-8")):
            relative = "/".join(re.findall(r'\\"([^\\"]+)\\"', parts))
            assert relative in inside, f"{path.name} reads {relative}, which the archive lacks"
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in inside)


def test_the_archive_readme_and_the_run_page_give_the_same_commands():
    page = (archive.ROOT / "run.md").read_text(encoding="utf-8")
    for command in ("python3 -m venv .venv", ".venv/bin/python -m pip install -r requirements.txt",
                    ".venv/bin/jupyter lab chapters/"):
        assert command in archive.README and command in page
