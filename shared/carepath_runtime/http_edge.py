"""What every service's HTTP edge shares: problem answers, body limits, an honest OpenAPI.

:func:`install_edge` is called once per app (by :func:`carepath_runtime.service.make_app`):

* :func:`carepath_runtime.http_errors.install_problem_handlers`: one error shape;
* :class:`carepath_runtime.http_body.BodyLimitMiddleware`: 413 over 1 MiB (8 MiB under
  ``/fhir/``), from settings;
* the OpenAPI document declares the bearer scheme on every operation but ``/health``, and the
  problem answers each operation can give (``application/problem+json``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from carepath_runtime.http_body import BodyLimitMiddleware, limits_by_prefix
from carepath_runtime.http_errors import install_problem_handlers
from carepath_runtime.problems import PROBLEM_MEDIA_TYPE
from carepath_runtime.settings import Settings

PUBLIC_PATHS = frozenset({"/health", "/metrics"})

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "maxItems": 20,
            "items": {"type": "object", "required": ["field", "reason"],
                      "properties": {"field": {"type": "string"},
                                     "reason": {"type": "string"}}},
        },
        "errors_truncated": {"type": "integer"},
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    400: "Malformed request (invalid JSON, duplicate key, bad header)",
    401: "No or an invalid bearer token",
    403: "The caller's role may not do this",
    404: "Unknown, or not visible to the caller (the same answer)",
    405: "Method not allowed",
    409: "Conflict with the current state",
    413: "Body, or the event it would produce, too large",
    415: "Unsupported Content-Type",
    422: "Invalid request: each field named",
    500: "Internal error (no details)",
    503: "A dependency is unavailable; retry later",
}
_ALWAYS = (404, 405, 422, 500, 503)
_AUTHENTICATED = (401, 403)
_WITH_BODY = (400, 409, 413, 415)


def install_edge(app: FastAPI, settings: Settings) -> None:
    install_problem_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        limit_for=limits_by_prefix(settings.carepath_max_body_bytes,
                                   [("/fhir/", settings.carepath_max_fhir_body_bytes)]),
    )
    document_api(app)


def document_api(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare the security scheme and the problem answers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes,
                          description="Carepath service API. Errors are RFC 9457 problems.")
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "a development token or an OIDC JWT"}}
        for path, item in doc.get("paths", {}).items():
            for method, op in item.items():
                if not isinstance(op, dict):
                    continue
                for media in op.get("requestBody", {}).get("content", {}).values():
                    # Model schemas come with their $defs: they live in components.
                    schemas.update(media.get("schema", {}).pop("$defs", {}))
                public = path in PUBLIC_PATHS
                codes = [500] if public else list(_ALWAYS)
                if not public:
                    op["security"] = [{"bearer": []}]
                    codes += _AUTHENTICATED
                if method in ("post", "put", "patch", "delete"):
                    codes += _WITH_BODY
                responses = op.setdefault("responses", {})
                for code in sorted(set(codes)):
                    responses[str(code)] = {
                        "description": _DESCRIPTIONS[code],
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}},
                    }
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def model_schema(model: Any) -> dict[str, Any]:
    """A pydantic model's (or TypeAdapter's) JSON Schema, its refs into OpenAPI components."""
    schema: dict[str, Any] = model.json_schema(ref_template="#/components/schemas/{model}") \
        if hasattr(model, "json_schema") else model.model_json_schema(
            ref_template="#/components/schemas/{model}")
    return schema


def json_body(schema: dict[str, Any] | None = None, media: str = "application/json",
              required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its JSON body itself."""
    return {"requestBody": {"required": required,
                            "content": {media: {"schema": schema or {"type": "object"}}}}}
