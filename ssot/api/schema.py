"""OpenAPI additions drf-spectacular cannot see, as postprocessing hooks (SPECTACULAR_SETTINGS):

- `add_decision_longpoll`: the decision long-poll is an async Django view, not DRF's; the answer it
  documents is what `ssot.api.longpoll.task_decision` returns (a test holds the two together);
- `add_common_answers`: the answers every operation can give whatever its view, from the layers around
  it: 401 (authentication), 406 (DRF's content negotiation, for an `Accept` it cannot satisfy), 429 (DRF's
  throttle), 503 (a database outage), and 413/415 for a body.
"""

from __future__ import annotations

from typing import Any

from ssot.api.longpoll import MAX_WAIT

PATH = "/api/tasks/{task_id}/decision/"

DECISION_RECORD = {
    "type": "object",
    "description": "The latest admin decision the task document records.",
    "properties": {
        "action": {"type": "string", "enum": ["approved", "rejected", "override"]},
        "by": {"type": "string", "nullable": True},
        "at": {"type": "string", "format": "date-time"},
        "reason": {"type": "string", "nullable": True},
    },
    "required": ["action", "by", "at", "reason"],
}

TASK_DECISION = {
    "type": "object",
    "properties": {
        "task_id": {"type": "string"},
        "status": {"type": "string", "description": "The task's status now."},
        "decided": {"type": "boolean", "description": "False while the task is still awaiting_approval."},
        "blob_sha": {"type": "string", "description": "The task's blob SHA in the SSOT."},
        "decision": {
            "allOf": [{"$ref": "#/components/schemas/TaskDecisionRecord"}],
            "nullable": True,
            "description": "Null until decided, or when the document records no decision.",
        },
        "waited": {"type": "number", "format": "double", "description": "Seconds this request waited."},
    },
    "required": ["task_id", "status", "decided", "blob_sha", "decision", "waited"],
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _operation(security: list[dict[str, list]]) -> dict[str, Any]:
    return {
        "operationId": "tasks_decision_retrieve",
        "summary": "Wait for the decision on a task (long-poll)",
        "description": (
            f"Answers at once when the task is not awaiting_approval or `wait` is 0; otherwise as soon as "
            f"it leaves awaiting_approval, or after `wait` seconds (at most {MAX_WAIT}) with "
            "`decided: false`. The wait holds no server thread and no database connection."
        ),
        "tags": ["tasks"],
        "parameters": [
            {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}},
            {
                "name": "wait",
                "in": "query",
                "required": False,
                "description": f"Seconds to wait for a decision, 0 to {MAX_WAIT} (decimals allowed).",
                "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT, "default": 0},
            },
        ],
        "security": security,
        "responses": {
            "200": {
                "description": "The task's state: decided, or still awaiting approval when the wait ran out.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskDecision"}}},
            },
            "400": _error(f"`wait` is not a number from 0 to {MAX_WAIT}."),
            "401": _error("No credentials, or an invalid or expired token."),
            "403": _error("Neither a staff user nor an agent."),
            "404": _error("No such task."),
        },
    }


def add_decision_longpoll(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Document GET /api/tasks/{task_id}/decision/ beside the DRF endpoints."""
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["TaskDecisionRecord"] = DECISION_RECORD
    schemas["TaskDecision"] = TASK_DECISION
    schemes = components.get("securitySchemes", {})
    security: list[dict[str, list[str]]] = [
        {name: []} for name in ("apiKeyAuth", "jwtAuth", "cookieAuth") if name in schemes
    ]
    result["paths"][PATH] = {"get": _operation(security)}
    result["paths"] = dict(sorted(result["paths"].items()))
    return result


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
UNAUTHENTICATED = "No credentials, or an invalid or expired token."
THROTTLED = "Too many requests from this user (`API_USER_RATE`) or address; wait `Retry-After` seconds."
NOT_ACCEPTABLE = "The `Accept` header names no type the API answers with (it answers `application/json`)."
DATABASE = "The database is unavailable (`database_unavailable`); try again after `Retry-After` seconds."
# Operations outside DRF (its throttle and its content negotiation), and those that read no row.
NOT_DRF = {(PATH, "get")}
NO_DATABASE = {("/api/amp/schema.json", "get"), ("/api/policy/schema.json", "get")}


def _add(responses: dict[str, Any], code: str, description: str, *, retry_after: bool = False) -> None:
    answer = responses.get(code)
    if answer is None:
        answer = responses[code] = _error(description)
    elif description not in answer["description"]:
        answer["description"] = f"{answer['description']} Or: {description[:1].lower()}{description[1:]}"
    if retry_after:
        answer.setdefault("headers", {}).update(RETRY_AFTER)


def add_common_answers(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add to every operation the answers the layers around its view give (see the module's docstring)."""
    for path, item in result["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if operation.get("security"):
                _add(responses, "401", UNAUTHENTICATED)
            if (path, method) not in NOT_DRF:
                _add(responses, "406", NOT_ACCEPTABLE)
                _add(responses, "429", THROTTLED, retry_after=True)
            if (path, method) not in NO_DATABASE:
                _add(responses, "503", DATABASE, retry_after=True)
            if "requestBody" in operation:
                _add(
                    responses,
                    "400",
                    "A malformed body: not JSON, not an object, or a field of the wrong type.",
                )
                _add(responses, "413", "The body is larger than the server accepts.")
                _add(responses, "415", "The body is not `application/json`.")
            operation["responses"] = dict(sorted(responses.items()))
    return result
