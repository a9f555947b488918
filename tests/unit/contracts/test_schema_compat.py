"""The event contract in CI: compatible schemas, a fresh AsyncAPI document and catalog.

1. Each event body's current JSON Schema (from its pydantic model) is backward compatible with
   its last released version, committed in docs/schemas/<type>.json: a consumer on the new
   schema reads every event written under the old one. Rules: no removed field, no newly
   required field, no narrowed type, enum or constraint; a new optional field is fine.
2. The committed AsyncAPI documents (docs/asyncapi/*.yaml) and the generated catalog section of
   docs/events.md equal what `carepath asyncapi` generates now.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from types import CodeType
from typing import Any, ClassVar

import pytest
import yaml

from carepath.asyncapi_command import (
    ASYNCAPI_DIR,
    EVENTS_MD,
    SCHEMAS_DIR,
    SERVICES,
    build_documents,
    doc_models,
    doc_settings,
    event_schemas,
    generated_files,
    stale_files,
    subscriptions,
)
from carepath.asyncapi_docs import DLQ_HEADERS, EVENTS, PUBLISHES
from carepath_contracts.events import BODY_MODELS

Schema = dict[str, Any]
_NUMBER_TYPES = {"integer": {"integer"}, "number": {"integer", "number"}}

# -- the compatibility check ------------------------------------------------------------------


def _resolve(node: Schema, root: Schema) -> Schema:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = {**root.get("$defs", {})[name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _alternatives(node: Schema, root: Schema) -> list[Schema]:
    node = _resolve(node, root)
    for key in ("anyOf", "oneOf"):
        if key in node:
            return [alt for sub in node[key] for alt in _alternatives(sub, root)]
    return [node]


def _types(node: Schema) -> set[str] | None:
    if "const" in node:
        value = node["const"]
        return {"null" if value is None else "boolean" if isinstance(value, bool)
                else "integer" if isinstance(value, int) else "number"
                if isinstance(value, float) else "string"}
    t = node.get("type")
    if t is None:
        return None  # any type
    return set(t) if isinstance(t, list) else {t}


def _values(node: Schema) -> set[Any] | None:
    if "const" in node:
        return {json.dumps(node["const"])}
    if "enum" in node:
        return {json.dumps(v) for v in node["enum"]}
    return None


def _accepts_types(new: set[str] | None, old: set[str] | None) -> bool:
    if new is None:
        return True
    if old is None:
        return False
    widened = set().union(*(_NUMBER_TYPES.get(t, {t}) for t in new))
    return old <= widened


def incompatibilities(old: Schema, new: Schema, old_root: Schema | None = None,
                      new_root: Schema | None = None, path: str = "$") -> list[str]:
    """Why a reader using ``new`` could refuse something valid under ``old`` (empty: none)."""
    old_root = old if old_root is None else old_root
    new_root = new if new_root is None else new_root
    old_alts, new_alts = _alternatives(old, old_root), _alternatives(new, new_root)
    if len(old_alts) > 1 or len(new_alts) > 1:
        problems: list[str] = []
        for index, alt in enumerate(old_alts):
            tries = [incompatibilities(alt, cand, old_root, new_root, path) for cand in new_alts]
            if all(tries):
                best = min(tries, key=len)
                problems.append(f"{path}: variant {index} ({alt.get('title') or alt.get('type')}) "
                                f"is no longer accepted: {'; '.join(best)}")
        return problems
    o, n = old_alts[0], new_alts[0]
    problems = []
    if not _accepts_types(_types(n), _types(o)):
        return [f"{path}: type narrowed from {_types(o)} to {_types(n)}"]
    old_values, new_values = _values(o), _values(n)
    if new_values is not None and (old_values is None or not old_values <= new_values):
        lost = sorted(old_values - new_values) if old_values is not None else ["(any)"]
        problems.append(f"{path}: enum narrowed, no longer accepts {', '.join(lost)}")
    for key, tighter in (("minimum", max), ("exclusiveMinimum", max), ("minLength", max),
                         ("minItems", max), ("maximum", min), ("exclusiveMaximum", min),
                         ("maxLength", min), ("maxItems", min)):
        if key in n and (key not in o or tighter(o[key], n[key]) != o[key]):
            problems.append(f"{path}: {key} narrowed from {o.get(key)} to {n[key]}")
    for key in ("pattern", "format"):
        if key in n and n[key] != o.get(key):
            problems.append(f"{path}: {key} {n[key]!r} added or changed")
    old_props, new_props = o.get("properties", {}), n.get("properties", {})
    for name in old_props:
        if name not in new_props:
            problems.append(f"{path}.{name}: field removed")
        else:
            problems += incompatibilities(old_props[name], new_props[name], old_root, new_root,
                                          f"{path}.{name}")
    for name in sorted(set(n.get("required", [])) - set(o.get("required", []))):
        problems.append(f"{path}.{name}: field is newly required")
    if n.get("additionalProperties") is False and o.get("additionalProperties") is not False \
            and o.get("type") == "object":
        problems.append(f"{path}: no longer accepts additional properties")
    elif isinstance(o.get("additionalProperties"), dict) and \
            isinstance(n.get("additionalProperties"), dict):
        problems += incompatibilities(o["additionalProperties"], n["additionalProperties"],
                                      old_root, new_root, f"{path}.*")
    if "items" in o and "items" in n:
        problems += incompatibilities(o["items"], n["items"], old_root, new_root, f"{path}[]")
    return problems


def _obj(required: list[str] | None = None, **props: Schema) -> Schema:
    return {"type": "object", "additionalProperties": False, "properties": props,
            "required": required or []}


STR: Schema = {"type": "string"}
OPT_STR: Schema = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}


@pytest.mark.parametrize(("old", "new", "problem"), [
    (_obj(["a"], a=STR, b=OPT_STR), _obj(["a"], a=STR), "field removed"),
    (_obj(["a"], a=STR, b=OPT_STR), _obj(["a", "b"], a=STR, b=OPT_STR), "newly required"),
    (_obj(a=OPT_STR), _obj(a=STR), "no longer accepted"),
    (_obj(a={"enum": ["x", "y"], "type": "string"}), _obj(a={"enum": ["x"], "type": "string"}),
     "enum narrowed"),
    (_obj(a=STR), _obj(a={"enum": ["x"], "type": "string"}), "enum narrowed"),
    (_obj(a={"type": "number"}), _obj(a={"type": "integer"}), "type narrowed"),
    (_obj(a={"type": "integer", "maximum": 27}), _obj(a={"type": "integer", "maximum": 20}),
     "maximum narrowed"),
    (_obj(a=STR), _obj(a={"type": "string", "format": "date-time"}), "format"),
    (_obj(a={"type": "array", "items": STR}), _obj(a={"type": "array", "items":
                                                      {"type": "integer"}}), "type narrowed"),
])
def test_the_check_finds_breaking_changes(old: Schema, new: Schema, problem: str) -> None:
    found = incompatibilities(old, new)
    assert any(problem in p for p in found), found


@pytest.mark.parametrize(("old", "new"), [
    (_obj(["a"], a=STR), _obj(["a"], a=STR, b=OPT_STR)),  # a new optional field
    (_obj(a={"enum": ["x"], "type": "string"}), _obj(a={"enum": ["x", "y"], "type": "string"})),
    (_obj(a={"type": "integer"}), _obj(a={"type": "number"})),
    (_obj(["a"], a=STR), _obj([], a=OPT_STR)),  # required -> optional, nullable
    (_obj(a={"type": "integer", "maximum": 20}), _obj(a={"type": "integer", "maximum": 27})),
])
def test_the_check_accepts_compatible_changes(old: Schema, new: Schema) -> None:
    assert incompatibilities(old, new) == []


def test_the_check_follows_refs_and_discriminated_unions() -> None:
    schemas = event_schemas()
    outcome = schemas["carepath.outcome.reported.v1"]
    assert incompatibilities(outcome, outcome) == []
    narrowed = json.loads(json.dumps(outcome))
    narrowed["$defs"]["PainScoreOutcome"]["properties"]["pain_nrs"]["maximum"] = 5
    assert any("pain_nrs: maximum narrowed" in p for p in incompatibilities(outcome, narrowed))
    dropped = json.loads(json.dumps(outcome))
    del dropped["$defs"]["RfaOutcome"]["properties"]["relief_duration_months"]
    assert any("relief_duration_months: field removed" in p
               for p in incompatibilities(outcome, dropped))


# -- the released schemas ---------------------------------------------------------------------


def released(event_type: str) -> Schema:
    path = SCHEMAS_DIR / f"{event_type}.json"
    assert path.exists(), (f"{event_type} has no released schema: run `carepath asyncapi "
                           "--release-schemas` and commit docs/schemas/")
    data: Schema = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("event_type", sorted(BODY_MODELS))
def test_each_event_schema_is_backward_compatible_with_its_release(event_type: str) -> None:
    current = event_schemas()[event_type]
    problems = incompatibilities(released(event_type), current)
    assert not problems, (
        f"{event_type} is no longer backward compatible with docs/schemas/{event_type}.json: "
        f"{problems}. Publish a breaking change as a new .vN type alongside this one.")


def test_every_released_type_is_still_published_or_deprecated() -> None:
    """A released type's schema may not silently disappear from the registry."""
    released_types = {p.stem for p in SCHEMAS_DIR.glob("*.json")}
    assert released_types <= set(BODY_MODELS), released_types - set(BODY_MODELS)


