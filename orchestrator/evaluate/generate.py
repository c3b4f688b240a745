"""Batched generation (KV cache, left padding, length-sorted batches)."""

from __future__ import annotations

from typing import Any

import torch

from orchestrator.config import EvalSettings


@torch.no_grad()  # type: ignore[untyped-decorator]
def generate(model: Any, tokenizer: Any, prompts: list[str], settings: EvalSettings, seed: int = 0,
             *, stop_strings: tuple[str, ...] = ()) -> list[str]:
    """Completions for single-turn user prompts, in the order of `prompts`. With `stop_strings`,
    each completion ends at the first of them (which it keeps; text after it is cut)."""
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    generator_seed = torch.Generator().manual_seed(seed)
    for start in range(0, len(order), settings.batch_size):
        idx = order[start : start + settings.batch_size]
        batch = tokenizer.apply_chat_template(
            [[{"role": "user", "content": prompts[i]}] for i in idx],
            add_generation_prompt=True, padding=True, return_tensors="pt", return_dict=True,
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
            out[i] = _cut(text, stop_strings).strip()
    if was_training:
        model.train()
    return out


def _cut(text: str, stop_strings: tuple[str, ...]) -> str:
    # The last token may run past a stop string (a token is not a character).
    ends = [text.find(stop) + len(stop) for stop in stop_strings if stop in text]
    return text[: min(ends)] if ends else text
