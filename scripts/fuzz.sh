#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (issue #10) with AddressSanitizer, prepares their seed
# corpora and runs each target for a given time. Exits non-zero if any target found a crash,
# a timeout or an out-of-memory, naming the saved input. See Fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ALL_TARGETS=(onnx model image mask multipart)
SECONDS_PER_TARGET=60
WORK=${MEGAFS_FUZZ_WORK:-$ROOT/Fuzz/.build/work}
BUILD=1
TARGETS=()

usage() {
    cat <<EOF
Usage: scripts/fuzz.sh [--time SECONDS] [--work DIR] [--no-build] [TARGET...]

Builds the fuzz package Fuzz/ (debug, with libFuzzer coverage and AddressSanitizer), prepares
seed corpora and runs each TARGET in turn for SECONDS (default 60). TARGET is one of:
${ALL_TARGETS[*]} (default: all).

  onnx       ONNX import from bytes, then the converter's graph passes
  model      the .mfs model-file reader (every section and frame), then a runtime session
  image      PNG/JPEG decoding as megafs swap and serve call it (512x512 pixel limit)
  mask       the face-parsing label-map PNG reader
  multipart  the server's multipart/form-data parser (Content-Type boundary and body)

Options:
  --time SECONDS  fuzzing time per target (default 60)
  --work DIR      seeds, corpora, logs and crash artifacts (default Fuzz/.build/work, or
                  \$MEGAFS_FUZZ_WORK); corpora grow across runs
  --no-build      use the fuzz binaries already built
  -h, --help      this text

Per target it prints the executions, executions per second, the coverage (libFuzzer's "cov",
edges, and "ft", features) and the corpus size. Any crash, timeout (-timeout=$(timeout_for onnx)s
per input) or out-of-memory (-rss_limit_mb=2048) makes the script exit 1 after the remaining
targets ran, naming the input libFuzzer saved under DIR/artifacts/; reproduce with
Fuzz/.build/debug/fuzz-TARGET <that file>.

Seeds: fixtures/*/model.onnx, .mfs files converted from the small fixtures with the megafs CLI
(\$MEGAFS, else .build/release/megafs, built if missing), examples/samples/*.png and the small
hand-made seeds in Fuzz/seeds/ (made by Fuzz/seeds/make_seeds.py).
EOF
}

# Largest input libFuzzer generates, per target (the seeds fit).
max_len_for() {
    case $1 in
        onnx) echo 600000 ;; model) echo 262144 ;; image) echo 131072 ;; mask) echo 8192 ;; multipart) echo 16384 ;;
    esac
}
# Seconds one input may take before libFuzzer calls it a hang (debug + ASan is slow).
timeout_for() { echo 10; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --time) SECONDS_PER_TARGET=${2:?--time needs a number of seconds}; shift 2 ;;
        --work) WORK=${2:?--work needs a directory}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *)
            if [[ " ${ALL_TARGETS[*]} " != *" $1 "* ]]; then
                echo "fuzz.sh: unknown target '$1'; targets: ${ALL_TARGETS[*]}" >&2; exit 2
            fi
            TARGETS+=("$1"); shift ;;
    esac
done
[[ $SECONDS_PER_TARGET =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --time must be a positive number of seconds" >&2; exit 2; }
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL_TARGETS[@]}")
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
BIN=$ROOT/Fuzz/.build/debug

if [[ $BUILD == 1 ]]; then
    echo "== building the fuzz targets (debug, -sanitize=fuzzer,address)"
    start=$(date +%s)
    # swiftc honours only the last -sanitize= flag, and SwiftPM passes one per sanitizer in no
    # fixed order (so the Swift code got either ASan or coverage): pass both in one flag last.
    # (The linker's "Cannot export local symbol" warnings about ASan's helpers are noise.)
    # One product at a time: a plain `swift build` would also build the main package's CLI and
    # server dependencies (Hummingbird, NIO, BoringSSL), which no fuzz target links.
    : >"$WORK/build.log"
    for t in "${TARGETS[@]}"; do
        if ! swift build --package-path Fuzz --scratch-path Fuzz/.build --sanitize=fuzzer --sanitize=address \
                -Xswiftc -sanitize=fuzzer,address --product "fuzz-$t" >>"$WORK/build.log" 2>&1; then
            grep -v "Cannot export local symbol" "$WORK/build.log" | tail -n 40 >&2
            echo "fuzz.sh: building fuzz-$t failed (full log: $WORK/build.log)" >&2
            exit 1
        fi
    done
    echo "   built in $(( $(date +%s) - start )) s (log: $WORK/build.log)"
fi

megafs_cli() {
    local cli=${MEGAFS:-$ROOT/.build/release/megafs}
    if [[ ! -x $cli ]]; then
        echo "   building the megafs CLI for the .mfs seeds (same flags as scripts/test.sh)" >&2
        swift build -c release -Xswiftc -enable-testing --product megafs >&2
        cli=$ROOT/.build/release/megafs
    fi
    echo "$cli"
}

# Seeds are made once per work dir (delete DIR/seeds/TARGET to remake them).
prepare_seeds() {
    local t=$1 dir=$WORK/seeds/$1
    [[ -f $dir/.done ]] && return 0
    rm -rf "$dir"; mkdir -p "$dir"
    case $t in
        onnx)
            for f in fixtures/*/model.onnx; do cp "$f" "$dir/$(basename "$(dirname "$f")").onnx"; done ;;
        model)
            local cli; cli=$(megafs_cli)
            local name variant
            for name in swapper-lcr generator; do
                for variant in "default:" "noshuffle:--shuffle off" "int8:--quantize int8 --min-elements 1" "plain:--no-optimize --shuffle on"; do
                    # shellcheck disable=SC2086
                    "$cli" convert "fixtures/$name/model.onnx" -o "$dir/$name-${variant%%:*}.mfs" --threads 1 ${variant#*:} \
                        >"$WORK/seeds/convert.log" 2>&1 || { cat "$WORK/seeds/convert.log" >&2; exit 1; }
                done
            done ;;
        image)
            for f in examples/samples/*.png; do [[ $f == *_labels.png ]] || cp "$f" "$dir/"; done ;;
        mask)
            cp examples/samples/*_labels.png "$dir/" ;;
        multipart) ;;
    esac
    if [[ -d Fuzz/seeds/$t ]]; then cp Fuzz/seeds/"$t"/* "$dir/"; fi
    touch "$dir/.done"
}

stat_of() { grep -E "^stat::$2:" "$1" | tail -1 | awk '{print $2}'; }

# Swift traps are reported by libFuzzer's deadly-signal handler with an ASan stack trace whose
# first frame names the failure ("Swift runtime failure: arithmetic overflow"). The Swift
# backtracer would report it too, but it races with ASan and its helper process can hang.
export SWIFT_BACKTRACE=enable=no

failed=0
summary=()
for t in "${TARGETS[@]}"; do
    prepare_seeds "$t"
    corpus=$WORK/corpus/$t artifacts=$WORK/artifacts/$t/ log=$WORK/logs/$t-$(date +%Y%m%d-%H%M%S).log
    mkdir -p "$corpus" "$artifacts" "$WORK/logs"
    echo "== fuzz-$t for ${SECONDS_PER_TARGET}s (log $log)"
    rc=0
    (cd "$WORK" && "$BIN/fuzz-$t" -max_total_time="$SECONDS_PER_TARGET" -timeout="$(timeout_for "$t")" \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len="$(max_len_for "$t")" -print_final_stats=1 \
        -artifact_prefix="$artifacts" "$corpus" "$WORK/seeds/$t") >"$log" 2>&1 || rc=$?
    execs=$(stat_of "$log" number_of_executed_units); rate=$(stat_of "$log" average_exec_per_sec)
    rss=$(stat_of "$log" peak_rss_mb)
    cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$log" | tail -1)
    files=$(find "$corpus" -type f | wc -l)
    line=$(printf "fuzz-%-9s %10s execs %6s exec/s  %-20s corpus %5s files  peak RSS %s MB" \
        "$t" "${execs:-?}" "${rate:-?}" "${cov:-cov: ?}" "$files" "${rss:-?}")
    if [[ $rc != 0 ]]; then
        failed=1
        what=$(grep -m1 -oE "Swift runtime failure: [^/]*|Fatal error: .*" "$log" ||
               grep -m1 -oE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-zA-Z -]+" "$log" || true)
        unit=$(grep -m1 -oE "Test unit written to [^ ]+" "$log" | sed 's/Test unit written to //' || true)
        line+="  FAILED (exit $rc): ${what:-see the log}; input: ${unit:-none saved}; log: $log"
    fi
    echo "   $line"
    summary+=("$line")
done

echo "== summary"
printf '   %s\n' "${summary[@]}"
exit $failed