# -- the AsyncAPI documents and the catalog ---------------------------------------------------


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    return build_documents()


def test_the_committed_asyncapi_documents_and_catalog_are_fresh() -> None:
    files = generated_files(ASYNCAPI_DIR, EVENTS_MD)
    assert {p.name for p in files} == {f"{s}.yaml" for s in SERVICES} | {"events.md"}
    stale = stale_files(files)
    assert not stale, (f"stale generated files {[str(p) for p in stale]}: run "
                       "`carepath asyncapi` and commit the result")


def _resolve_pointer(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _all_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _all_refs(v)]
    return []


def test_every_reference_in_the_documents_resolves(documents: dict[str, Any]) -> None:
    for service, doc in documents.items():
        assert doc["asyncapi"] == "3.0.0"
        for ref in _all_refs(doc):
            assert ref.startswith("#/"), (service, ref)
            _resolve_pointer(doc, ref)  # KeyError if dangling
        for key, op in doc["operations"].items():
            _resolve_pointer(doc, op["channel"]["$ref"])
            for msg in op["messages"]:
                assert msg["$ref"].startswith(op["channel"]["$ref"] + "/messages/"), (service, key)


def test_every_published_event_is_documented_with_key_headers_and_example(
        documents: dict[str, Any]) -> None:
    for service, pubs in PUBLISHES.items():
        doc = documents[service]
        for pub in pubs:
            channel = doc["channels"][pub.topic.suffix]
            assert channel["bindings"]["kafka"]["partitions"] == pub.topic.partitions
            policy = channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"]
            assert policy == (["compact"] if pub.topic.compacted else ["delete"])
            assert any(op["action"] == "send" and op["channel"]["$ref"] ==
                       f"#/channels/{pub.topic.suffix}" for op in doc["operations"].values())
            for event_type in pub.event_types:
                message = doc["components"]["messages"][event_type]
                assert message["headers"]["properties"]["ce_type"]["const"] == event_type
                assert message["bindings"]["kafka"]["key"]["description"] == \
                    EVENTS[event_type].key
                example = message["examples"][0]
                assert example["headers"]["ce_type"] == event_type
                doc_models()[event_type].model_validate(example["payload"])


