#!/usr/bin/env bash
# Runs the tests under the sanitizers (issue #10) and fails on any test failure or sanitizer report.
#
#   bash scripts/sanitize.sh [address|undefined|thread|all]      (default: all)
#
# address, undefined: one build (.build-asan) for both. swiftc on Linux has no
#   -sanitize=undefined, so Swift code gets AddressSanitizer (its own overflow, bounds and
#   exclusivity checks are on anyway) and the C targets (CKernels, CONNX) get AddressSanitizer
#   plus UndefinedBehaviorSanitizer through -Xcc -fsanitize=undefined. Runs the whole suite.
# thread: ThreadSanitizer (.build-tsan) on the suites with threads of their own: the runtime's
#   (sessions and the kernels' thread partitions) and the server's (queue, swap workers, event
#   loops). The others are single-threaded numeric code, where TSan has nothing to find.
# Release builds with -enable-testing: the numeric tests take 10-100x longer in debug, and the
# sanitizers work in release (instrumentation happens after optimisation). Logs go to
# out/sanitize/<name>.log. Extra arguments after the mode go to `swift test` (e.g. --filter X).
# Known reports in code that is not ours are suppressed in scripts/sanitizers/*.supp, each with
# its reason.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}; shift || true
case "$mode" in address|undefined|thread|all) ;; *) echo "usage: $0 [address|undefined|thread|all] [swift test args...]" >&2; exit 2 ;; esac
mkdir -p out/sanitize
supp="$PWD/scripts/sanitizers"

# ASan: no leak report (the Swift runtime and Foundation keep caches for the process's life,
# which LeakSanitizer reports by the hundred); everything else aborts the test process.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:history_size=4:suppressions=$supp/tsan.supp"

failed=0
run() {   # run NAME SCRATCH "SANITIZER FLAGS" [test args...]
  local name=$1 scratch=$2 flags=$3; shift 3
  local log=out/sanitize/$name.log start=$SECONDS
  echo "== $name: building ($scratch, release, $flags)"
  # shellcheck disable=SC2086
  if ! swift build -c release -Xswiftc -enable-testing $flags --scratch-path "$scratch" --build-tests > "$log.build" 2>&1; then
    grep -E "error:" "$log.build" | head -20
    echo "== $name: BUILD FAILED (see $log.build)"; failed=1; return
  fi
  local built=$SECONDS
  echo "== $name: built in $((built - start)) s; testing $*"
  # shellcheck disable=SC2086
  # --no-parallel as in scripts/test.sh: on 2 cores, long synchronous tests beside the server's
  # queue tests starve their event loops past the deadlines they check.
  swift test -c release -Xswiftc -enable-testing $flags --scratch-path "$scratch" --skip-build --no-parallel "$@" > "$log" 2>&1
  local status=$?
  local reports
  reports=$(grep -cE "ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|ERROR: LeakSanitizer|SUMMARY: (Address|Thread|UndefinedBehavior)Sanitizer" "$log")
  local summary
  summary=$(grep -E "^(✔|✘|􁁛|􀢄).*Test run with|Executed [0-9]+ tests" "$log" | tail -2 | tr '\n' ' ')
  echo "== $name: tests exit $status in $((SECONDS - built)) s; sanitizer reports: $reports; $summary"
  if [ "$reports" -gt 0 ]; then
    grep -E -A12 "ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer" "$log" | head -60
  fi
  if [ "$status" -ne 0 ] || [ "$reports" -gt 0 ]; then
    grep -E "✘|error:|Fatal error|failed" "$log" | grep -v "^$" | head -20
    failed=1
  fi
}

if [ "$mode" = address ] || [ "$mode" = undefined ] || [ "$mode" = all ]; then
  run asan-ubsan .build-asan "--sanitize=address -Xcc -fsanitize=undefined" "$@"
fi
if [ "$mode" = thread ] || [ "$mode" = all ]; then
  if [ $# -gt 0 ]; then
    run tsan .build-tsan "--sanitize=thread" "$@"
  else
    run tsan .build-tsan "--sanitize=thread" --filter "MegaFSRuntimeTests|MegaFSServerTests"
  fi
fi
[ $failed -eq 0 ] && echo "sanitizers: clean" || echo "sanitizers: FAILED"
exit $failed
