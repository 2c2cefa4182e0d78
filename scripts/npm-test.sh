#!/bin/sh
# npm test: the build the tests start their apps from (tsc's, and the api's and worker's bundles),
# then the tests, with ESLint,
# dependency-cruiser and the tests' type check on the side (they need only the build, and
# take one core for ~30 s of a run of several minutes). Their output follows the tests'
# summary; npm test fails when any of them fails.
tsc -b || exit $?
node scripts/dist/bundle-apps.js || exit $?
checks_log=$(mktemp)
{ npm run --silent lint && tsc -p tsconfig.test.json; } > "$checks_log" 2>&1 &
checks=$!
vitest run "$@"
tests=$?
wait "$checks"
checked=$?
cat "$checks_log"
rm -f "$checks_log"
if [ "$checked" -ne 0 ]; then echo "npm test: lint or the tests' type check failed (above)" >&2; fi
if [ "$tests" -ne 0 ]; then exit "$tests"; fi
exit "$checked"
