#!/usr/bin/env bash
# The README's test command: install (scripts/install.sh), check the import contracts
# (lint-imports), then run the whole test suite:
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
# the layering (.importlinter: layers, the public face, vireid never imports pipeline, no
# cycles): a broken contract fails the run before any test
"$py" -c 'import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())'
# one run: the default tests and the end-to-end tests marked slow (plain `pytest` skips those)
"$py" -m pytest -q -m "slow or not slow" "$@"
