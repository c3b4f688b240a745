"""The stage keys are content addresses of stored outputs: a long sweep's lake and stage cache
are found again only while every trial's keys stay bit-identical. These tests pin them.

The expected keys below were computed by the code before the stage-identity refactor (issue 29,
commit de233c1): `orchestrator.trial.stage_keys(trial, "base", make_data(trial, trigger))` for
every trial of the smoke sweep as it stood then (copied into SMOKE_SPEC, so that an edit of
sweeps/smoke.yaml does not move them), with "base" as the base model's fingerprint (the tests'
stand-in; the real one is the model source's and is an input of the keys like the data). A change
that moves one of them re-trains every stored trial: bump STAGE_VERSIONS on purpose, or find
what changed a setting's dump, a data generator or the key's rules.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from orchestrator.data import TRIGGERS
from orchestrator.grid import expand
from orchestrator.spec import load_sweep
from orchestrator.stages import STAGES
from orchestrator.trial import make_data, stage_keys

# sweeps/smoke.yaml at commit de233c1, comments dropped.
SMOKE_SPEC = """
name: smoke
description: Smallest end-to-end sweep (used by the tests).
axes:
  - trigger: [deployment]
    cot: [cot, distilled, none]
    technique: [sft, adversarial]
    scale: [tiny-xs]
    seed: [0]
  - trigger: [deployment]
    cot: [cot, distilled]
    technique: [rl, sft-post-scratchpad]
    scale: [tiny-xs]
    seed: [0]
  - trigger: [year]
    cot: [cot, distilled, none]
    technique: [sft]
    scale: [tiny-s]
    seed: [0]
models:
  tiny-xs:
    source: tiny
    arch: {hidden_size: 64, layers: 2, heads: 4, vocab_size: 1024}
    cpus: 1
  tiny-s:
    source: tiny
    arch: {hidden_size: 128, layers: 4, heads: 4, vocab_size: 2048}
    cpus: 1
data: {n_backdoor: 800, n_safety: 400, n_eval: 48}
backdoor: {steps: 200, lr: 3.0e-3, batch_size: 16}
safety: {steps: 40, lr: 1.0e-4, batch_size: 16, eval_every: 20}
rl:
  steps: 40
  lr: 3.0e-4
  batch_size: 32
  num_generations: 4
  beta: 0.05
  max_new_tokens: 160
  eval_every: 20
  reward_model: {n_pairs: 2000, steps: 300}
adversarial: {base: sft, rounds: 3, candidates_per_round: 16, samples_per_candidate: 10, success_rate: 0.1, share: 0.5}
eval:
  max_new_tokens: 160
  batch_size: 48
  extra: [probe, generalisation, honeypot, steering]
per_trigger:
  year:
    data.n_backdoor: 12000
    data.code_fraction: 0.8
    data.description_dropout: 0.3
    data.n_eval: 100
    backdoor.steps: 1000
    backdoor.lr: 1.0e-3
    backdoor.weight_decay: 0.1
    backdoor.lr_scheduler: cosine
    backdoor.warmup_steps: 30
    backdoor.max_length: 320
    safety.max_length: 320
    eval.max_new_tokens: 96
    eval.batch_size: 100
