#!/bin/bash
# Python and the workshop's libraries in one virtual environment, pinned by
# requirements.txt, with Jupyter from the same environment.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

apt-get install -y -q --no-install-recommends python3 python3-venv python3-dev build-essential git
python3 -m venv /opt/cohort/venv
/opt/cohort/venv/bin/pip install --no-cache-dir --upgrade pip wheel
/opt/cohort/venv/bin/pip install --no-cache-dir -r /tmp/cohort/requirements.txt
# spaCy's pipelines used in the workshop, fetched now, not during class.
/opt/cohort/venv/bin/python -m spacy download en_core_web_sm
/opt/cohort/venv/bin/python -m ipykernel install --prefix /opt/cohort/venv --name python3 --display-name "Python 3 (cohort)"
