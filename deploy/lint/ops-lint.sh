#!/usr/bin/env bash
# `make lint`, operations part: Kubernetes manifests, docker-compose.yml, alert rules.
#   1. deploy/k8s/base/topics.yaml is what `carepath k8s topics` generates (not stale)
#   2. every overlay renders (kustomize build) and validates offline (kubeconform -strict)
#      against Kubernetes schemas + CRD schemas (KEDA from its Go module, Strimzi KafkaTopic
#      from deploy/k8s/schemas); a broken canary must FAIL, proving the schemas are in force
#   3. docker-compose.yml validates against the Compose specification's JSON schema
#   4. promtool check rules + promtool test rules; the dashboard's queries parse as PromQL;
#      every carepath_* metric the rules and dashboard use is in docs/metrics-contract.md
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
TOOLS="$SCRIPT_DIR/tools.sh"
K8S_VERSION="${K8S_SCHEMA_VERSION:-v1.33.0}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"

say() { printf 'ops-lint: %s\n' "$*"; }

# 1. generated topics
"$ROOT/.venv/bin/carepath" k8s topics --check

# 2. manifests
KUSTOMIZE="$(bash "$TOOLS" bin kustomize)"
KUBECONFORM="$(bash "$TOOLS" bin kubeconform)"
K8S_SCHEMAS="$(bash "$TOOLS" k8s-schemas)"
KEDA_SCHEMAS="$(bash "$TOOLS" keda-crds)"
validate() {
  "$KUBECONFORM" -strict -summary -kubernetes-version "${K8S_VERSION#v}" \
    -schema-location "$K8S_SCHEMAS/{{.NormalizedKubernetesVersion}}-strict/{{.ResourceKind}}{{.KindSuffix}}.json" \
    -schema-location "$KEDA_SCHEMAS/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" \
    -schema-location "$ROOT/deploy/k8s/schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" \
    "$@"
}
for overlay in deploy/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  "$KUSTOMIZE" build "$overlay" >"$WORK/$name.yaml"
  # No Secret is ever rendered: they are referenced only.
  if grep -q '^kind: Secret$' "$WORK/$name.yaml"; then say "overlay $name renders a Secret"; exit 1; fi
  for kind in Deployment Service PodDisruptionBudget NetworkPolicy KafkaTopic ScaledObject; do
    grep -q "^kind: $kind$" "$WORK/$name.yaml" || { say "overlay $name has no $kind"; exit 1; }
  done
  say "overlay $name: $(grep -c '^kind:' "$WORK/$name.yaml") resources"
  validate "$WORK/$name.yaml"
done
"$PYTHON" - "$WORK/dev.yaml" "$WORK/canary.yaml" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
dep = next(d for d in docs if d["kind"] == "Deployment")
dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = {"x": 1}
topic = next(d for d in docs if d["kind"] == "KafkaTopic")
topic["spec"]["replicas"] = "three"
so = next(d for d in docs if d["kind"] == "ScaledObject")
so["spec"]["minReplicaCount"] = "two"
open(sys.argv[2], "w").write(yaml.safe_dump_all([dep, topic, so]))
PY
if validate "$WORK/canary.yaml" >"$WORK/canary.out" 2>&1 || [[ "$(grep -c 'is invalid' "$WORK/canary.out")" != 3 ]]; then
  cat "$WORK/canary.out"; say "the canary manifests were not all rejected: schemas not in force"; exit 1
fi
say "canary: 3 broken resources rejected as expected"

# 3. compose
"$PYTHON" "$SCRIPT_DIR/validate_compose.py" "$(bash "$TOOLS" compose-schema)" docker-compose.yml

# 4. alerts, rule tests, dashboard queries, metric names
PROMTOOL="$(bash "$TOOLS" bin promtool)"
"$PROMTOOL" check rules deploy/observability/alerts.yml
(cd deploy/observability && "$PROMTOOL" test rules alerts.test.yml)
"$PYTHON" - deploy/observability/dashboard.json "$WORK/dashboard-rules.yml" <<'PY'
import json, sys, yaml
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
exprs = [e.replace("$team", "x").replace("$group", "x") for e in exprs]
rules = [{"record": f"carepath:dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
PY
"$PROMTOOL" check rules "$WORK/dashboard-rules.yml" >/dev/null && say "dashboard: every query parses"
"$PYTHON" - <<'PY'
import json, re, sys
used = set(re.findall(r"\bcarepath_[a-z0-9_]+", open("deploy/observability/alerts.yml").read()))
used |= set(re.findall(r"\bcarepath_[a-z0-9_]+", open("deploy/observability/dashboard.json").read()))
used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in used}
documented = set(re.findall(r"`(carepath_[a-z0-9_]+)`", open("docs/metrics-contract.md").read()))
missing = sorted(used - documented)
if missing:
    sys.exit(f"ops-lint: metrics used but not in docs/metrics-contract.md: {missing}")
print(f"ops-lint: {len(used)} carepath metrics used, all in docs/metrics-contract.md")
PY
