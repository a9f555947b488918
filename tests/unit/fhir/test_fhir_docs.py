"""docs/fhir.md documents every code the mapping reads."""

from __future__ import annotations

from pathlib import Path

from carepath_contracts import fhir_codes as C

FHIR_MD = Path(__file__).resolve().parents[3] / "docs" / "fhir.md"


def test_every_code_the_mapping_reads_is_documented() -> None:
    text = FHIR_MD.read_text(encoding="utf-8")
    tables = (C.REGION_CODES, C.RED_FLAG_CODES, C.PROCEDURE_CODES, C.ANESTHETIC_CODES,
              C.OBSERVATION_FIELDS, C.MODALITY_CODES, C.FINDING_CODES)
    missing = []
    for table in tables:
        for system, code in table:
            if system.startswith(C.CAREPATH):
                short = system.rsplit("/", 1)[-1]
                if f"carepath/{short}#{code}" not in text and f"#{code}`" not in text \
                        and f"`{code}`" not in text:
                    missing.append(f"{short}#{code}")
            elif code not in text:
                missing.append(f"{system}|{code}")
    for _system, code in (C.RELIEF_PERCENT, C.RELIEF_DURATION, C.TECHNICALLY_ADEQUATE):
        if f"carepath/observation#{code}" not in text:
            missing.append(code)
    assert not missing, f"codes missing from docs/fhir.md: {missing}"
