"""``sep schema``: the JSON Schema of every wire model, for UIs and producers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.cli.common import examples

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def _cmd_schema(args: argparse.Namespace) -> int:
    from pipeline.models.schema import export_schemas

    written = export_schemas(Path(args.out))
    print(f"wrote {len(written)} JSON Schemas to {args.out}")
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "schema",
        help="export the JSON Schema of every wire model",
        description="Write one JSON Schema file per wire model (intent "
        "submission, event envelope, each event payload) for UIs and producers.",
        **examples("sep schema --out schemas/"),
    )
    p.add_argument("--out", default="schemas", help="directory to write to (default: schemas)")
    p.set_defaults(handler=_cmd_schema)
