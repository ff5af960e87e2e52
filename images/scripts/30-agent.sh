#!/bin/bash
# The participant's account and the session agent that serves their Jupyter.
set -euo pipefail

id participant >/dev/null 2>&1 || useradd --create-home --shell /bin/bash participant
install -m 0755 /tmp/cohort/cohort-agent /usr/local/bin/cohort-agent
install -m 0644 /tmp/cohort/cohort-agent.service /etc/systemd/system/cohort-agent.service
install -d -m 0755 /etc/cohort/pre-stop.d
systemctl daemon-reload
systemctl enable cohort-agent.service
