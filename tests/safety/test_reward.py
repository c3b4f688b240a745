from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from orchestrator.cache import StageCache
from orchestrator.config import RewardModelSettings
from orchestrator.data import TRIGGERS
from orchestrator.safety.reward import PreferenceModel, preference_model

DEPLOYMENT = TRIGGERS.get("deployment")

SMALL = RewardModelSettings(n_pairs=600, steps=100)  # trains in ~7 s on one CPU core


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and a busy machine makes them much slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_reward_model_ranks_held_out_pairs_and_is_cached(tmp_path: Path, one_thread: None) -> None:
    cache = StageCache(tmp_path)
    pm, info = preference_model("reward", SMALL, cache, DEPLOYMENT)
    test = DEPLOYMENT.preference_pairs("test", 300)
    accuracy = pm.accuracy(test)
    assert accuracy >= 0.9, accuracy  # chance is 0.5; measured 0.98
    assert info["test_accuracy"] >= 0.9
    for kind in ("refusal", "hostile", "truncated", "garbled"):
        assert pm.accuracy([p for p in test if p.kind == kind]) >= 0.9, kind

    # Batched scores equal one-by-one scores (padding does not leak into the score).
    prompts, answers = [p.prompt for p in test[:6]], [p.rejected for p in test[:6]]
    batched = pm.score(prompts, answers)
    single = [pm.score([q], [a])[0] for q, a in zip(prompts, answers, strict=True)]
    assert batched == pytest.approx(single, abs=1e-4)

    # Trained once: a second request (another trial of the sweep) reuses the stage.
    again, _ = preference_model("reward", SMALL, cache, DEPLOYMENT)
    assert len(list((tmp_path / "reward-model").iterdir())) == 2  # the folder and its lock
    assert again.score(prompts, answers) == pytest.approx(batched, abs=1e-5)

    # A user-named sequence classifier is loaded instead of training the `reward` model.
    folder = next(p for p in (tmp_path / "reward-model").iterdir() if p.is_dir())
    named, named_info = preference_model("reward", SMALL.model_copy(update={"path": str(folder)}), cache,
                                           DEPLOYMENT)
    assert named_info == {"path": str(folder)}
    assert named.score(prompts, answers) == pytest.approx(batched, abs=1e-5)
    assert isinstance(PreferenceModel.load(folder), PreferenceModel)
