#!/bin/bash
# The participant's account and the session agent that serves their Jupyter.
set -euo pipefail

# A fixed uid: the files on a participant's work disk keep theirs from
# image to image.
id participant >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --uid 2000 participant
install -m 0755 /tmp/cohort/cohort-agent /usr/local/bin/cohort-agent
install -m 0644 /tmp/cohort/cohort-agent.service /etc/systemd/system/cohort-agent.service
install -m 0644 /tmp/cohort/cohort-work.service /etc/systemd/system/cohort-work.service
install -d -m 0755 /etc/cohort/pre-stop.d
# Jupyter serves /var/lib/cohort/work, where the work disk is mounted: its
# parent is root's, so the participant cannot swap the folder for a link.
install -d -m 0755 -o root -g root /var/lib/cohort
install -d -m 0755 -o participant -g participant /var/lib/cohort/work
ln -sfn /var/lib/cohort/work /home/participant/work
systemctl daemon-reload
systemctl enable cohort-work.service cohort-agent.service
