"""docs/api.md: its notebook example runs as written (a one-cell sweep, shortened), and what it
prints and writes is what the guide says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"


@pytest.mark.slow
def test_the_notebook_example_runs(ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    [example] = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "1 trial" in out and "'completed'" in out
    assert (tmp_path / "nb-curves.png").stat().st_size > 1000
    assert (tmp_path / "nb-results" / "lake").is_dir()
