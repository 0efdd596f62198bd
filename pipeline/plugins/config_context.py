"""What a plugin's config model may check against: the topology's asset registry, handed in as
pydantic's validation context (``model_validate(data, context={"assets": {symbol: Asset}})``,
as ``build_venues`` and ``check_plugins`` do)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationInfo

from pipeline.models.assets import Asset


def assets_in_context(info: ValidationInfo) -> Mapping[str, Asset] | None:
    """The asset registry in the validation context, or None (validated without one)."""
    context: Any = info.context
    if isinstance(context, Mapping):
        assets = context.get("assets")
        if isinstance(assets, Mapping):
            return assets
    return None


def known_asset(symbol: str, info: ValidationInfo) -> str:
    """``symbol`` if the registry (when given) has it; else a ValueError naming what it has."""
    assets = assets_in_context(info)
    if assets is not None and symbol not in assets:
        raise ValueError(f"unknown asset {symbol!r}; the topology has {sorted(assets)}")
    return symbol
