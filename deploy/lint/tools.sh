#!/usr/bin/env bash
# Operations tooling for `make lint`, fetched from package registries and cached:
#   kustomize, kubeconform, promtool   `go install` from the Go module proxy
#   KEDA CRDs                          the github.com/kedacore/keda/v2 Go module (config/crd)
#   Compose specification schema       the github.com/compose-spec/compose-go/v2 Go module
#                                      (schema/compose-spec.json, the schema it embeds)
#   Kubernetes JSON schemas            the kubernetes-validate PyPI package (dev dependency)
#
# Usage: deploy/lint/tools.sh {bin NAME|keda-crds|compose-schema|k8s-schemas|all}
#   prints the path of what was asked for. Binaries land in
#   $CAREPATH_CACHE/tools/<name>-<version>/ (default ~/.cache/carepath) and are linked into
#   <repo>/.tools/bin. Needs Go (1.24+) on PATH; nothing is installed system-wide.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CACHE="${CAREPATH_CACHE:-$HOME/.cache/carepath}"
TOOLS_BIN="$REPO_ROOT/.tools/bin"
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"

KUSTOMIZE_VERSION=v5.8.1
KUBECONFORM_VERSION=v0.7.0
PROMTOOL_VERSION=v0.316.0          # Prometheus 3.x tags its Go module v0.3xx
KEDA_VERSION=v2.21.0
COMPOSE_GO_VERSION=v2.10.0

log() { printf 'tools.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

go_bin() { # go_bin NAME MODULE_PATH VERSION
  local name="$1" module="$2" version="$3" dir="$CACHE/tools/$1-$3"
  if [[ ! -x "$dir/$name" ]]; then
    command -v go >/dev/null 2>&1 || die "go not found (needed to build $name)"
    log "building $name $version from the Go module proxy (once; cached in $dir) ..."
    mkdir -p "$dir"
    GOBIN="$dir" GOFLAGS=-mod=mod go install "$module@$version" >&2 \
      || die "go install $module@$version failed"
  fi
  mkdir -p "$TOOLS_BIN"
  ln -sf "$dir/$name" "$TOOLS_BIN/$name"
  echo "$TOOLS_BIN/$name"
}

module_dir() { # module_dir MODULE VERSION: the module's unpacked source (go mod download)
  local json
  json="$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "$1@$2")" \
    || die "go mod download $1@$2 failed"
  "$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.read())["Dir"])' <<<"$json"
}

keda_crds() {
  local out="$CACHE/schemas/keda-$KEDA_VERSION" src
  if [[ ! -f "$out/.done" ]]; then
    mkdir -p "$CACHE"
    src="$(module_dir github.com/kedacore/keda/v2 "$KEDA_VERSION")/config/crd/bases"
    "$PYTHON" "$SCRIPT_DIR/crd_to_jsonschema.py" "$out" \
      "$src/keda.sh_scaledobjects.yaml" "$src/keda.sh_triggerauthentications.yaml" >&2
    touch "$out/.done"
  fi
  echo "$out"
}

compose_schema() {
  local out="$CACHE/schemas/compose-spec-$COMPOSE_GO_VERSION.json"
  if [[ ! -s "$out" ]]; then
    mkdir -p "$CACHE/schemas"
    cp "$(module_dir github.com/compose-spec/compose-go/v2 "$COMPOSE_GO_VERSION")/schema/compose-spec.json" "$out"
    chmod u+w "$out"
  fi
  echo "$out"
}

K8S_SCHEMA_VERSION="${K8S_SCHEMA_VERSION:-v1.33.0}"
# kubernetes-validate ships one directory per Kubernetes version whose files point at
# "/api/_definitions.json" (its own loader's root). kubeconform reads files, so a copy with
# those references made relative to the directory goes to the cache once.
k8s_schemas() {
  local out="$CACHE/schemas/kubernetes-$K8S_SCHEMA_VERSION"
  if [[ ! -f "$out/.done" ]]; then
    "$PYTHON" - "$K8S_SCHEMA_VERSION" "$out" <<'PY'
import pathlib, sys
import kubernetes_validate

version, out = sys.argv[1], pathlib.Path(sys.argv[2])
src = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
dest = out / f"{version}-strict"
dest.mkdir(parents=True, exist_ok=True)
for f in (src / f"{version}-local-strict").glob("*.json"):
    # Absolute file URIs: each file's $id is an https URL that relative references would follow.
    defs = (dest / "_definitions.json").resolve().as_uri()
    (dest / f.name).write_text(f.read_text().replace('"/api/_definitions.json#', f'"{defs}#'))
PY
    touch "$out/.done"
  fi
  echo "$out"
}

case "${1:-}" in
  bin)
    case "${2:-}" in
      kustomize) go_bin kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" ;;
      kubeconform) go_bin kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" ;;
      promtool) go_bin promtool github.com/prometheus/prometheus/cmd/promtool "$PROMTOOL_VERSION" ;;
      *) die "unknown tool '${2:-}'" ;;
    esac ;;
  keda-crds) keda_crds ;;
  compose-schema) compose_schema ;;
  k8s-schemas) k8s_schemas ;;
  all) for t in kustomize kubeconform promtool; do bash "$0" bin "$t" >/dev/null; done; keda_crds; compose_schema; k8s_schemas ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