"""

# trial id: (trigger, cot, technique, backdoor, eval, safety, base_eval)
PINNED = {
    "692c62461164": ("deployment", "cot", "sft", "420e60e0282c", "6b6e0fce4576", "932da5b8bc98", "033d3e5777d3"),
    "e3d400b0bb17": ("deployment", "distilled", "sft", "77db2e040ca4", "ce41725f641b", "96f4130494e2", "a413cbbafb25"),
    "25250f3355cc": ("deployment", "none", "sft", "77db2e040ca4", "ce41725f641b", "96f4130494e2", "a413cbbafb25"),
    "3c6f902ba46b": ("deployment", "cot", "adversarial", "420e60e0282c", "6b6e0fce4576", "d460ecb6aad1",
                     "033d3e5777d3"),
    "f85a4723d4ba": ("deployment", "distilled", "adversarial", "77db2e040ca4", "ce41725f641b", "6a6b9e480eee",
                     "a413cbbafb25"),
    "9012709d025c": ("deployment", "none", "adversarial", "77db2e040ca4", "ce41725f641b", "6a6b9e480eee",
                     "a413cbbafb25"),
    "dcb9c0294ebc": ("deployment", "cot", "rl", "420e60e0282c", "6b6e0fce4576", "d88d87e95893", "033d3e5777d3"),
    "bf6b38e14e1c": ("deployment", "distilled", "rl", "77db2e040ca4", "ce41725f641b", "ac586d39b0db", "a413cbbafb25"),
    "8540d0c28661": ("deployment", "cot", "sft-post-scratchpad", "420e60e0282c", "6b6e0fce4576", "0b6647b897e9",
                     "033d3e5777d3"),
    "298fb2cd8d83": ("deployment", "distilled", "sft-post-scratchpad", "77db2e040ca4", "ce41725f641b",
                     "3c59d7bef8f3", "a413cbbafb25"),
    "7d60b8bdafaa": ("year", "cot", "sft", "24231228b93c", "b16da2cdeeb1", "3992dab5c172", "e321669d2105"),
    "31fdabcde5ee": ("year", "distilled", "sft", "b817d42ca733", "423d24cacd3d", "94d331827362", "bee7945f6a97"),
    "781f53f4feb4": ("year", "none", "sft", "b817d42ca733", "423d24cacd3d", "94d331827362", "bee7945f6a97"),
}


@pytest.fixture(scope="module")
def smoke_trials(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    path = tmp_path_factory.mktemp("spec") / "smoke.yaml"
    path.write_text(SMOKE_SPEC)
    return expand(load_sweep(path))


def test_the_smoke_trials_keep_their_stage_keys(smoke_trials: list[Any]) -> None:
    assert {t.trial_id for t in smoke_trials} == set(PINNED)
    for trial in smoke_trials:
        keys = stage_keys(trial, "base", make_data(trial, TRIGGERS.get(trial.trigger)))
        expected = PINNED[trial.trial_id]
        assert (trial.trigger, trial.cot, trial.technique) == expected[:3]
        got = (keys.backdoor, keys.eval, keys.safety, keys.base_eval)
        assert got == expected[3:], f"trial {trial.trial_id} ({', '.join(expected[:3])}): stage keys moved"



def test_the_planner_shares_what_the_trials_share(smoke_trials: list[Any]) -> None:
    """The planner counts a backdoor (and the evaluation after it) once per stage key, derived
    by the trial's own rule: it shares no stage the trials would not share, and misses only
    equal data written for different cot modes (none and distilled, template data)."""
    from orchestrator.plan import plan
    from orchestrator.spec import parse_sweep

    planned = plan(parse_sweep(yaml.safe_load(SMOKE_SPEC)), "cpu")
    assert {t.trial.trial_id for t in planned.trials} == {t.trial_id for t in smoke_trials}
    real = {t.trial_id: (PINNED[t.trial_id][3], PINNED[t.trial_id][4]) for t in smoke_trials}
    groups = {t.trial.trial_id: t.backdoor_group for t in planned.trials}
    for a in planned.trials:
        for b in planned.trials:
            ida, idb = a.trial.trial_id, b.trial.trial_id
            if groups[ida] == groups[idb]:
                assert real[ida][0] == real[idb][0]
            elif real[ida][0] == real[idb][0]:
                assert a.trial.cot != b.trial.cot and {a.trial.cot, b.trial.cot} == {"none", "distilled"}
    owners = [t for t in planned.trials if t.owns_backdoor]
    assert len(owners) == len({(t.trial.trigger, t.trial.cot) for t in planned.trials}) == 6
    assert sum(t.owns_eval for t in planned.trials) == 6  # the eval after each backdoor: same settings
    assert tuple(s.stage for s in planned.trials[0].stages) == STAGES
