"""Bad requests to every endpoint never produce a 500: schemathesis against /openapi.json.

Cases are generated from the OpenAPI document, valid and invalid (wrong types, missing fields,
out-of-range numbers, odd unicode in ids); the one check is "not a server error".  Driven
through hypothesis directly: schemathesis' own pytest plugin does not load under pytest 9.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from starlette.routing import Route

from tests.ui.server import ServerThread
from ui.app import routes
from ui.openapi import document

MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

# The server runs in a thread of this process, and aiokafka there (the pipeline sampler's lag
# reads, the dead-letter reader) shuffles with the global ``random``: when that lands while a
# case is being generated, hypothesis takes it for the strategy's use of ``random`` and the
# run fails as flaky (seen on the first operation, GET /intents, before any Kafka route).
RANDOM_FROM_THE_SERVER = (
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)


@pytest.mark.filterwarnings(RANDOM_FROM_THE_SERVER)
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_no_request_makes_a_server_error(
    server: ServerThread, mode: schemathesis.GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    seen: set[str] = set()
    # Each operation fuzzed on its own, so every one gets its share of requests (drawing the
    # operation inside one run let hypothesis give up early after a run of operations with
    # no invalid form, and leave most of them untried).
    for operation in operations:

        @hypothesis.settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            seen.add(case.operation.label)
            case.call_and_validate(base_url=server.url, checks=[not_a_server_error])

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            assert mode.value == "negative", operation.label  # nothing to break, e.g. /health
    # Every operation got requests; in negative mode exactly those with something to break
    # (parameters or a body): GET /health has no invalid form.
    breakable = {
        o.label
        for o in operations
        if o.definition.raw.get("parameters") or o.definition.raw.get("requestBody")
    }
    assert len(breakable) >= 5
    assert seen == ({o.label for o in operations} if mode.value == "positive" else breakable)


def test_every_rest_route_is_in_the_document() -> None:
    """What the fuzzing covers is what the app serves: every REST route is documented (pages,
    static files, the WebSockets and the document itself are not REST)."""
    pages = {"/", "/status", "/api/status", "/openapi.json"}
    served = {
        r.path.replace(":str}", "}").replace(":int}", "}")
        for r in routes
        if isinstance(r, Route) and r.path not in pages and not r.path.startswith("/ui/")
    }
    documented = {
        p.replace("{intentId}", "{intent_id}")
        .replace("{planId}", "{plan_id}")
        .replace("{strategyId}", "{strategy_id}")
        for p in document()["paths"]
    }
    assert served == documented
