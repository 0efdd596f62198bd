"""JSON Schema export: every wire model, described as it is on the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.models import EVENT_TYPES
from pipeline.models.events import Event
from pipeline.models.intent import IntentSubmission
from pipeline.models.schema import export_schemas, schema_of, wire_models


def test_every_event_type_has_a_payload_schema() -> None:
    names = set(wire_models())
    assert {f"payload.{topic}" for topic in EVENT_TYPES} <= names
    assert {"IntentSubmission", "Event"} <= names
    assert len(names) == len(EVENT_TYPES) + 2


def test_schemas_describe_the_wire_names() -> None:
    props = schema_of(IntentSubmission)["properties"]
    assert isinstance(props, dict)
    assert {"strategyId", "clientIntentId", "type", "assets", "constraints"} <= set(props)
    assert "strategy_id" not in props


def test_envelope_schema_requires_the_envelope_fields() -> None:
    schema = schema_of(Event)
    assert set(schema["required"]) >= {
        "eventId",
        "timestamp",
        "topic",
        "correlationId",
        "seq",  # type: ignore[arg-type]
        "payload",
    }


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def test_export_writes_one_self_contained_file_per_model(tmp_path: Path) -> None:
    written = export_schemas(tmp_path / "schemas")
    assert {p.name for p in written} == {f"{n}.schema.json" for n in wire_models()}
    for path in written:
        schema = json.loads(path.read_text())
        assert schema["type"] == "object", path.name
        # Every $ref resolves inside the file: a UI can use each file alone.
        defs = set(schema.get("$defs", {}))
        for ref in _refs(schema):
            assert ref.startswith("#/$defs/"), (path.name, ref)
            assert ref.removeprefix("#/$defs/") in defs, (path.name, ref)


def test_export_is_stable(tmp_path: Path) -> None:
    first = {p.name: p.read_text() for p in export_schemas(tmp_path / "a")}
    second = {p.name: p.read_text() for p in export_schemas(tmp_path / "b")}
    assert first == second
