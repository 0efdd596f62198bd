"""``sep status``'s rendering: the mode first, so nobody mistakes paper fills for real ones."""

from __future__ import annotations

from pipeline.status import render_status


def test_the_mode_leads_the_status() -> None:
    status = {
        "mode": "paper",
        "workers": 2,
        "problems": [],
        "intents": 0,
        "active": 0,
        "states": {},
        "success_rate": None,
        "event_store": "postgresql (plain table)",
        "events": {},
    }
    first = render_status(status).splitlines()[0]
    assert first == "mode: paper (paper twins fill at live market data; nothing is sent)"
    live = render_status({**status, "mode": "live"}).splitlines()[0]
    assert live.startswith("mode: live (venues as configured")
