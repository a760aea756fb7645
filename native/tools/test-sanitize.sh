#!/usr/bin/env bash
# npm run test:sanitize
#
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer into
# build-sanitize/ (build/, the normal build, is left alone), then runs the
# native and codec tests, the fuzzers among them, against it: src/native.ts
# loads the addon from the folder AFFINITYD_NATIVE_BUILD names. Any report of
# either sanitizer ends the process that made it, so the test it ran in
# fails. CI runs it (.ci/run).
#
# An ASan-built addon needs the ASan runtime loaded before anything else in
# the process, and Node is not built with it: the runtime is preloaded
# (LD_PRELOAD) into node and, through the environment, into every process
# the tests start (the node processes need it; other programs, cmake and
# make for instance, are not instrumented and run with it unharmed; the
# ThreadSanitizer stress drops it, see test/native/native-tools.ts). Leak
# detection is off: Node does not free everything at exit. Extra arguments
# go to mocha (e.g. a single test file instead of the two folders).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=build-sanitize

libasan=$(g++ -print-file-name=libasan.so)
if [ ! -e "$libasan" ] || [ "$libasan" = "libasan.so" ]; then
  echo "test:sanitize: g++ has no AddressSanitizer runtime (libasan.so); apt-get install g++" >&2
  exit 1
fi

# The same target as binding.gyp, its sources seen from build-sanitize/, with
# the sanitizers on. -fno-sanitize=vptr: node-gyp builds without RTTI.
mkdir -p "$out"
node -e '
  const fs = require("fs");
  const gyp = JSON.parse(fs.readFileSync("binding.gyp", "utf8"));
  const t = gyp.targets[0];
  t.sources = t.sources.map((s) => "../" + s);
  const san = ["-fsanitize=address,undefined", "-fno-sanitize=vptr", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"];
  t.cflags = [...(t.cflags || []), ...san];
  t.cflags_cc = [...(t.cflags_cc || []).filter((f) => !/^-O/.test(f)), "-O1", ...san];
  t.ldflags = [...(t.ldflags || []), "-fsanitize=address,undefined"];
  fs.writeFileSync(process.argv[1], JSON.stringify(gyp, null, 2) + "\n");
' "$out/binding.gyp"
# node-gyp finds Node's headers through nodedir (.npmrc), which npm passes to
# scripts it runs; run directly, ask npm for it.
nodedir=${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}
[ "$nodedir" = "undefined" ] && nodedir=""
echo "test:sanitize: building the addon with ASan and UBSan into $out/build"
npx --no-install node-gyp rebuild --directory "$out" ${nodedir:+--nodedir="$nodedir"} >"$out/build.log" 2>&1 ||
  { tail -n 40 "$out/build.log"; exit 1; }

export AFFINITYD_NATIVE_BUILD="$out/build"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=('test/native/**/*.test.ts' 'test/codec/**/*.test.ts')
echo "test:sanitize: running ${tests[*]} against it (ASan runtime $libasan preloaded)"
LD_PRELOAD="$libasan" node node_modules/mocha/bin/mocha.js --no-config -r tsx/cjs \
  --reporter ./test/helpers/reporter.js --timeout 300000 "${tests[@]}"
