"""Read a sweep spec (YAML) into a validated `SweepSpec`, or refuse it with one message naming
the file, the field and the bad value. Nothing runs before this has passed.

This is the one module that checks names against the registries (triggers, techniques, model
sources): it sits above them, while `orchestrator.config` stays plain typed settings.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.config import ConfigError, SweepSpec, apply_overrides, resolve_trial
from orchestrator.data import TRIGGERS
from orchestrator.data.jsonl import DataError, read_jsonl
from orchestrator.grid import cells
from orchestrator.models import MODEL_SOURCES
from orchestrator.registry import Registry
from orchestrator.safety import TECHNIQUES

DATA_FILE_FIELDS = ("backdoor_path", "hhh_path")


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec file; BYO data files are resolved and checked line by line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: sweep spec not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    spec = parse_sweep(raw, str(path))
    return _resolve_data_files(spec, path)


def parse_sweep(raw: Any, source: str = "<spec>") -> SweepSpec:
    """Validate a parsed YAML mapping into a SweepSpec, or raise ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a sweep spec must be a YAML mapping, got {type(raw).__name__}")
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as err:
        message = _format_validation(source, err)
        if isinstance(raw.get("axes"), dict):  # one grid: name its fields as written, axes.seed
            message = message.replace("field `axes.0.", "field `axes.").replace("field `axes.0`", "field `axes`")
        raise ConfigError(message) from None
    import_plugins(spec, source)
    _check_names(spec, source)
    for cell in _extra_axis_values(spec):
        for key, value in cell.items():
            _check_override(spec, key, value, f"{source}: field `axes.{key}`")
    for field, table, names in (("per_trigger", spec.per_trigger, spec.values("trigger")),
                                ("per_scale", spec.per_scale, tuple(spec.models))):
        for name, overrides in table.items():
            if name not in names:
                raise ConfigError(f"{source}: field `{field}.{name}`: {name!r} is not one of "
                                  f"{', '.join(names)}")
            for key, value in overrides.items():
                _check_override(spec, key, value, f"{source}: field `{field}.{name}.{key}`")
    _check_batches(spec, source)
    return spec


def _check_batches(spec: SweepSpec, source: str) -> None:
    """Every training section of every trial of a multi-worker scale splits into equal
    per-worker micro-batches (the global batch stays what the spec says)."""
    seen: set[tuple[str, str, int, int]] = set()
    for cell in cells(spec):
        trial = resolve_trial(spec, cell)
        training = trial.model.training
        if not training.distributed:
            continue
        uses_rl = trial.technique == "rl" or (trial.technique == "adversarial" and trial.adversarial.base == "rl")
        if uses_rl:
            try:
                micro, _ = training.split(trial.rl.batch_size, 1)
            except ValueError as err:
                raise ConfigError(f"{source}: field `models.{trial.scale}.training`: {err} "
                                  "(`rl.batch_size`)") from None
            if (micro * training.workers) % trial.rl.num_generations:  # TRL's rule for one step
                raise ConfigError(
                    f"{source}: field `models.{trial.scale}.training`: {training.workers} workers x "
                    f"{micro} completions per step is not a multiple of rl.num_generations "
                    f"{trial.rl.num_generations}")
        sections = [("backdoor", trial.backdoor.batch_size, trial.backdoor.grad_accum),
                    ("safety", trial.safety.batch_size, trial.safety.grad_accum)]
        for section, batch, accum in sections:
            if (trial.scale, section, batch, accum) in seen:
                continue
            seen.add((trial.scale, section, batch, accum))
            try:
                training.split(batch, accum)
            except ValueError as err:
                raise ConfigError(f"{source}: field `models.{trial.scale}.training`: {err} "
                                  f"(`{section}.batch_size` of trigger {trial.trigger!r})") from None


def import_plugins(spec: SweepSpec, source: str = "<spec>") -> None:
    """Import the spec's `plugins` modules, so that what they register can be named."""
    for index, module in enumerate(spec.plugins):
        try:
            importlib.import_module(module)
        except Exception as err:  # any failure to import is the spec's problem, said once
            raise ConfigError(f"{source}: field `plugins.{index}`: cannot import {module!r}: "
                              f"{type(err).__name__}: {err}") from None


def _check_override(spec: SweepSpec, key: str, value: Any, where: str) -> None:
    try:
        apply_overrides(spec, {key: value})
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _format_validation(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("extra",))
        field = loc or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] != "missing" and not isinstance(e.get("input"), dict | list):
            msg += f" (got {e.get('input')!r})"  # echo the bad value, e.g. cot: [distiled]
        lines.append(f"{source}: field `{field}`: {msg}")
    return "\n".join(lines)


def _check_names(spec: SweepSpec, source: str) -> None:
    checks: list[tuple[str, tuple[str, ...], Registry[Any]]] = [
        ("axes.trigger", spec.values("trigger"), TRIGGERS),
        ("axes.technique", spec.values("technique"), TECHNIQUES),
    ]
    for field, values, registry in checks:
        for value in values:
            if value not in registry:
                raise ConfigError(f"{source}: field `{field}`: {registry.unknown(value)}")
    for scale in spec.values("scale"):
        if scale not in spec.models:
            raise ConfigError(
                f"{source}: field `axes.scale`: unknown scale {scale!r}; "
                f"the spec's `models` ladder has: {', '.join(sorted(spec.models)) or '(none)'}"
            )
    for name, model in spec.models.items():
        if model.source not in MODEL_SOURCES:
            raise ConfigError(f"{source}: field `models.{name}.source`: {MODEL_SOURCES.unknown(model.source)}")
        problem = MODEL_SOURCES.get(model.source).check(model)
        if problem:
            raise ConfigError(f"{source}: field `models.{name}`: {problem}")


def _extra_axis_values(spec: SweepSpec) -> list[dict[str, Any]]:
    return [{key: value} for grid in spec.grids for key, values in grid.extra.items() for value in values]


def _resolve_data_files(spec: SweepSpec, path: Path) -> SweepSpec:
    """Make data paths absolute (relative to the spec) and check every line before any run."""
    update = {}
    for name in DATA_FILE_FIELDS:
        value = getattr(spec.data, name)
        if value is None:
            continue
        resolved = (path.parent / value).resolve()
        try:
            read_jsonl(resolved, ("prompt", "completion"))
        except DataError as err:
            raise ConfigError(f"{path}: field `data.{name}`: {err}") from None
        update[name] = str(resolved)
    if not update:
        return spec
    return spec.model_copy(update={"data": spec.data.model_copy(update=update)})
