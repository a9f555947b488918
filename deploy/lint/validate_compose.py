"""Validate docker-compose.yml against the Compose specification's JSON schema.

Usage: python validate_compose.py SCHEMA.json docker-compose.yml...
Every error names its path in the file; exit 1 if any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import yaml


def main(argv: list[str]) -> int:
    schema = json.loads(Path(argv[0]).read_text())
    validator = jsonschema.Draft7Validator(schema)
    bad = 0
    for name in argv[1:]:
        doc = yaml.safe_load(Path(name).read_text())
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in err.absolute_path) or "(top)"
            print(f"{name}: {where}: {err.message}", file=sys.stderr)
            bad += 1
        if not bad:
            print(f"{name}: valid against the Compose specification ({len(doc['services'])} "
                  "services)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
