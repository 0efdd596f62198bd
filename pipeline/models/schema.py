"""JSON Schema export of every wire model (schema-first: the UI and producers use these)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from pipeline.models.events import PAYLOAD_TYPES, Event
from pipeline.models.intent import IntentSubmission


def wire_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {"IntentSubmission": IntentSubmission, "Event": Event}
    for topic, model in PAYLOAD_TYPES.items():
        models[f"payload.{topic}"] = model
    return models


def schema_of(model: type[BaseModel]) -> dict[str, object]:
    # by_alias: the schema describes the wire (camelCase), not the Python attributes.
    return model.model_json_schema(by_alias=True, mode="validation")


def export_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in wire_models().items():
        path = out_dir / f"{name}.schema.json"
        path.write_text(json.dumps(schema_of(model), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
