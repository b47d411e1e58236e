#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after the other.
#
#   fuzz/run.sh [SECONDS] [TARGET...]        # SECONDS defaults to 60
#
# Installs cargo-fuzz if it is missing. cargo fuzz needs nightly-only rustc flags; on a stable
# toolchain RUSTC_BOOTSTRAP=1 allows them. Each target's corpus grows in fuzz/corpus/TARGET (seeded
# from fuzz/seeds/TARGET, with fuzz/dicts/TARGET.dict as its dictionary); a crash stops that target,
# leaves the input in fuzz/artifacts/TARGET/ and makes the script exit non-zero after the others
# have run. Reproduce one with `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...`
# and minimise it with `RUSTC_BOOTSTRAP=1 cargo fuzz tmin TARGET fuzz/artifacts/TARGET/crash-...`
# (from fuzz/). Extra libFuzzer flags go in FUZZ_ARGS (such as FUZZ_ARGS="-jobs=2 -workers=2"),
# extra cargo-fuzz flags in CARGO_FUZZ_FLAGS (such as "--dev --sanitizer none");
# CARGO_TARGET_DIR is honoured.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
seconds="${1:-60}"
[[ $# -gt 0 ]] && shift
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing; installing it with cargo install --locked cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

cd "$here"
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

failed=()
for target in "${targets[@]}"; do
    echo "=== $target: ${seconds}s" >&2
    mkdir -p "corpus/$target"
    corpora=("$here/corpus/$target")
    [[ -d "seeds/$target" ]] && corpora+=("$here/seeds/$target")
    flags=("-max_total_time=$seconds")
    [[ -f "dicts/$target.dict" ]] && flags+=("-dict=$here/dicts/$target.dict")
    # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags
    flags+=(${FUZZ_ARGS:-})
    # shellcheck disable=SC2086 # CARGO_FUZZ_FLAGS is a list of flags
    if ! cargo fuzz run ${CARGO_FUZZ_FLAGS:-} "$target" "${corpora[@]}" -- "${flags[@]}"; then
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crashes in: ${targets[*]}" >&2
