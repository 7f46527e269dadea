#!/usr/bin/env bash
# The test command for brook: `bash scripts/test.sh` from anywhere in the repository.
#
# Idempotent, and works on a fresh Debian 12 machine (as root, or with sudo) that has a Rust
# toolchain: installs what the tests need from Debian (cmake and a C toolchain to build
# librdkafka for the `rdkafka` crate, kcat, pkg-config, the libcurl headers librdkafka 2.12's
# CMake build includes unconditionally, libfaketime, python3-venv), creates .venv with the Python clients,
# then runs, stopping at the first failure:
#   fmt check, clippy (-D warnings), release build, all Rust tests (unit tests and the
#   cross-process tests in tests/), the Python client tests in tests/python, the kafkajs test in
#   tests/js (npm ci; nodejs and npm come from Debian when missing).
#
# Environment: BROOK_TEST_THREADS (default 2) sets libtest's --test-threads; CARGO_TARGET_DIR
# is honoured.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
TEST_THREADS=${BROOK_TEST_THREADS:-2}
SUITE_START=$(date +%s)
STEP_START=$SUITE_START
STEP_NAME=""

finish_step() {
    if [ -n "$STEP_NAME" ]; then
        echo "---- done: $STEP_NAME ($(($(date +%s) - STEP_START)) s)"
    fi
}

step() {
    finish_step
    STEP_NAME=$1
    STEP_START=$(date +%s)
    echo
    echo "================================================================================"
    echo "==== $1"
    echo "================================================================================"
}

on_exit() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        echo
        echo "!!!! FAILED: ${STEP_NAME:-setup} (exit status $status, after $(($(date +%s) - SUITE_START)) s)" >&2
    fi
}
trap on_exit EXIT

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root (or sudo) to run: $*" >&2
        return 1
    fi
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# ---------------------------------------------------------------------------------------------
step "system packages"
# iproute2 and iptables: the brook-jepsen smoke run puts nodes in network namespaces (as root).
# libfaketime: the clock tests and the clock nemesis skew one node's wall clock.
# libssl-dev: librdkafka (the rdkafka crate) is built with TLS; openssl makes the TLS tests' certificates.
packages=(build-essential cmake pkg-config libcurl4-openssl-dev libssl-dev openssl kcat ca-certificates iproute2 iptables libfaketime)
if [ -f tests/python/requirements.txt ]; then
    packages+=(python3 python3-venv)
fi
missing=()
for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "all present: ${packages[*]}"
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install a Rust toolchain (rust-version in Cargo.toml) first" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            rustup component add "$component"
        else
            echo "cargo ${component/rustfmt/fmt} is not available and rustup is not installed" >&2
            exit 1
        fi
    fi
done
cargo --version
kcat -V 2>&1 | head -n 1

# ---------------------------------------------------------------------------------------------
if [ -f tests/python/requirements.txt ]; then
    step "python venv (.venv) and tests/python/requirements.txt"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    .venv/bin/python -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt
    .venv/bin/python --version
else
    echo
    echo "(no tests/python/requirements.txt: skipping the Python environment)"
fi

# ---------------------------------------------------------------------------------------------
step "cargo fmt --all --check"
cargo fmt --all --check

# Clippy in the release profile: lints are the same, and the build scripts' output (librdkafka,
# built with cmake by rdkafka-sys) is shared with the release build below instead of being built
# a second time for the dev profile.
step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --release --workspace --all-targets -- -D warnings

step "cargo build --release --workspace"
cargo build --release --workspace
export BROOK_BIN=$TARGET_DIR/release/brook
if [ ! -x "$BROOK_BIN" ]; then
    echo "the release build produced no brook binary at $BROOK_BIN" >&2
    exit 1
fi

step "cargo test --release --workspace (unit and cross-process tests, $TEST_THREADS threads)"
# --no-fail-fast: every test binary runs, so one failure does not hide the others; the step
# still fails if any test failed.
cargo test --release --workspace --no-fail-fast -- --test-threads="$TEST_THREADS"

# ---------------------------------------------------------------------------------------------
if [ -d tests/python ] && [ -x .venv/bin/python ] && [ -f tests/python/requirements.txt ]; then
    step "pytest tests/python (BROOK_BIN=$BROOK_BIN)"
    .venv/bin/python -m pytest -q tests/python
fi

# ---------------------------------------------------------------------------------------------
if [ -f tests/js/package.json ]; then
    step "kafkajs tests/js (npm ci, node groups.test.js and security.test.js; BROOK_BIN=$BROOK_BIN)"
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        echo "installing: nodejs npm"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
    fi
    node --version
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
    node tests/js/groups.test.js
    node tests/js/security.test.js
fi

finish_step
STEP_NAME=""
echo
echo "==== all steps passed in $(($(date +%s) - SUITE_START)) s"
