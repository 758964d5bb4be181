#!/usr/bin/env bash
# Lints, renders and validates every chart under helm/ (a directory without Chart.yaml is skipped), offline.
#
# For each chart, each case below must pass `helm lint --strict`, `helm template`, and
# `kubernetes-validate --strict` against Kubernetes $KUBE_VERSION:
#   defaults        the chart's values.yaml, plus ci/minimal.yaml when present (the few values a chart cannot
#                   default, such as a database URL)
#   ci/X-values.yaml  each on its own. Its header may carry, one per line:
#                   `# args: ARGS...`  more helm arguments (e.g. --set global.kafka.bootstrapServers=...),
#                                      word-split, applied after the file
#                   `# expect-rendered: KIND/NAME TEXT`      the rendered object KIND/NAME must contain TEXT
#                   `# expect-not-rendered: KIND/NAME TEXT`  ... must not contain it
#                   (NAME is the object's metadata.name under release $RELEASE, e.g. ConfigMap/plinth-ci-datahub)
#   production-values.yaml  at the chart's root, when present (the umbrella chart's, for users to copy)
# A chart with `dependencies:` (the umbrella helm/plinth, file:// repositories) gets `helm dependency build`
# first, offline; the packed charts/*.tgz are not committed.
# Negative cases: every ci/invalid/*.yaml (layered on ci/minimal.yaml) must make `helm template` FAIL, and
# when its first line is `# expect: TEXT` the error must mention TEXT, so the user sees a clear message.
#
#   usage: deploy/scripts/helm-check.sh [CHART_DIR...]     (default: helm/*/)
#   needs: tools.sh helm venv (the Makefile's helm-check target installs them)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
TOOLS="${PLINTH_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/plinth/tools}"
HELM="${HELM:-$TOOLS/bin/helm}"
KUBERNETES_VALIDATE="${KUBERNETES_VALIDATE:-${PLINTH_VENV:-$TOOLS/venv}/bin/kubernetes-validate}"
readonly KUBE_VERSION="${KUBE_VERSION:-1.33.0}"
readonly RELEASE=plinth-ci NAMESPACE=plinth-ci

for tool in "$HELM" "$KUBERNETES_VALIDATE"; do
    [[ -x "$tool" ]] || {
        echo "helm-check: $tool not found: run 'bash deploy/scripts/tools.sh helm venv' (or 'make helm-check')" >&2
        exit 1
    }
done

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failures=()
n_checks=0

fail() {
    failures+=("$1")
    printf 'helm-check: FAIL %s\n' "$1" >&2
    [[ -s "$scratch/out" ]] && sed 's/^/    /' "$scratch/out" >&2
    return 0
}

# check_case CHART LABEL VALUES_ARGS...: lint, render, validate one set of values.
check_case() {
    local chart="$1" label="$2"
    shift 2
    n_checks=$((n_checks + 1))
    if ! "$HELM" lint --strict --quiet --kube-version "$KUBE_VERSION" "$chart" "$@" >"$scratch/out" 2>&1; then
        fail "$chart [$label]: helm lint --strict"
        return 0
    fi
    if ! "$HELM" template "$RELEASE" "$chart" --namespace "$NAMESPACE" --kube-version "$KUBE_VERSION" \
        "$@" >"$scratch/rendered.yaml" 2>"$scratch/out"; then
        fail "$chart [$label]: helm template"
        return 0
    fi
    # --strict rejects unknown fields. Kinds it has no schema for (CRDs such as ServiceMonitor) come out as
    # warnings, which are shown but do not fail the check.
    if ! "$KUBERNETES_VALIDATE" --strict --quiet -k "$KUBE_VERSION" - <"$scratch/rendered.yaml" >"$scratch/out" 2>&1; then
        fail "$chart [$label]: kubernetes-validate --strict -k $KUBE_VERSION"
        return 0
    fi
    local n_objects
    n_objects="$(grep -c '^kind: ' "$scratch/rendered.yaml" || true)"
    printf 'helm-check: ok   %s [%s]: lint, template (%s objects), kubernetes-validate %s\n' \
        "$chart" "$label" "$n_objects" "$KUBE_VERSION"
    [[ -s "$scratch/out" ]] && sed 's/^/    /' "$scratch/out"
    rendered_ok=1
    return 0
}

