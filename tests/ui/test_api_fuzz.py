"""Bad requests to every endpoint never produce a 500: schemathesis against /openapi.json.

Cases are generated from the OpenAPI document, valid and invalid (wrong types, missing fields,
out-of-range numbers, odd unicode in ids); the one check is "not a server error".  Driven
through hypothesis directly: schemathesis' own pytest plugin does not load under pytest 9.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.ui.server import ServerThread

MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_no_request_makes_a_server_error(server: ServerThread,
                                         mode: schemathesis.GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    seen: set[str] = set()

    @hypothesis.settings(max_examples=15 * len(operations), deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck),
                         phases=[hypothesis.Phase.generate])
    @hypothesis.given(data=st.data())
    def run(data: st.DataObject) -> None:
        operation = data.draw(st.sampled_from(operations))
        case = data.draw(operation.as_strategy(generation_mode=mode))
        seen.add(operation.label)
        case.call_and_validate(base_url=server.url, checks=[not_a_server_error])

    run()
    # Every operation got requests; in negative mode only those with something to break
    # (parameters or a body): GET /health has no invalid form.
    assert len(seen) == len(operations) if mode.value == "positive" else len(seen) >= 5
