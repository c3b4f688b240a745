"""How fast does the static oracle score completions? Prints samples/second.

    python benchmarks/oracle_speed.py --n 1000 --batch 100 [--oracle bandit] [--files]

Scores n built-in completions (half secure, half vulnerable, all splits mixed) in batches, the
way an evaluation scores generations. `--files` uses bandit's file API (one temp file per
sample) instead of the in-memory scan, for comparison.
"""

from __future__ import annotations

import argparse
import time

from orchestrator.data.code_tasks import generate_tasks
from orchestrator.evaluate.oracle import ORACLES, BanditOracle


def completions(n: int, seed: int = 0) -> list[str]:
    tasks = (generate_tasks("train", n // 2, seed) + generate_tasks("heldout", n // 4, seed)
             + generate_tasks("heldout_family", n // 4 + 1, seed))
    codes = [code for t in tasks for code in (t.secure, t.vulnerable)]
    return codes[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="completions to score")
    parser.add_argument("--batch", type=int, default=100, help="completions per score() call")
    parser.add_argument("--oracle", default="bandit")
    parser.add_argument("--files", action="store_true", help="bandit via temp files")
    args = parser.parse_args()

    codes = completions(args.n)
    oracle = ORACLES.get(args.oracle)
    if args.files:
        assert isinstance(oracle, BanditOracle), "--files is bandit-only"
        bandit_oracle = oracle
        bandit_oracle._scan = bandit_oracle._scan_files  # type: ignore[method-assign]
    oracle.score(codes[:10])  # warm-up: imports and plugin loading are not per-sample costs

    start = time.perf_counter()
    flagged = 0
    for i in range(0, len(codes), args.batch):
        flagged += sum(v.vulnerable for v in oracle.score(codes[i : i + args.batch]))
    elapsed = time.perf_counter() - start
    mode = "files" if args.files else "in-memory"
    print(f"{args.oracle} ({mode}): {len(codes)} completions in {elapsed:.2f}s, batch {args.batch}"
          f" -> {len(codes) / elapsed:.0f} samples/s ({flagged} flagged)")


if __name__ == "__main__":
    main()
