"""The pluggy plugin system: hookspecs, the manager, and the venue contract."""

from pipeline.plugins.hookspecs import hookimpl
from pipeline.plugins.manager import build_venues, make_plugin_manager, venue_specs
from pipeline.plugins.venue import (
    Fill,
    StepRejected,
    Submission,
    TransientVenueError,
    Venue,
    VenueContext,
    VenueError,
    VenueSpec,
)

__all__ = [
    "Fill",
    "StepRejected",
    "Submission",
    "TransientVenueError",
    "Venue",
    "VenueContext",
    "VenueError",
    "VenueSpec",
    "build_venues",
    "hookimpl",
    "make_plugin_manager",
    "venue_specs",
]
