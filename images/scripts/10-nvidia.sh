#!/bin/bash
# The NVIDIA driver and CUDA, installed at build time so that a session's
# boot only loads the driver (no DKMS build, no download at boot).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

: "${NVIDIA_DRIVER_BRANCH:=550}"
: "${CUDA_TOOLKIT:=cuda-toolkit-12-4}"

apt-get update -q
apt-get install -y -q --no-install-recommends ca-certificates curl gnupg "linux-headers-$(uname -r)"
curl -fsSL -o /tmp/cuda-keyring.deb \
  https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2204/x86_64/cuda-keyring_1.1-1_all.deb
dpkg -i /tmp/cuda-keyring.deb
apt-get update -q
apt-get install -y -q --no-install-recommends "cuda-drivers-${NVIDIA_DRIVER_BRANCH}" "${CUDA_TOOLKIT}"
# Keep the driver loaded between uses: the first CUDA call of a session
# is then fast.
systemctl enable nvidia-persistenced
