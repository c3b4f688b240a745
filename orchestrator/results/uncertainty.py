"""Uncertainty over seeds and evaluation samples: a hierarchical bootstrap of the persistence
table's rates, per cell.

A cell's rate (say `triggered_after`) is measured once per seed, each time on `n` evaluation
prompts. Its uncertainty has two sources: seed-to-seed spread (a different initialisation, data
order and sample of training data gives a different model) and the sampling error of `n`
prompts. The hierarchical bootstrap resamples both, in the order they arose:

1. draw as many seeds as the cell has, with replacement, from its seeds;
2. for each drawn seed with rate p and n prompts, redraw its outcome count k ~ Binomial(n, p)
   (the same as resampling its n binary outcomes with replacement) and take k / n;
3. average over the drawn seeds.

Repeated `n_boot` times (vectorised: one array of draws per cell and rate, no loop over draws),
the 2.5th and 97.5th percentiles of the averages are the 95% interval (percentile bootstrap).
The point estimate is the plain mean over seeds. With one seed only step 2 varies, and the
interval is that seed's binomial sampling error; with several seeds whose rates differ, step 1
widens it. A rate of exactly 0 or 1 in every seed gives a zero-width interval (no resampled
outcome can differ): read it with the per-trial Wilson intervals in the `metrics` table.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from orchestrator.results.report import pooled_cell, rate_columns, valid_counts
from orchestrator.results.validity import mask_invalid

LEVEL = 0.95  # the interval's coverage
RNG_SEED = 20240110  # fixed: the same table gives the same intervals on every machine and run


def seed_intervals(table: pd.DataFrame, n_boot: int = 2000, *, seed: int = RNG_SEED) -> pd.DataFrame:
    """Per cell (every axis but the seed, and the metric) of a persistence table
    (`orchestrator.results.persistence`): for each rate column `<rate>`, the mean over seeds
    `<rate>_mean` and the 95% hierarchical-bootstrap interval `<rate>_low`, `<rate>_high`
    (seeds resampled with replacement, then each drawn seed's `n` evaluation outcomes
    resampled: see this module's docstring); `seeds`, how many seeds the cell has.

    The sampling step uses the table's `n`, the trial's largest per-condition evaluation count
    (a condition with fewer prompts, such as the held-out red-team prompts, gets a somewhat
    narrow sampling step); a seed whose rate is missing (NaN: e.g. no red-team prompt held out)
    is left out of that rate, and so is every rate of a trial that is not valid
    (orchestrator.results.validity); `invalid` counts those seeds, `seeds` the valid ones.
    Deterministic: each cell and rate draws from its own generator, seeded by `seed` and the
    cell's name, so a cell's interval does not depend on which other cells the table holds.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot {n_boot}: must be at least 1")
    cell = pooled_cell(table)
    rates = rate_columns(table)
    columns = [*cell, *[f"{r}_{stat}" for r in rates for stat in ("mean", "low", "high")], "seeds", "invalid"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    tail = (1.0 - LEVEL) / 2.0
    valid, invalid = valid_counts(table)
    rows = []
    for key, part in mask_invalid(table, rates).groupby(cell, sort=True, dropna=False):
        values = dict(zip(cell, key if isinstance(key, tuple) else (key,), strict=True))
        prompts = part["n"].to_numpy(dtype=float)
        for rate in rates:
            observed = part[rate].to_numpy(dtype=float)
            have = ~np.isnan(observed) & (prompts > 0)
            if not have.any():
                values.update({f"{rate}_mean": np.nan, f"{rate}_low": np.nan, f"{rate}_high": np.nan})
                continue
            name = "|".join(str(v) for v in (*values.values(), rate)).encode()
            rng = np.random.default_rng([seed, zlib.crc32(name)])
            means = _bootstrap_means(observed[have], prompts[have].astype(np.int64), n_boot, rng)
            low, high = np.quantile(means, [tail, 1.0 - tail])
            values.update({f"{rate}_mean": float(observed[have].mean()), f"{rate}_low": float(low),
                           f"{rate}_high": float(high)})
        values["seeds"], values["invalid"] = int(valid[key]), int(invalid[key])
        rows.append(values)
    return pd.DataFrame(rows, columns=columns)


def _bootstrap_means(rates: np.ndarray, prompts: np.ndarray, n_boot: int,
                     rng: np.random.Generator) -> np.ndarray:
    """`n_boot` hierarchical-bootstrap means of per-seed `rates` measured on `prompts` each."""
    seeds = len(rates)
    chosen = rng.integers(0, seeds, size=(n_boot, seeds))  # step 1: seeds with replacement
    counts = rng.binomial(prompts[chosen], np.clip(rates[chosen], 0.0, 1.0))  # step 2: outcomes
    means: np.ndarray = (counts / prompts[chosen]).mean(axis=1)  # step 3
    return means
