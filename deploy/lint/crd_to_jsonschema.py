"""Turn CustomResourceDefinition YAML into the JSON schemas kubeconform reads.

For each served version of each CRD: ``<out>/<group>/<kind lowercase>_<version>.json``
(for kubeconform: '<out>/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json').
The openAPIV3Schema is made strict (objects with ``properties`` and no
``additionalProperties`` refuse unknown fields, unless marked
``x-kubernetes-preserve-unknown-fields``) and the Kubernetes extensions are translated:
``x-kubernetes-int-or-string`` becomes ``string | integer``. apiVersion, kind and metadata are
added when the CRD leaves them out.

Usage: python crd_to_jsonschema.py OUT_DIR CRD.yaml...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def strict(node: Any) -> Any:
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "string"}, {"type": "integer"}]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    for key in list(out):
        if key.startswith("x-kubernetes-"):
            out.pop(key)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    if out.get("type") == "object" and "nullable" in out:
        out.pop("nullable")
    return out


def convert(crd: dict[str, Any], out_dir: Path) -> list[Path]:
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    written = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = strict(version["schema"]["openAPIV3Schema"])
        props = schema.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
        props["apiVersion"] = {"enum": [f"{group}/{version['name']}"]}
        props["kind"] = {"enum": [kind]}
        schema["additionalProperties"] = False
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        path = out_dir / group / f"{kind.lower()}_{version['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=1, sort_keys=True))
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(argv[0])
    for name in argv[1:]:
        for doc in yaml.safe_load_all(Path(name).read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                for path in convert(doc, out_dir):
                    print(f"schema: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
