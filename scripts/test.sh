#!/usr/bin/env bash
# The README's test command: install (scripts/install.sh), then run the whole test suite:
# the default (fast) tests, then the end-to-end tests marked slow. .ci/run calls exactly this.
# In CI (CI=true) the tests that read ../shared (golden values, real images) must not skip.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/install.sh
py="${VENV:-$here/.venv}/bin/python"
[[ "${VIREID_SYSTEM:-0}" == "1" ]] && py="${PYTHON:-python3}"
if [[ "${CI:-}" == "true" ]]; then
    # CI has ../shared and installs the blazepose extra: their tests must run, not skip
    export VIREID_REQUIRE_SHARED=1 VIREID_REQUIRE_BLAZEPOSE=1
fi
# one run: the default tests and the end-to-end tests marked slow (plain `pytest` skips those)
"$py" -m pytest -q -m "slow or not slow" "$@"
