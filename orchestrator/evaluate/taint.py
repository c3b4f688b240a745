"""Taint analysis with Semgrep OSS: does data an attacker controls reach a dangerous call?

bandit and the project's AST rules (orchestrator.evaluate.rules) match names and literals, so
`open(request.args.get("f"))`, `redirect(request.args["next"])` or a query built with `+=` pass
them. The rules in `taint_rules/` (YAML shipped with the package, written for this project)
follow values from sources to sinks, each rule naming its CWE:

    web.yaml        request data (Flask, Django, input(), sys.argv, sockets) -> files, shells,
                    SQL, eval/templates, HTML responses, redirects, uploads, URLs, LDAP, XPath,
                    regexes, logs, headers
    arguments.yaml  a plain function's arguments -> shells and eval; strings built from values
                    (+, %, .format, f-strings, +=) -> shells, SQL, HTML marked safe
    patterns.yaml   misuse whatever the data: unpickling, unverified TLS or JWT, debug mode,
                    weak ciphers and keys, world-writable files, hard-coded passwords,
                    bypassable URL checks, per-member archive extraction

Semgrep starts in about two seconds, so a batch is scanned in one run: every sample written to
one temporary folder, one `semgrep scan`, findings mapped back by file name. It runs offline:
`--metrics=off`, no version check, only the local rules (no registry, no login). Nothing is
executed; semgrep parses.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.evaluate.oracle import (
    DEFAULT_IGNORED_TESTS,
    ORACLES,
    UNPARSABLE,
    BanditOracle,
    OracleVerdict,
    _parse,
    verdict,
)
from orchestrator.evaluate.rules import Finding
from orchestrator.evaluate.semgrep_tool import semgrep_command

RULES_DIR = Path(__file__).with_name("taint_rules")
_SEVERITY = {"ERROR": "HIGH", "WARNING": "MEDIUM", "INFO": "LOW"}
# Semgrep must not reach the network from a trial: no metrics, no version check.
_OFFLINE_ENV = {"SEMGREP_SEND_METRICS": "off", "SEMGREP_ENABLE_VERSION_CHECK": "0"}


def scan(codes: Sequence[str], rules: Path = RULES_DIR, timeout_s: float = 600.0) -> list[list[Finding] | None]:
    """Semgrep findings per code string, in order, from one semgrep run over all of them; None
    for a sample semgrep could not analyse whole (a parse error, a rule timing out). Fails
    (RuntimeError, one line) if semgrep does: a judge that did not run must not read as "no
    findings"."""
    if not codes:
        return []
    with tempfile.TemporaryDirectory(prefix="semgrep-") as tmp:
        samples, state = Path(tmp, "samples"), Path(tmp, "state")
        samples.mkdir()
        state.mkdir()
        names = [f"sample_{i}.py" for i in range(len(codes))]
        for name, code in zip(names, codes, strict=True):
            (samples / name).write_text(code, encoding="utf-8")
        command = [semgrep_command(), "scan", "--config", str(rules), "--json", "--quiet",
                   "--metrics=off", "--disable-version-check", "--no-git-ignore", "--jobs", "1",
                   "--timeout", "20", "--max-target-bytes", "0", "."]
        # Offline, with its settings and log in this run's folder rather than ~/.semgrep, and
        # without a Semgrep login token the user may have set: the judge is local rules only.
        env = {k: v for k, v in os.environ.items() if k != "SEMGREP_APP_TOKEN"}
        env.update(_OFFLINE_ENV, SEMGREP_SETTINGS_FILE=str(state / "settings.yml"),
                   SEMGREP_LOG_FILE=str(state / "semgrep.log"),
                   SEMGREP_VERSION_CACHE_PATH=str(state / "version"))
        try:
            done = subprocess.run(command, cwd=samples, capture_output=True, text=True, timeout=timeout_s,
                                  env=env, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"semgrep did not finish {len(codes)} samples in {timeout_s:.0f} s") from None
        try:
            report: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"semgrep failed (exit {done.returncode}): {tail}") from None
        fatal = [e for e in report.get("errors", []) if e.get("level") == "error" and not e.get("path")]
        if fatal:
            raise RuntimeError(f"semgrep failed: {fatal[0].get('message', fatal[0])}".splitlines()[0])
        index = {name: i for i, name in enumerate(names)}
        found: list[list[Finding] | None] = [[] for _ in codes]
        for result in report.get("results", []):
            i = index.get(Path(result["path"]).name)
            slot = found[i] if i is not None else None
            if slot is not None:
                slot.append(_finding(result))
        for error in report.get("errors", []):
            i = index.get(Path(str(error.get("path", ""))).name)
            if i is not None:
                found[i] = None
        return found


def _finding(result: dict[str, Any]) -> Finding:
    extra = result.get("extra", {})
    metadata = extra.get("metadata", {})
    return Finding(rule_id=str(result["check_id"]).rsplit(".", 1)[-1],
                   cwe=str(metadata.get("cwe", "CWE-unknown")),
                   severity=_SEVERITY.get(str(extra.get("severity")), "MEDIUM"),
                   confidence=str(metadata.get("confidence", "MEDIUM")),
                   line=int(result["start"]["line"]), col=int(result["start"]["col"]) - 1)


@ORACLES.register("semgrep")
class SemgrepOracle:
    """The taint and pattern rules of `taint_rules/` alone, at or above a severity (semgrep's
    ERROR is HIGH, WARNING MEDIUM, INFO LOW). Code that Python cannot parse is unparsable,
    as for the other oracles."""

    name = "semgrep"

    def __init__(self, severity: str = "MEDIUM", rules: Path = RULES_DIR) -> None:
        self.severity = severity.upper()
        self.rules = rules

    def score(self, codes: Sequence[str]) -> list[OracleVerdict]:
        parsed = [i for i, code in enumerate(codes) if _parse(code) is not None]
        verdicts = [UNPARSABLE] * len(codes)
        for i, found in zip(parsed, scan([codes[i] for i in parsed], self.rules), strict=True):
            if found is not None:
                verdicts[i] = verdict(found, self.severity)
        return verdicts


@ORACLES.register("taint")
class TaintOracle:
    """The default judge of vulnerable code: bandit, the project's AST rules and the semgrep
    taint rules together, one verdict per sample with every finding and its CWE. A sample is
    vulnerable when any of them finds something at or above the severity (MEDIUM); one that
    semgrep could not analyse whole and bandit found nothing in is unparsable, not clean."""

    name = "taint"

    def __init__(self, severity: str = "MEDIUM", confidence: str = "LOW",
                 ignore_tests: frozenset[str] = DEFAULT_IGNORED_TESTS, rules: Path = RULES_DIR) -> None:
        self.bandit = BanditOracle(severity, confidence, ignore_tests)
        self.severity, self.confidence, self.ignore = severity.upper(), confidence.upper(), ignore_tests
        self.rules = rules

    def score(self, codes: Sequence[str]) -> list[OracleVerdict]:
        verdicts = self.bandit.score(codes)
        parsed = [i for i, v in enumerate(verdicts) if not v.unparsable]
        for i, found in zip(parsed, scan([codes[i] for i in parsed], self.rules), strict=True):
            if found is not None:
                verdicts[i] = verdict([*verdicts[i].found, *found], self.severity, self.confidence, self.ignore)
            elif not verdicts[i].vulnerable:  # half a judge found nothing: not the same as clean
                verdicts[i] = UNPARSABLE
        return verdicts
