"""FHIR R4 Bundle in, episode out, with a report of everything that could not be mapped (pure).

:func:`map_bundle` validates the Bundle with ``fhir.resources`` (R4B models), then reads:

* ``Condition``: the spinal region (``bodySite`` or ``code``) and red flags;
* ``Procedure`` (completed): facet injections, medial branch blocks, RFAs and an SCS trial,
  oldest first, with their outcomes from ``Observation``\\s linked by ``partOf`` (or ``focus``):
  relief percent, relief duration, technical adequacy;
* ``Observation`` (final, amended, corrected): pain NRS, PHQ-9, GAD-7 and the other scalar
  episode fields; the most recent one of each code wins, the others are reported superseded;
* ``ImagingStudy`` (available) and ``DiagnosticReport`` (final...): imaging done, findings.

Nothing is dropped silently: a resource, element, code, status or value that does not become
part of the episode is reported as ``{resource, path, reason}``. Patient identity never enters
the episode: a ``Patient`` resource and every ``subject`` reference are dropped by design (and
reported as such). docs/fhir.md documents every code and rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from carepath_contracts import fhir_codes
from carepath_contracts.episode import (
    Episode,
    FacetInjection,
    MedialBranchBlock,
    RfaProcedure,
    ScsTrial,
    validation_errors,
)
from carepath_contracts.episode_id import EPISODE_ID_RULE, is_episode_id
from carepath_intake.fhir.values import (
    Json,
    NotMappable,
    codings,
    describe,
    effective_time,
    first_code,
    performed_time,
    read_boolean,
    read_deficit,
    read_duration,
    read_integer,
    read_percent,
    value_key,
)

__all__ = ["BundleMapping", "InvalidBundle", "Unmapped", "map_bundle", "validate_bundle"]


@dataclass(frozen=True)
class Unmapped:
    """Something of the Bundle that is not part of the episode, and why."""

    resource: str
    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"resource": self.resource, "path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class BundleMapping:
    """The episode (``None`` if none could be formed, see ``errors``) and the report."""

    episode: Episode | None
    unmapped: tuple[Unmapped, ...]
    errors: tuple[dict[str, str], ...] = ()


class InvalidBundle(ValueError):
    """Not a valid FHIR R4 Bundle; ``errors`` name each offending path."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5]))
        self.errors = errors


