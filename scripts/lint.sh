#!/usr/bin/env bash
# `npm run lint`: formatting, static analysis and type checking. Exits 0 on a
# clean tree and non-zero on any formatting error, Misti finding, TS error or
# ESLint finding.
#
#   1. tact-fmt --check contracts/        Tact's official code style
#   2. Misti 0.9.0 over tact.config.json  every built-in detector (misti.config.json),
#                                         minimum severity "info", findings fail
#   3. tsc --noEmit -p .                  every TypeScript file in tsconfig.json (needs build/)
#   4. eslint .                           typescript-eslint, type-aware (eslint.config.mjs):
#                                         floating promises, awaits of non-promises,
#                                         non-exhaustive switches, ...; findings fail
#
# Soufflé: three Misti detectors (DivideBeforeMultiply, ReadOnlyVariables,
# UnboundLoop) run on the Soufflé Datalog engine, which is not installed here
# (Debian apt does not package it). They are skipped with --no-souffle rather
# than failing the lint. Where `souffle` is on PATH, MISTI_SOUFFLE=1 runs them.
#
# Accepted findings are suppressed in the contracts themselves with
# `// @misti:suppress <Detector>` on the line before, each with its reason.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Never let npx offer to download a missing tool (CI has no stdin).
tool() { npx --no -- "$@"; }

step() { printf '\n==> %s\n' "$*"; }

step "tact-fmt --check contracts/"
if ! tool tact-fmt --check contracts/; then
    echo "lint: Tact formatting differs; run: npx tact-fmt --write contracts/" >&2
    exit 1
fi

step "misti (config misti.config.json) tact.config.json"
misti_flags=(--config misti.config.json --min-severity info)
if [[ "${MISTI_SOUFFLE:-0}" == "1" ]] && command -v souffle >/dev/null 2>&1; then
    echo "Soufflé found: running the Soufflé detectors too."
else
    misti_flags+=(--no-souffle)
    echo "Soufflé not used: DivideBeforeMultiply, ReadOnlyVariables and UnboundLoop are skipped."
fi
if [[ ! -t 1 ]]; then
    misti_flags+=(--no-colors)
fi
if ! tool misti "${misti_flags[@]}" tact.config.json; then
    cat >&2 <<'EOF'
lint: Misti reported findings (above). Fix real problems in contracts/. For a
false positive or an accepted design choice, put `// @misti:suppress <Detector>`
on the line before it, with a one-line reason above.
EOF
    exit 1
fi

step "tsc --noEmit -p ."
if [[ ! -d build/Chrysalis ]]; then
    echo "build/Chrysalis is missing (wrappers import it): building first."
    tool blueprint build --all
fi
tool tsc --noEmit -p .

step "eslint . (config eslint.config.mjs)"
if ! tool eslint --max-warnings 0 .; then
    cat >&2 <<'EOF'
lint: ESLint reported findings (above). Fix the code; for a deliberate
exception, put `// eslint-disable-next-line <rule> -- <reason>` on the line before.
EOF
    exit 1
fi

printf '\nlint: OK\n'
