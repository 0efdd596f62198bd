"""The OpenAPI 3.1 document of the REST API (``GET /openapi.json``).

Request bodies use the same pydantic models as the pipeline (schema-first): the submission
schema here is ``IntentSubmission``'s JSON Schema, camelCase, as ``sep schema`` exports it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse

from pipeline.models.intent import IntentSubmission
from pipeline.status import STATE_ORDER
from ui.risk import LimitsRequest, ResetRequest

_OBJECT: dict[str, Any] = {"type": "object"}
_ERROR = {"$ref": "#/components/schemas/Error"}
_ID = {"type": "string", "minLength": 1, "maxLength": 200}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 200}
_NAME = {"type": "string", "minLength": 1, "maxLength": 128}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR, description)


def _get(
    summary: str,
    ok: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    not_found: bool = False,
) -> dict[str, Any]:
    responses = {"200": _json(ok, "OK")}
    if params and any(p["in"] == "query" for p in params):
        responses["422"] = _error("invalid query parameters (with their paths)")
    if not_found:
        responses["404"] = _error("not found")
    return {"get": {"summary": summary, "parameters": params or [], "responses": responses}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _int_path(name: str, maximum: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": maximum},
    }


def _since() -> dict[str, Any]:
    return _query(
        "since",
        {"type": "integer", "minimum": 0, "maximum": 10**11},
        "only points at or after this second (the live tail)",
    )


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


def _kill_body() -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["reason"],
                    "properties": {
                        "strategyId": {"type": "string", "minLength": 1, "maxLength": 128},
                        "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
                        "actor": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                }
            }
        },
    }


def _operator(summary: str, body: type[BaseModel], params: list[dict[str, Any]]) -> dict[str, Any]:
    """An operator action on the control topic: the token, a JSON body, the event back."""
    return {
        "summary": summary,
        "security": [{"operatorToken": []}],
        "parameters": params,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": body.model_json_schema()}},
        },
        "responses": {
            "200": _json(_OBJECT, "published: the control event"),
            "401": _error("no operator token"),
            "403": _error("wrong token, or operator actions are off"),
            "422": _error("invalid body (an unknown rule, a bad value), with field paths"),
            "503": _error("Kafka unreachable; nothing published"),
        },
    }


def _kill_answers() -> dict[str, Any]:
    return {
        "200": _json(_OBJECT, "the change (or none) and the switches and breakers after it"),
        "401": _error("no operator token"),
        "403": _error("wrong token, or operator actions are off"),
        "422": _error("invalid body, with field paths"),
        "503": _error("Kafka unreachable; nothing published"),
    }


@cache
def document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(IntentSubmission, "validation")],
        by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }
    schemas["Accepted"] = {
        "type": "object",
        "required": ["intentId", "clientIntentId", "status"],
        "properties": {
            "intentId": {"type": "string"},
            "clientIntentId": {"type": "string"},
            "status": {"enum": ["submitted", "duplicate"]},
        },
    }
    paths: dict[str, Any] = {
        "/intents": _get(
            "Intents, newest first, filtered and paginated",
            _OBJECT,
            params=[
                _query("state", {"type": "string", "enum": list(STATE_ORDER)}, "lifecycle state"),
                _query(
                    "strategy", {"type": "string", "minLength": 1, "maxLength": 128}, "strategy id"
                ),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size"),
                _query("offset", {"type": "integer", "minimum": 0, "maximum": 1000000}, "skip"),
            ],
        )
        | {
            "post": {
                "summary": "Submit an intent (produced onto sep.intents.submitted)",
                "description": "The intent id is answered at once: it is the id ingest will give "
                "the record.  (strategyId, clientIntentId) is claimed before producing, so a "
                "submission whose pair was already used (within SEP_DEDUPE_TTL_S) is not produced "
                "again: the answer is 200 with the existing intent's id and status 'duplicate'.  "
                "Without a clientIntentId, one is generated and returned.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/IntentSubmission"}
                        }
                    },
                },
                "responses": {
                    "202": _json(
                        {"$ref": "#/components/schemas/Accepted"}, "accepted (status 'submitted')"
                    ),
                    "200": _json(
                        {"$ref": "#/components/schemas/Accepted"},
                        "a duplicate (status 'duplicate'): the existing "
                        "intent's id; nothing was produced",
                    ),
                    "422": _error("invalid submission, with field paths"),
                    "503": _error("Kafka or Redis unreachable; nothing was submitted"),
                },
            }
        },
        "/intents/{intentId}": _get(
            "An intent's read model, plan and events",
            _OBJECT,
            params=[_path("intentId")],
            not_found=True,
        ),
        "/plans/{planId}": _get(
            "A plan: steps with status and progress",
            _OBJECT,
            params=[_path("planId")],
            not_found=True,
        ),
        "/positions": _get(
            "Holdings, cost basis and P&L per strategy",
            _OBJECT,
            params=[
                _query(
                    "strategy",
                    {"type": "string", "minLength": 1, "maxLength": 128},
                    "one strategy only",
                )
            ],
        ),
        "/strategies": _get(
            "Every strategy: declared (topology.yaml), switched at run time (who, why, when) "
            "or seen in intents; its switch, config, kill switch, intents and P&L",
            _OBJECT,
        ),
        "/strategies/{strategyId}/{action}": {
            "post": {
                "summary": "Enable, disable or configure a strategy (operator action)",
                "description": "One event on sep.control (strategy.enabled | strategy.disabled "
                "| strategy.configured, with who and why) that the strategy runner obeys "
                "within a second.  The config given is merged into the one in force and "
                "validated by the strategy plugin before anything is published.",
                "security": [{"operatorToken": []}],
                "parameters": [
                    {"name": "strategyId", "in": "path", "required": True, "schema": _NAME},
                    {
                        "name": "action",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["enable", "disable", "configure"]},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["actor", "reason"],
                                "properties": {
                                    "actor": _TEXT,
                                    "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
                                    "plugin": _NAME,
                                    "config": _OBJECT,
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json(_OBJECT, "published: the control event"),
                    "401": _error("no operator token"),
                    "403": _error("wrong token, or operator actions are off"),
                    "404": _error("no such action"),
                    "422": _error("invalid body, unknown strategy or a config refused (paths)"),
                    "503": _error("Kafka unreachable; nothing changed"),
                },
            }
        },
        "/stats": _get("Totals per state, success rate, active intents, per-stage counts", _OBJECT),
        "/assets": _get("The assets an intent may name (from topology.yaml)", _OBJECT),
        "/health": {
            "get": {
                "summary": "Each dependency's status, and the stack's mode (live or paper)",
                "responses": {
                    "200": _json(_OBJECT, "all dependencies up"),
                    "503": _json(_OBJECT, "a dependency is down"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/pipeline": _get(
            "Per stage throughput and latency over the last minute, per worker "
            "group, consumer lag per partition, the stack's health",
            _OBJECT,
        ),
        "/deadletters": {
            "get": {
                "summary": "The newest dead-lettered records: why, where from, a bounded preview, "
                "whether each may be re-driven (or its re-drive)",
                "parameters": [
                    _query("kind", _TEXT, "the kind of reason (its text before the first colon)"),
                    _query("q", _TEXT, "text in the reason or the bytes"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "how many"),
                ],
                "responses": {
                    "200": _json(_OBJECT, "OK"),
                    "422": _error("invalid query parameters (with their paths)"),
                    "503": _error("Kafka unreachable"),
                },
            }
        },
        "/deadletters/{partition}/{offset}/redrive": {
            "post": {
                "summary": "Put a dead letter back on its original topic (operator action)",
                "description": "Only a record that failed for a passing reason ('<stage> failed: "
                "...'), whose bytes were kept whole, from a topic a stage consumes; once.  "
                "Recorded as a deadletter.redriven event (who, why, from, to).",
                "security": [{"operatorToken": []}],
                "parameters": [_int_path("partition", 65535), _int_path("offset", 2**63 - 1)],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["operator"],
                                "properties": {
                                    "operator": {"type": "string", "minLength": 1, "maxLength": 64},
                                    "note": {"type": "string", "maxLength": 500},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(_OBJECT, "re-driven: the deadletter.redriven event"),
                    "401": _error("no operator token"),
                    "403": _error("wrong token, or operator actions are off"),
                    "404": _error("no dead letter there"),
                    "409": _error("not re-drivable (why), or re-driven before"),
                    "422": _error("invalid body, with field paths"),
                    "503": _error("Kafka or PostgreSQL unreachable; nothing re-driven"),
                },
            }
        },
        "/risk/kill": {
            "get": {
                "summary": "The kill switches (engaged or resumed, who, why, since) and the "
                "venue circuit breakers, read from sep.control",
                "responses": {"200": _json(_OBJECT, "OK"), "503": _error("Kafka unreachable")},
            },
            "post": {
                "summary": "Engage the kill switch, globally or for one strategy (operator "
                "action): no new intent accepted, plan made or step sent, within a second",
                "description": "Published as control.killed on sep.control; a switch engaged "
                "already publishes nothing (changed: false).  Resuming is only by "
                "POST /risk/resume.",
                "security": [{"operatorToken": []}],
                "requestBody": _kill_body(),
                "responses": _kill_answers(),
            },
        },
        "/risk/resume": {
            "post": {
                "summary": "Resume trading after a kill (operator action)",
                "description": "Published as control.resumed; resuming a strategy leaves an "
                "engaged global switch engaged.",
                "security": [{"operatorToken": []}],
                "requestBody": _kill_body(),
                "responses": {**_kill_answers(), "409": _error("that switch is not engaged")},
            }
        },
        "/risk": _get(
            "Risk: breaker state per strategy and global (with the numbers that set it), "
            "limits in force against usage, marks, kill switches and venue breakers",
            _OBJECT,
        ),
        "/risk/limits/{strategy}": {
            "put": _operator(
                "Change a strategy's risk limits at run time ('*': every strategy's); "
                "recorded as a risk.limits_changed event (who, why)",
                LimitsRequest,
                [_path("strategy")],
            )
        },
        "/risk/reset": {
            "post": _operator(
                "Put a tripped breaker back to NORMAL (a new epoch); recorded as a "
                "risk.state_changed event (who, why)",
                ResetRequest,
                [],
            )
        },
        "/charts/prices": _get(
            "One market's price over time (quotes and fills, each second's "
            "last) and this platform's fills, from the event store",
            _OBJECT,
            params=[
                _query(
                    "market",
                    {"type": "string", "pattern": "^[^/]+/[^/]+$", "minLength": 3, "maxLength": 64},
                    "BASE/QUOTE (default: most fills)",
                ),
                _query("venue", _NAME, "one venue only"),
                _since(),
            ],
        ),
        "/books": _get(
            "A market's order-book depth across book venues, as the planners see it on "
            "sep.market.books: each venue's levels and the consolidated all-in depth",
            _OBJECT,
            params=[
                _query(
                    "market",
                    {"type": "string", "pattern": "^[^/]+/[^/]+$", "minLength": 3, "maxLength": 64},
                    "BASE/QUOTE (default: the first published)",
                ),
                _query(
                    "levels",
                    {"type": "integer", "minimum": 1, "maximum": 200},
                    "levels per side (default 50)",
                ),
            ],
        ),
        "/venues/fills": _get(
            "Fills per venue with the fees the venues itemised, from the event store",
            _OBJECT,
        ),
        "/charts/pnl": _get(
            "A strategy's realised and total P&L and equity over time, from the event store",
            _OBJECT,
            params=[
                _query("strategy", _NAME, "the strategy (default: the first with fills)"),
                _since(),
            ],
        ),
        "/charts/states": _get(
            "Intents per lifecycle state at the end of each bucket, from the event store",
            _OBJECT,
            params=[
                _query(
                    "bucket",
                    {"type": "integer", "minimum": 1, "maximum": 86400},
                    "bucket seconds (default: at most 300 buckets)",
                ),
                _since(),
            ],
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Strategy Execution Platform",
            "version": "0.1.0",
            "description": "Submit trading intents and follow them through the pipeline. "
            "Live changes: WS /stream (see ui/stream.py).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "operatorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "SEP_OPERATOR_TOKEN (operator actions are off without one)",
                }
            },
        },
    }


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(document())
