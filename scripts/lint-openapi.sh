#!/usr/bin/env bash
# Lints the contract, docs/openapi.json (`npm run lint:openapi`), three ways:
#   - Spectral with the OpenAPI ruleset (.spectral.yaml: spectral:oas);
#   - Redocly CLI with its recommended rules (redocly.yaml; .redocly.lint-ignore.yaml lists the
#     few locations where a rule meets a deliberate choice of the contract, each saying why);
#   - every `example`, `examples` and `default` against the schema it illustrates
#     (exampleProblems in tests/contract.js, JSON Schema 2020-12 through ajv).
# Any error or warning fails, and is printed; success prints one line. Offline: the linters
# are devDependencies (npm ci) and are told to send nothing (no telemetry, no update check).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true DO_NOT_TRACK=1 SCARF_ANALYTICS=false
DOC=docs/openapi.json
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0

if ! spectral lint "$DOC" --ruleset .spectral.yaml --fail-severity=warn --format=text >"$out/spectral" 2>&1; then
  echo "spectral (.spectral.yaml) on $DOC:"
  cat "$out/spectral"
  echo
  failed=1
fi

# Redocly exits 0 on warnings: its JSON report's totals decide.
redocly lint "$DOC" --config redocly.yaml --format=json >"$out/redocly.json" 2>"$out/redocly.err" || true
if ! redocly=$(node -e '
  const { totals } = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (totals.errors + totals.warnings > 0) process.exit(1);
  console.log(`${totals.ignored} ignored by .redocly.lint-ignore.yaml`);
' "$out/redocly.json" 2>/dev/null); then
  echo "redocly (redocly.yaml) on $DOC:"
  if [ -s "$out/redocly.json" ]; then
    redocly lint "$DOC" --config redocly.yaml --format=stylish 2>&1 | grep -v '^validating\|validated in\|^Woohoo\|^$' || true
  else
    cat "$out/redocly.err"
  fi
  failed=1
fi

if ! node --input-type=module -e '
  import { exampleProblems } from "./tests/contract.js";
  const problems = exampleProblems();
  for (const p of problems) console.log(`  ${p}`);
  process.exit(problems.length ? 1 : 0);
' >"$out/examples" 2>&1; then
  echo "examples that their schema refuses, in $DOC:"
  cat "$out/examples"
  failed=1
fi

if [ "$failed" != 0 ]; then
  echo "lint-openapi: FAILED (fix the generator in src/openapi/, then npm run openapi)"
  exit 1
fi
echo "lint-openapi: $DOC clean (spectral:oas 0 problems; redocly recommended 0 problems, $redocly; every example valid)"
