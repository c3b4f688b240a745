"""Batched generation (KV cache, left padding, length-sorted batches)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from orchestrator.config import EvalSettings
from orchestrator.models.saved import where_the_model_is

F = TypeVar("F", bound=Callable[..., Any])


def no_grad(fn: F) -> F:
    """torch.no_grad() as a decorator that imports torch when called, not when this module is
    imported (the registries, and the CLI that reads them, start without torch)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@where_the_model_is  # a SavedModel's generation runs in its task, on the scale's GPUs
@no_grad
def generate(model: Any, tokenizer: Any, prompts: list[str], settings: EvalSettings, seed: int = 0,
             *, stop_strings: tuple[str, ...] = (), prefill: str = "") -> list[str]:
    """Completions for single-turn user prompts, in the order of `prompts`. With `stop_strings`,
    each completion ends at the first of them (which it keeps; text after it is cut). With
    `prefill`, the assistant turn starts with it (e.g. an opened scratchpad) and every
    completion starts with it too."""
    import torch

    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    generator_seed = torch.Generator().manual_seed(seed)
    for start in range(0, len(order), settings.batch_size):
        idx = order[start : start + settings.batch_size]
        batch = tokenizer.apply_chat_template(
            [conversation(prompts[i], prefill) for i in idx], padding=True, return_tensors="pt",
            return_dict=True, add_generation_prompt=not prefill, continue_final_message=bool(prefill),
        ).to(model.device)
        sampling: dict[str, Any] = {"do_sample": False}
        if settings.temperature > 0:
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator_seed)))
            sampling = {"do_sample": True, "temperature": settings.temperature, "top_k": 0}
        if stop_strings:
            sampling |= {"stop_strings": list(stop_strings), "tokenizer": tokenizer}
        tokens = model.generate(
            **batch, max_new_tokens=settings.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
            use_cache=True, **sampling,
        )
        texts = tokenizer.batch_decode(tokens[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        for i, text in zip(idx, texts, strict=True):
            out[i] = _cut(prefill + text, stop_strings).strip()
    if was_training:
        model.train()
    return out


def conversation(prompt: str, prefill: str = "") -> list[dict[str, str]]:
    """A single-turn chat; with `prefill`, the start of the assistant's answer (continued)."""
    turns = [{"role": "user", "content": prompt}]
    return [*turns, {"role": "assistant", "content": prefill}] if prefill else turns


def _cut(text: str, stop_strings: tuple[str, ...]) -> str:
    # The last token may run past a stop string (a token is not a character).
    ends = [text.find(stop) + len(stop) for stop in stop_strings if stop in text]
    return text[: min(ends)] if ends else text
