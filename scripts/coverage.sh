#!/usr/bin/env bash
# `npm run coverage`: TVM coverage of every contract from the whole test suite.
#
#   1. blueprint build --all           as `npm test` does: coverage of stale code would mislead
#   2. jest -c jest.coverage.config.ts the whole suite; tests/helpers/coverage.ts records every
#                                      sandbox and writes coverage/raw/<suite>.json
#   3. scripts/coverage.ts             merges the suites per contract: coverage/<Contract>.html,
#                                      coverage/<Contract>.txt and coverage/summary.md (its table printed)
#
# Extra arguments go to jest, e.g. `npm run coverage -- tests/escrow.spec.ts`.
# The report is written even when a test fails; the exit status is then jest's.
# docs/COVERAGE.md explains the figures and every handler or throw not reached.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Never let npx offer to download a missing tool.
tool() { npx --no -- "$@"; }

start=$(date +%s)
echo "==> blueprint build --all"
tool blueprint build --all > build.log 2>&1 || { cat build.log; exit 1; }

echo "==> jest -c jest.coverage.config.ts $*"
rm -rf coverage
status=0
tool jest -c jest.coverage.config.ts "$@" || status=$?

echo "==> scripts/coverage.ts"
tool ts-node --transpile-only scripts/coverage.ts
echo "coverage: reports in coverage/ after $(( $(date +%s) - start )) s"
exit "$status"
