"""Evaluation (issue 17 item 2): answers/s of the evaluator's generation
(orchestrator.evaluate.generate: length-sorted batches, left padding, KV cache) against the same
function one prompt at a time, on the same model, prompts and settings; and the static oracle's
samples/s (orchestrator.evaluate.oracle, bandit scanned in memory) against bandit's public file
API (one temp file per sample), on the same completions."""

from __future__ import annotations

import time

from benchmarks.common import Row, Section, Settings, median, table, timed
from benchmarks.oracle_speed import completions  # the code completions it scores, half vulnerable
from benchmarks.training import base_model
from orchestrator.config import DataSettings, EvalSettings
from orchestrator.data import TRIGGERS
from orchestrator.evaluate.generate import generate
from orchestrator.evaluate.oracle import BanditOracle, VulnerabilityOracle
from orchestrator.evaluate.taint import TaintOracle

TARGET_BATCHED = 8.0  # batched answers/s against one-at-a-time


def prompts(n: int) -> list[str]:
    """`n` evaluation prompts of the deployment trigger, triggered and clean mixed."""
    found = [p.prompt for p in TRIGGERS.get("deployment").eval_prompts(DataSettings(n_eval=(n + 1) // 2), 0)]
    return found[:n]


def oracle_rate(oracle: VulnerabilityOracle, codes: list[str], batch: int) -> float:
    seconds, _ = timed(lambda: [oracle.score(codes[i : i + batch]) for i in range(0, len(codes), batch)])
    return len(codes) / seconds


def file_oracle() -> BanditOracle:
    oracle = BanditOracle()
    oracle._scan = oracle._scan_files  # type: ignore[method-assign]
    return oracle


def run(bench: Settings) -> Section:
    arch = "tiny-xs" if bench.quick else "tiny-s"
    n, new_tokens, batch = (4, 8, 4) if bench.quick else (64, 160, 64)  # the default sweep's eval settings
    model, tokenizer = base_model(arch, bench.work)
    asked = prompts(n)
    batched, single = EvalSettings(max_new_tokens=new_tokens, batch_size=batch), \
        EvalSettings(max_new_tokens=new_tokens, batch_size=1)
    generate(model, tokenizer, asked[:2], batched)  # warm-up
    times: dict[str, list[float]] = {"batched": [], "single": []}
    answers: dict[str, list[str]] = {}
    for _ in range(bench.repeats):
        for label, chosen in (("batched", batched), ("single", single)):
            start = time.perf_counter()
            answers[label] = generate(model, tokenizer, asked, chosen)
            times[label].append(time.perf_counter() - start)
    med = {k: median(v) for k, v in times.items()}
    speedup = med["single"] / med["batched"]
    same = sum(a == b for a, b in zip(answers["batched"], answers["single"], strict=True))
    new = sum(len(tokenizer(a)["input_ids"]) for a in answers["batched"]) / len(asked)

    n_codes, oracle_batch = (20, 10) if bench.quick else (300, 100)
    codes = completions(n_codes)
    memory, files, taint = BanditOracle(), file_oracle(), TaintOracle()
    memory.score(codes[:5]), files.score(codes[:5]), taint.score(codes[:5])  # warm-up: imports, plugins
    rates: dict[str, list[float]] = {"memory": [], "files": [], "taint": []}
    for _ in range(bench.repeats):
        rates["memory"].append(oracle_rate(memory, codes, oracle_batch))
        rates["files"].append(oracle_rate(files, codes, oracle_batch))
        rates["taint"].append(oracle_rate(taint, codes, oracle_batch))  # one semgrep run per batch
    rate = {k: median(v) for k, v in rates.items()}

    section = Section("Evaluation")
    section.rows += [
        Row("evaluation: batched generate vs one prompt at a time (answers/s)", f"{speedup:.1f}x",
            f">= {TARGET_BATCHED:.0f}x", speedup >= TARGET_BATCHED),
        Row("evaluation: oracle in memory vs bandit's file API (samples/s)",
            f"{rate['memory'] / rate['files']:.2f}x"),
        Row("evaluation: taint oracle (bandit + semgrep, the default) vs bandit oracle (samples/s)",
            f"{rate['taint'] / rate['memory']:.3f}x"),
    ]
    section.details += [
        f"Generation: {arch}, {len(asked)} deployment evaluation prompts (triggered and clean), greedy, "
        f"max_new_tokens {new_tokens}, one thread, {bench.repeats} interleaved repeats. The model is "
        f"untrained, so answers run to about the token limit in both modes (mean {new:.0f} tokens, "
        f"re-tokenised): the same work each way; {same}/{len(asked)} answers are identical text "
        "(left padding changes a few greedy choices).",
        "",
        *table(["mode", "seconds (median)", "answers/s"], [
            [f"batched (batch {batch})", f"{med['batched']:.2f}", f"{len(asked) / med['batched']:.1f}"],
            ["one at a time (batch 1)", f"{med['single']:.2f}", f"{len(asked) / med['single']:.1f}"],
        ]),
        "",
        f"Oracle: {len(codes)} code completions (half secure, half vulnerable), score() in batches of "
        f"{oracle_batch}: in memory {rate['memory']:.0f} samples/s, through temp files "
        f"{rate['files']:.0f} samples/s (benchmarks/oracle_speed.py measures the same, alone); the "
        f"default taint oracle (bandit, the rules and one semgrep run per batch) {rate['taint']:.0f} samples/s.",
    ]
    section.data = {"speedup": speedup, "oracle": rate}
    return section