def validate_bundle(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate with fhir.resources (R4B) and return the Bundle as normalised FHIR JSON."""
    from fhir.resources.R4B.bundle import Bundle

    if data.get("resourceType") != "Bundle":
        raise InvalidBundle([{"field": "resourceType", "reason": "must be 'Bundle'"}])
    errors = _resource_type_errors(data)
    if errors:
        raise InvalidBundle(errors)
    try:
        bundle = Bundle.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidBundle(validation_errors(exc, show_input=False)) from exc
    except (KeyError, TypeError, ValueError) as exc:  # fhir.resources' own lookups
        raise InvalidBundle([{"field": "(root)", "reason": "not a valid FHIR R4 Bundle"}]
                            ) from exc
    dumped: dict[str, Any] = bundle.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _resource_type_errors(data: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each entry whose ``resource.resourceType`` FHIR R4 does not define, by path."""
    from fhir.resources.R4B import get_fhir_model_class

    entries = data.get("entry")
    if not isinstance(entries, list):
        return []
    errors: list[dict[str, str]] = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        known = isinstance(kind, str)
        if known:
            try:
                get_fhir_model_class(kind)
            except (KeyError, ValueError, AttributeError, ImportError):
                known = False
        if not known:
            errors.append({"field": f"entry[{i}].resource.resourceType",
                           "reason": "not a FHIR R4 resource type"})
    return errors


def map_bundle(data: Mapping[str, Any]) -> BundleMapping:
    """Map a FHIR R4 Bundle (JSON) to an episode. Raises :class:`InvalidBundle`."""
    return _Mapper(validate_bundle(data)).run()


# -- elements read or deliberately set aside, per resource type ------------------------------

# Context every resource may carry: identity, provenance and narrative. Not clinical content
# of the episode; ``subject``/``patient`` are dropped by design (reported once per Bundle).
_CONTEXT = frozenset({
    "resourceType", "id", "meta", "implicitRules", "language", "text", "identifier",
    "subject", "patient", "encounter", "performer", "recorder", "asserter", "basedOn",
    "location", "resultsInterpreter", "referrer", "interpreter", "endpoint",
})
_READ: dict[str, frozenset[str]] = {
    "Condition": frozenset({"code", "bodySite", "clinicalStatus", "verificationStatus",
                            "category", "recordedDate"}),
    "Procedure": frozenset({"status", "code", "category", "performedDateTime",
                            "performedPeriod", "bodySite", "usedCode", "reasonCode",
                            "reasonReference"}),
    "Observation": frozenset({"status", "code", "category", "effectiveDateTime",
                              "effectiveInstant", "effectivePeriod", "issued", "partOf",
                              "focus", "interpretation", "referenceRange",
                              *(f"value{t}" for t in ("Quantity", "CodeableConcept", "String",
                                                      "Boolean", "Integer"))}),
    "DiagnosticReport": frozenset({"status", "code", "category", "conclusionCode",
                                   "imagingStudy", "result", "effectiveDateTime",
                                   "effectivePeriod", "issued"}),
    "ImagingStudy": frozenset({"status", "modality", "series", "started", "numberOfSeries",
                               "numberOfInstances", "procedureCode", "reasonCode"}),
}


@dataclass
class _Value:
    """One candidate value with where it came from; the latest (then last) one wins."""

    value: Any
    when: datetime | None
    order: int
    resource: str
    path: str
    code: str = ""

    @property
    def rank(self) -> tuple[datetime, int]:
        return (self.when or datetime.min.replace(tzinfo=UTC), self.order)


@dataclass
class _Procedure:
    kind: str
    when: datetime | None
    order: int
    resource: str
    path: str
    values: dict[str, _Value] = field(default_factory=dict)
    outcomes: dict[str, list[_Value]] = field(default_factory=dict)


_ITEM_MODELS: dict[str, type[BaseModel]] = {
    "facet_injection": FacetInjection,
    "medial_branch_block": MedialBranchBlock,
    "rfa": RfaProcedure,
    "scs_trial": ScsTrial,
}
_LIST_FIELDS = {
    "facet_injection": "facet_injections",
    "medial_branch_block": "medial_branch_blocks",
    "rfa": "rfa_history",
}


def _check(model: type[BaseModel], name: str, value: Any, base: dict[str, Any]) -> None:
    """Validate one field against the episode contract (NotMappable with the reason)."""
    try:
        model.model_validate({**base, name: value})
    except ValidationError as exc:
        raise NotMappable(validation_errors(exc)[0]["reason"]) from exc


class _Mapper:
    def __init__(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self.entries: list[tuple[int, dict[str, Any]]] = [
            (i, e["resource"]) for i, e in enumerate(bundle.get("entry", []))
            if isinstance(e.get("resource"), dict)
        ]
        self.refs: dict[str, int] = {}
        for i, entry in enumerate(bundle.get("entry", [])):
            res = entry.get("resource") or {}
            if entry.get("fullUrl"):
                self.refs[str(entry["fullUrl"])] = i
            if res.get("id"):
                self.refs[f"{res.get('resourceType')}/{res['id']}"] = i
        self.unmapped: list[Unmapped] = []
        self.region: _Value | None = None
        self.red_flags: list[_Value] = []
        self.scalars: dict[str, list[_Value]] = {}
        self.procedures: dict[int, _Procedure] = {}
        self.imaging_done: list[_Value] = []
        self.findings: list[_Value] = []
        self.pending_outcomes: list[tuple[int, dict[str, Any]]] = []

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def label(i: int, res: Json) -> str:
        rtype = str(res.get("resourceType", "resource"))
        if rtype != "Patient" and res.get("id"):
            return f"{rtype}/{res['id']}"
        return f"{rtype} (entry[{i}])"

    @staticmethod
    def path(i: int, element: str = "") -> str:
        return f"Bundle.entry[{i}].resource" + (f".{element}" if element else "")

    def report(self, i: int, res: Json, element: str, reason: str) -> None:
        self.unmapped.append(Unmapped(self.label(i, res), self.path(i, element), reason))

    def resolve(self, reference: Any) -> int | None:
        if isinstance(reference, Mapping) and isinstance(reference.get("reference"), str):
            return self.refs.get(reference["reference"])
        return None

    def leftovers(self, i: int, res: Json) -> None:
        """Report every element of a read resource that is neither read nor context."""
        read = _READ.get(str(res.get("resourceType")), frozenset())
        for key, value in res.items():
            if key in _CONTEXT or key in read:
                continue
            if key == "extension":
                for n, ext in enumerate(value if isinstance(value, list) else []):
                    url = ext.get("url", "?") if isinstance(ext, Mapping) else "?"
                    self.report(i, res, f"extension[{n}]", f"extension {url} is not mapped")
                continue
            self.report(i, res, key, "element is not mapped to the episode")

    # -- the passes ------------------------------------------------------------------------

    def run(self) -> BundleMapping:
        handlers: dict[str, Callable[[int, dict[str, Any]], None]] = {
            "Procedure": self.procedure,
            "Condition": self.condition,
            "ImagingStudy": self.imaging_study,
            "DiagnosticReport": self.diagnostic_report,
            "Observation": self.observation,
        }
        has_subject = False
        # Procedures first: outcome Observations refer to them.
        ordered = sorted(self.entries, key=lambda e: e[1].get("resourceType") != "Procedure")
        for i, res in ordered:
            rtype = str(res.get("resourceType"))
            has_subject = has_subject or "subject" in res or "patient" in res
            if rtype == "Patient":
                self.report(i, res, "", "dropped by design: patient identity never enters "
                            "Carepath (the episode is pseudonymous)")
                continue
            handler = handlers.get(rtype)
            if handler is None:
                self.report(i, res, "", f"resource type {rtype} is not mapped to the episode")
                continue
            if res.get("modifierExtension"):
                self.report(i, res, "modifierExtension", "a modifier extension Carepath does "
                            "not know may change the meaning; the resource is not mapped")
                continue
            handler(i, res)
        for i, res in self.pending_outcomes:
            self.outcome(i, res)
        if has_subject:
            self.unmapped.append(Unmapped(
                "Bundle", "Bundle.entry.resource.subject",
                "patient references dropped by design: the episode is pseudonymous",
            ))
        return self.assemble()

    def condition(self, i: int, res: dict[str, Any]) -> None:
        verification = {c for _, c in codings(res.get("verificationStatus"))}
        if verification & fhir_codes.CONDITION_NOT_A_DIAGNOSIS:
            self.report(i, res, "verificationStatus",
                        f"verification status {sorted(verification)[0]}: not a diagnosis")
            return
        self.leftovers(i, res)
        label = self.label(i, res)
        region, region_path = None, ""
        for n, site in enumerate(res.get("bodySite", [])):
            region = first_code(site, fhir_codes.REGION_CODES)
            if region:
                region_path = f"bodySite[{n}]"
                break
        from_code = first_code(res.get("code"), fhir_codes.REGION_CODES)
        if region is None and from_code is not None:
            region, region_path = from_code, "code"
        red_flag = first_code(res.get("code"), fhir_codes.RED_FLAG_CODES)
        if region is not None:
            if self.region is None:
                self.region = _Value(region, None, i, label, self.path(i, region_path))
            elif self.region.value != region:
                self.report(i, res, region_path, f"region {region} conflicts with region "
                            f"{self.region.value} from {self.region.resource}")
        if red_flag is not None:
            clinical = {c for _, c in codings(res.get("clinicalStatus"))}
            if clinical & fhir_codes.CONDITION_NOT_CURRENT:
                self.report(i, res, "clinicalStatus", f"red flag {red_flag} is "
                            f"{sorted(clinical)[0]}, not a current red flag")
            else:
                self.red_flags.append(_Value(red_flag, None, i, label, self.path(i, "code")))
        if red_flag is None and from_code is None and "code" in res:
            if region is None:
                self.report(i, res, "code", f"condition {describe(res['code'])} gives neither "
                            "the spinal region nor a red flag")
            else:
                self.report(i, res, "code", f"diagnosis {describe(res['code'])} is not "
                            "part of the episode (only its region is)")
        elif region is None and red_flag is None:
            self.report(i, res, "", "condition gives neither the spinal region nor a red flag")

    def procedure(self, i: int, res: dict[str, Any]) -> None:
        kind = first_code(res.get("code"), fhir_codes.PROCEDURE_CODES)
        if kind is None:
            self.report(i, res, "code", f"procedure {describe(res.get('code'))} is not mapped "
                        f"(use {fhir_codes.PROCEDURE} codes)")
            return
        status = str(res.get("status"))
        if status not in fhir_codes.PROCEDURE_DONE:
            self.report(i, res, "status", f"status {status}: only completed procedures are "
                        "part of the episode's history")
            return
        self.leftovers(i, res)
        label = self.label(i, res)
        proc = _Procedure(kind, performed_time(res), i, label, self.path(i))
        self.procedures[i] = proc
        sites = res.get("bodySite", [])
        if kind == "facet_injection" and sites:
            levels = [s.get("text") or next(
                (c.get("display") or c.get("code") for c in s.get("coding", [])), None)
                for s in sites]
            if all(levels):
                proc.values["levels"] = _Value(levels, None, i, label, self.path(i, "bodySite"))
            else:
                self.report(i, res, "bodySite", "a level needs text or a coding")
        elif sites:
            self.report(i, res, "bodySite", "levels are part of the episode for facet "
                        "injections only")
        used = res.get("usedCode", [])
        for n, concept in enumerate(used):
            anesthetic = first_code(concept, fhir_codes.ANESTHETIC_CODES)
            if kind == "medial_branch_block" and anesthetic and "anesthetic" not in proc.values:
                proc.values["anesthetic"] = _Value(
                    anesthetic, None, i, label, self.path(i, f"usedCode[{n}]"))
            else:
                self.report(i, res, f"usedCode[{n}]", f"{describe(concept)} is not mapped "
                            "(the episode records the anesthetic of a medial branch block)")

    def observation(self, i: int, res: dict[str, Any]) -> None:
        status = str(res.get("status"))
        if status not in fhir_codes.OBSERVATION_DONE:
            self.report(i, res, "status", f"status {status}: only final, amended or corrected "
                        "observations are mapped")
            return
        coded = list(codings(res.get("code")))
        if any(c in fhir_codes.OUTCOME_CODES for c in coded):
            self.pending_outcomes.append((i, res))
            return
        fields = fhir_codes.OBSERVATION_FIELDS
        spec = next((fields[c] for c in coded if c in fields), None)
        if spec is None:
            self.report(i, res, "code", f"observation {describe(res.get('code'))} is not "
                        "mapped to the episode")
            return
        name, kind = spec
        vkey = value_key(res) or "value[x]"
        try:
            value = _read(res, kind)
            if kind != fhir_codes.NO_RED_FLAGS:
                _check(Episode, name, value, {"region": "lumbar"})
        except NotMappable as exc:
            self.report(i, res, vkey, f"{name}: {exc}")
            return
        self.leftovers(i, res)
        code = describe(res.get("code"))
        self.scalars.setdefault(name, []).append(
            _Value(value, effective_time(res), i, self.label(i, res), self.path(i, vkey), code))

    def outcome(self, i: int, res: dict[str, Any]) -> None:
        targets = [self.resolve(r) for r in [*res.get("partOf", []), *res.get("focus", [])]]
        found = [t for t in targets if t is not None]
        if not found:
            self.report(i, res, "partOf", "a procedure outcome must point to its Procedure in "
                        "this Bundle (Observation.partOf)")
            return
        proc = self.procedures.get(found[0])
        if proc is None:
            self.report(i, res, "partOf", "its Procedure is not part of the episode (see that "
                        "Procedure's entry)")
            return
        coded = set(codings(res.get("code")))
        vkey = value_key(res) or "value[x]"
        value: Any
        try:
            if fhir_codes.RELIEF_PERCENT in coded:
                name, value = "relief_percent", read_percent(res)
            elif fhir_codes.TECHNICALLY_ADEQUATE in coded and proc.kind == "facet_injection":
                name, value = "technically_adequate", read_boolean(res)
            elif fhir_codes.RELIEF_DURATION in coded and proc.kind == "facet_injection":
                name, value = "relief_duration_weeks", read_duration(res, "wk")
            elif fhir_codes.RELIEF_DURATION in coded and proc.kind == "rfa":
                name, value = "relief_duration_months", read_duration(res, "mo")
            else:
                raise NotMappable(f"{describe(res.get('code'))} is not an outcome the episode "
                                  f"records for a {proc.kind.replace('_', ' ')}")
            _check(_ITEM_MODELS[proc.kind], name, value, {})
        except NotMappable as exc:
            self.report(i, res, vkey, str(exc))
            return
        self.leftovers(i, res)
        proc.outcomes.setdefault(name, []).append(_Value(
            value, effective_time(res), i, self.label(i, res), self.path(i, vkey),
            describe(res.get("code"))))

    def imaging_study(self, i: int, res: dict[str, Any]) -> None:
        status = str(res.get("status"))
        if status not in fhir_codes.IMAGING_STUDY_DONE:
            self.report(i, res, "status", f"status {status}: only available studies are mapped")
            return
        self.leftovers(i, res)
        modality = first_code({"coding": res.get("modality", [])}, fhir_codes.MODALITY_CODES)
        path = "modality"
        if modality is None:
            for n, series in enumerate(res.get("series", [])):
                modality = first_code(series.get("modality"), fhir_codes.MODALITY_CODES)
                if modality:
                    path = f"series[{n}].modality"
                    break
        if modality is None:
            self.report(i, res, "modality", "no modality Carepath maps (DICOM MR, CT, CR, DX, "
                        "RG, NM or a Carepath imaging-modality code)")
            return
        self.imaging_done.append(_Value(modality, None, i, self.label(i, res), self.path(i, path)))

    def diagnostic_report(self, i: int, res: dict[str, Any]) -> None:
        status = str(res.get("status"))
        if status not in fhir_codes.REPORT_DONE:
            self.report(i, res, "status", f"status {status}: only final reports are mapped")
            return
        modality = first_code(res.get("code"), fhir_codes.MODALITY_CODES)
        studies = [self.resolve(r) for r in res.get("imagingStudy", [])]
        conclusions = res.get("conclusionCode", [])
        categories = {c for _, c in codings({"coding": [
            cc for cat in res.get("category", []) for cc in cat.get("coding", [])]})}
        if modality is None and not any(s is not None for s in studies) \
                and not conclusions and "RAD" not in categories:
            self.report(i, res, "code", f"report {describe(res.get('code'))} is not an imaging "
                        "report Carepath maps")
            return
        self.leftovers(i, res)
        label = self.label(i, res)
        if modality is not None:
            self.imaging_done.append(_Value(modality, None, i, label, self.path(i, "code")))
        elif not any(s is not None for s in studies):
            self.report(i, res, "code", "imaging modality unknown: imaging_done not recorded "
                        "(code the modality or reference the ImagingStudy)")
        for n, concept in enumerate(conclusions):
            finding = first_code(concept, fhir_codes.FINDING_CODES)
            if finding is None:
                self.report(i, res, f"conclusionCode[{n}]", f"finding {describe(concept)} is "
                            "not mapped")
            else:
                self.findings.append(
                    _Value(finding, None, i, label, self.path(i, f"conclusionCode[{n}]")))

    # -- assembly --------------------------------------------------------------------------

    def latest(self, candidates: list[_Value], what: str) -> _Value:
        chosen = max(candidates, key=lambda v: v.rank)
        for other in candidates:
            if other is not chosen:
                self.unmapped.append(Unmapped(other.resource, other.path, f"superseded: "
                                     f"{chosen.resource} is a later {what}"))
        return chosen

    def assemble(self) -> BundleMapping:
        data: dict[str, Any] = {}
        identifier = self.bundle.get("identifier") or {}
        if "value" in identifier:
            # The one episode-id rule: a present id is used as it is or refused, never
            # trimmed or replaced.
            if not is_episode_id(identifier["value"]):
                return BundleMapping(None, tuple(sorted(self.unmapped, key=_entry_order)), (
                    {"field": "identifier.value", "reason": f"the episode id must be "
                     f"{EPISODE_ID_RULE}"},))
            data["episode_id"] = identifier["value"]
        if self.region is None:
            errors = ({"field": "region", "reason": "no Condition of the Bundle gives the spinal "
                       "region (lumbar or cervical)"},)
            self.unmapped.sort(key=_entry_order)
            return BundleMapping(None, tuple(self.unmapped), errors)
        data["region"] = self.region.value
        for name, candidates in self.scalars.items():
            if name == "red_flags":
                continue
            data[name] = self.latest(candidates, f"observation of {name}").value
        if self.red_flags:
            data["red_flags"] = list(dict.fromkeys(v.value for v in self.red_flags))
            for v in self.scalars.get("red_flags", []):
                self.unmapped.append(Unmapped(v.resource, v.path, "contradicted by red-flag "
                                              "Conditions in the Bundle (they are kept)"))
        elif "red_flags" in self.scalars:
            self.latest(self.scalars["red_flags"], "red-flag screen")
            data["red_flags"] = []
        if self.imaging_done:
            data["imaging_done"] = list(dict.fromkeys(v.value for v in self.imaging_done))
        if self.findings:
            data["imaging_findings"] = list(dict.fromkeys(v.value for v in self.findings))
        by_kind: dict[str, list[_Procedure]] = {}
        for proc in self.procedures.values():
            by_kind.setdefault(proc.kind, []).append(proc)
        for kind, procs in by_kind.items():
            if all(p.when is not None for p in procs):
                procs.sort(key=lambda p: (p.when, p.order))
            else:
                procs.sort(key=lambda p: p.order)
            items = [self.item(p) for p in procs]
            if kind == "scs_trial":
                latest = max(procs, key=lambda p: (p.when or datetime.min.replace(tzinfo=UTC),
                                                   p.order))
                for p in procs:
                    if p is not latest:
                        self.unmapped.append(Unmapped(p.resource, p.path, "superseded: the "
                                             f"episode records one SCS trial ({latest.resource})"))
                data["scs_trial"] = items[procs.index(latest)]
            else:
                data[_LIST_FIELDS[kind]] = items
        self.unmapped.sort(key=_entry_order)
        try:
            episode = Episode.model_validate(data)
        except ValidationError as exc:  # pragma: no cover - every value was checked above
            return BundleMapping(None, tuple(self.unmapped), tuple(validation_errors(exc)))
        return BundleMapping(episode, tuple(self.unmapped))

    def item(self, proc: _Procedure) -> dict[str, Any]:
        out = {name: v.value for name, v in proc.values.items()}
        for name, candidates in proc.outcomes.items():
            out[name] = self.latest(candidates, f"{name} of {proc.resource}").value
        return out


def _read(res: Json, kind: str) -> Any:
    if kind == fhir_codes.INTEGER:
        return read_integer(res)
    if kind == fhir_codes.BOOLEAN:
        return read_boolean(res)
    if kind == fhir_codes.MONTHS:
        return read_duration(res, "mo")
    if kind == fhir_codes.WEEKS:
        return read_duration(res, "wk")
    if kind == fhir_codes.DEFICIT:
        return read_deficit(res)
    if kind == fhir_codes.NO_RED_FLAGS:
        if read_boolean(res):
            raise NotMappable("name each red flag as a Condition (red-flag codes) instead")
        return False
    raise NotMappable(f"unknown value kind {kind}")  # pragma: no cover


def _entry_order(u: Unmapped) -> tuple[int, str]:
    prefix = "Bundle.entry["
    if u.path.startswith(prefix):
        end = u.path.find("]")
        try:
            return (int(u.path[len(prefix):end]), u.path)
        except ValueError:
            pass
    return (1 << 30, u.path)