# rendered_object KIND NAME: the documents of $scratch/rendered.yaml with that kind and metadata.name.
rendered_object() {
    awk -v want_kind="$1" -v want_name="$2" '
        function flush() {
            if (kind == want_kind && name == want_name) printf "%s", doc
            doc = ""; kind = ""; name = ""; in_meta = 0
        }
        /^---/ { flush(); next }
        { doc = doc $0 "\n" }
        /^kind: / { kind = $2 }
        /^metadata:/ { in_meta = 1; next }
        /^[^ ]/ { in_meta = 0 }
        in_meta && name == "" && /^  name: / { name = $2; gsub(/"/, "", name) }
        END { flush() }
    ' "$scratch/rendered.yaml"
}

# check_expectations CHART LABEL VALUES: the `# expect-rendered:` / `# expect-not-rendered:` lines of VALUES
# against the last rendered case.
check_expectations() {
    local chart="$1" label="$2" values="$3" line what object text n=0
    while IFS= read -r line; do
        what="${line%%:*}"
        what="${what#\# }"
        line="${line#*: }"
        object="${line%% *}"
        text="${line#* }"
        n_checks=$((n_checks + 1))
        n=$((n + 1))
        rendered_object "${object%%/*}" "${object#*/}" >"$scratch/object.yaml"
        : >"$scratch/out"
        if [[ ! -s "$scratch/object.yaml" ]]; then
            fail "$chart [$label]: $what: no $object was rendered"
        elif [[ "$what" == expect-rendered ]] && ! grep -qF -- "$text" "$scratch/object.yaml"; then
            fail "$chart [$label]: $object does not contain '$text'"
        elif [[ "$what" == expect-not-rendered ]] && grep -qF -- "$text" "$scratch/object.yaml"; then
            fail "$chart [$label]: $object contains '$text', which it must not"
        fi
    done < <(grep -E '^# expect-(not-)?rendered: ' "$values" || true)
    ((n == 0)) || printf 'helm-check: ok   %s [%s]: %d rendered expectations\n' "$chart" "$label" "$n"
}

# check_rejected CHART LABEL EXPECTED VALUES_ARGS...: `helm template` must fail, mentioning EXPECTED.
check_rejected() {
    local chart="$1" label="$2" expected="$3"
    shift 3
    n_checks=$((n_checks + 1))
    if "$HELM" template "$RELEASE" "$chart" --namespace "$NAMESPACE" --kube-version "$KUBE_VERSION" \
        "$@" >/dev/null 2>"$scratch/out"; then
        : >"$scratch/out"
        fail "$chart [$label]: helm template accepted values it must reject"
    elif [[ -n "$expected" ]] && ! grep -qF -- "$expected" "$scratch/out"; then
        fail "$chart [$label]: helm template failed, but its message does not mention '$expected'"
    else
        local reason
        if [[ -n "$expected" ]]; then
            reason="$(grep -F -m 1 -- "$expected" "$scratch/out")"
        else
            reason="$(grep -m 1 -E 'Error|error' "$scratch/out" || head -n 1 "$scratch/out")"
        fi
        printf 'helm-check: ok   %s [%s]: rejected: %s\n' "$chart" "$label" "$(sed 's/^[- ]*//' <<<"$reason")"
    fi
}

charts=("$@")
if ((${#charts[@]} == 0)); then
    for dir in helm/*/; do
        if [[ -f "$dir/Chart.yaml" ]]; then
            charts+=("${dir%/}")
        else
            echo "helm-check: skip ${dir%/} (no Chart.yaml)"
        fi
    done
fi
((${#charts[@]})) || { echo "helm-check: no charts under helm/" >&2; exit 1; }

for chart in "${charts[@]}"; do
    if grep -q '^dependencies:' "$chart/Chart.yaml"; then
        n_checks=$((n_checks + 1))
        if ! "$HELM" dependency build "$chart" >"$scratch/out" 2>&1; then
            fail "$chart: helm dependency build"
            continue
        fi
    fi
    minimal=()
    [[ -f "$chart/ci/minimal.yaml" ]] && minimal=(-f "$chart/ci/minimal.yaml")
    check_case "$chart" defaults "${minimal[@]}"

    if [[ -f "$chart/production-values.yaml" ]]; then
        check_case "$chart" production-values.yaml -f "$chart/production-values.yaml"
    fi
    for values in "$chart"/ci/*-values.yaml; do
        [[ -e "$values" ]] || continue
        read -r -a extra_args <<<"$(sed -n 's/^# args: //p' "$values" | tr '\n' ' ')"
        rendered_ok=0
        check_case "$chart" "${values#"$chart"/}" -f "$values" "${extra_args[@]}"
        if ((rendered_ok)); then
            check_expectations "$chart" "${values#"$chart"/}" "$values"
        fi
    done

    # Without a bad-values file of its own, a chart that has replicaCount must at least reject a string.
    if ! compgen -G "$chart/ci/invalid/*.yaml" >/dev/null && grep -q '^replicaCount:' "$chart/values.yaml"; then
        check_rejected "$chart" 'replicaCount: "two"' replicaCount "${minimal[@]}" --set-string replicaCount=two
    fi
    for values in "$chart"/ci/invalid/*.yaml; do
        [[ -e "$values" ]] || continue
        expected="$(sed -n '1s/^# expect: //p' "$values")"
        check_rejected "$chart" "${values#"$chart"/}" "$expected" "${minimal[@]}" -f "$values"
    done
done

if ((${#failures[@]})); then
    printf '\nhelm-check: %d of %d checks failed:\n' "${#failures[@]}" "$n_checks" >&2
    printf '  %s\n' "${failures[@]}" >&2
    exit 1
fi
printf 'helm-check: %d passed, 0 failed\n' "$n_checks"
