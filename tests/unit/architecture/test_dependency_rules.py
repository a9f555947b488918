"""The package dependency rules hold, and the checker that enforces them catches breaches."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_dependencies", ROOT / "tools" / "check_dependencies.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_dependencies"] = module
    spec.loader.exec_module(module)
    return module


checker = _checker()


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_repository_keeps_its_rules() -> None:
    assert checker.check(ROOT) == []


@pytest.mark.parametrize(
    ("importer", "line", "rule"),
    [
        ("shared/carepath_contracts/x.py", "import carepath_runtime.log\n", "may not import"),
        ("shared/carepath_contracts/x.py", "import redis\n", "no I/O"),
        ("shared/carepath_runtime/x.py", "from carepath_pathway import cli\n", "may not import"),
        ("services/intake/carepath_intake/x.py", "import carepath_referrals\n",
         "may not import"),
        ("services/intake/carepath_intake/x.py",
         "def f() -> None:\n    from carepath import main\n", "may not import"),
        ("testkit/carepath_testkit/x.py", "import carepath_pathway\n", "may not import"),
    ],
)
def test_a_forbidden_import_is_found(tmp_path: Path, importer: str, line: str, rule: str) -> None:
    root = _tree(tmp_path, {
        "shared/carepath_contracts/__init__.py": "",
        "shared/carepath_runtime/__init__.py": "",
        "services/intake/carepath_intake/__init__.py": "",
        "services/referrals/carepath_referrals/__init__.py": "",
        "services/pathway/carepath_pathway/__init__.py": "",
        "services/pathway/carepath_pathway/cli.py": "",
        "cli/carepath/__init__.py": "",
        "cli/carepath/main.py": "",
        "testkit/carepath_testkit/__init__.py": "",
        importer: line,
    })
    findings = checker.check(root)
    assert len(findings) == 1
    assert rule in findings[0] and importer in findings[0]


def test_the_cli_may_gather_the_services(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "services/pathway/carepath_pathway/__init__.py": "",
        "services/pathway/carepath_pathway/cli.py": "",
        "cli/carepath/__init__.py": "",
        "cli/carepath/main.py": "from carepath_pathway.cli import x\n",
    })
    assert checker.check(root) == []


def test_a_cycle_through_a_package_init_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "services/pathway/carepath_pathway/__init__.py": "",
        "services/pathway/carepath_pathway/domain/__init__.py":
            "from carepath_pathway.domain.engine import evaluate\n",
        "services/pathway/carepath_pathway/domain/engine.py":
            "from carepath_pathway.domain.rules import imaging\n",
        "services/pathway/carepath_pathway/domain/rules.py":
            "from carepath_pathway.domain import evidence\n",
        "services/pathway/carepath_pathway/domain/evidence.py": "",
    })
    findings = checker.check(root)
    assert len(findings) == 1 and findings[0].startswith("import cycle: ")
    assert "carepath_pathway.domain.rules" in findings[0]


def test_type_checking_and_late_imports_make_no_cycle(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "services/pathway/carepath_pathway/__init__.py": "",
        "services/pathway/carepath_pathway/a.py": "import carepath_pathway.b\n",
        "services/pathway/carepath_pathway/b.py":
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import carepath_pathway.a\n",
    })
    assert checker.check(root) == []
