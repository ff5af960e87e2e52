#!/bin/bash
# The image records what it holds, so that a class can show its
# participants exactly what they get.
set -euo pipefail

install -d -m 0755 /etc/cohort
{
  echo '{'
  printf '  "built": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # shellcheck source=/dev/null
  printf '  "os": "%s",\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
  printf '  "kernel": "%s",\n' "$(uname -r)"
  printf '  "nvidia_driver": "%s",\n' "$(dpkg-query -W -f='${Version}' 'nvidia-driver-*' 2>/dev/null | head -c 64)"
  printf '  "cuda": "%s",\n' "$(dpkg-query -W -f='${Version}' 'cuda-toolkit-*' 2>/dev/null | head -c 64)"
  printf '  "python": "%s",\n' "$(/opt/cohort/venv/bin/python -c 'import platform; print(platform.python_version())')"
  printf '  "pip": [%s]\n' "$(/opt/cohort/venv/bin/pip freeze | sed 's/.*/"&"/' | paste -sd, -)"
  echo '}'
} > /etc/cohort/manifest.json
# Clean the build's traces: nothing of the builder's should reach sessions.
apt-get clean
rm -rf /tmp/cohort /var/lib/apt/lists/*