def test_consumers_are_read_from_the_real_subscribers(documents: dict[str, Any]) -> None:
    """Each receive operation is a subscriber the service's create_app registered."""
    for service in SERVICES:
        module = __import__(f"carepath_{service}.main", fromlist=["create_app"])
        app = module.create_app(doc_settings())
        rt = app.state.runtime
        subs = subscriptions(rt)
        asyncio.run(rt.aclose())
        receives = {op["channel"]["$ref"].rsplit("/", 1)[-1]: op
                    for op in documents[service]["operations"].values()
                    if op["action"] == "receive"}
        assert {s.topic.split(".", 1)[1] for s in subs} == set(receives)
        for sub in subs:
            op = receives[sub.topic.split(".", 1)[1]]
            assert op["bindings"]["kafka"]["groupId"]["enum"] == [sub.group]
            assert [m["$ref"].rsplit("/", 1)[-1] for m in op["messages"]] == \
                list(sub.accepted_types)


def test_the_dead_letter_headers_are_those_the_consumer_writes() -> None:
    """asyncapi_docs.DLQ_HEADERS documents exactly what consumer.dead_letter adds."""
    from carepath_runtime.consumer import dead_letter

    published: dict[str, Any] = {}

    class Broker:
        async def publish(self, value: bytes, topic: str, *, key: bytes | None,
                          headers: dict[str, str]) -> None:
            published.update(topic=topic, key=key, headers=headers)

    class Record:
        topic, partition, offset, key, value = "ns.episodes", 2, 17, b"ep-1", b"{}"

    class Msg:
        raw_message = Record()
        headers: ClassVar[dict[str, str]] = {"ce_id": "x"}

    asyncio.run(dead_letter(Broker(), "ns.dlq.pathway", Msg(),  # type: ignore[arg-type]
                            group="g", kind="rejected", cause="E: why", attempts=1))
    added = {h for h in published["headers"] if h.startswith("dlq_")}
    assert added == set(DLQ_HEADERS)


def test_the_example_subscriber_in_the_catalog_compiles() -> None:
    text = EVENTS_MD.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/events.md lost its example subscriber"
    code = compile(blocks[0], "events.md example", "exec")

    def names(c: CodeType) -> set[str]:
        nested = [k for k in c.co_consts if isinstance(k, CodeType)]
        return set(c.co_names).union(*(names(k) for k in nested))

    assert {"commit", "getmany"} & names(code) == {"commit"}  # commits, per record
    for literal in re.findall(r'"(carepath\.[a-z_.]+\.v\d+)"', blocks[0]):
        assert literal in BODY_MODELS


def test_the_committed_yaml_parses() -> None:
    for service in SERVICES:
        doc = yaml.safe_load((ASYNCAPI_DIR / f"{service}.yaml").read_text(encoding="utf-8"))
        assert doc["info"]["title"] == f"carepath-{service}"


def test_released_schemas_are_files_of_this_repo() -> None:
    assert Path(__file__).resolve().parents[3] / "docs" / "schemas" == SCHEMAS_DIR
