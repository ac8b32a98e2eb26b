"""GET /openapi.json: an OpenAPI 3 description of every route, built with apispec when the app is created.

apispec (maintained by the marshmallow team) builds the document from plain dicts, and its Flask plugin finds
each view's URL rule, so the handlers and blueprints stay as they are. The operations below are the contract:
request fields, query, path and header parameters, and every status a handler answers, with the one error
shape `{"error": {"code", "message", "field"}}`. Register this blueprint last: it describes the views that
are registered when it is.
"""

from apispec import APISpec
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Flask, current_app, jsonify

from api.args import LIST_MAX
from api.auth import PROTECTED_PREFIX
from api.idempotent import HEADER as IDEMPOTENCY_HEADER
from shared import keys
from shared.batches import BATCH_STATUSES
from shared.config import Settings
from shared.jobs import JOB_STATUSES

# The validator's own tables, so the documented names, types and bounds cannot drift from what is enforced.
from shared.outputs import MAX_PREFIX_CHARS
from shared.params import CHOICES, FLAGS, NUMBERS, PRESETS
from shared.style_library import NAME_MAX

SPEC_KEY = "styleforge.openapi"
# The document's version; the paths carry the API's major version (/v1).
API_VERSION = "1.0.0"
ID_PATTERN = "^[0-9a-f]{32}$"
# A stream id as api/events.py's STREAM_ID admits it: each part 1 to 19 ASCII digits (a 64-bit integer).
EVENT_ID_PATTERN = "^[0-9]{1,19}(-[0-9]{1,19})?$"
# Where a stream resumes: an event id, or empty for the start.
RESUME_PATTERN = "^([0-9]{1,19}(-[0-9]{1,19})?)?$"

bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def openapi_json():
    """This API's OpenAPI 3 document."""
    return jsonify(current_app.extensions[SPEC_KEY])


def _build_on_register(state) -> None:
    state.app.extensions[SPEC_KEY] = build_spec(state.app)


bp.record_once(_build_on_register)


def build_spec(app: Flask) -> dict[str, object]:
    """The OpenAPI 3 document of the app's documented views (built from OPERATIONS)."""
    settings: Settings = app.extensions["styleforge"].settings
    spec = APISpec(
        title="styleforge",
        version=API_VERSION,
        openapi_version="3.0.3",
        plugins=[FlaskPlugin()],
        info={"description": "Asynchronous neural style transfer jobs and batches."},
    )
    _add_components(spec, settings)
    limited = bool(settings.rate_limit_submit.strip() or settings.rate_limit_read.strip())
    for endpoint, operations in OPERATIONS.items():
        if settings.auth == "required" and _needs_key(app, endpoint):
            operations = {method: _with_key(op) for method, op in operations.items()}
        if endpoint == METRICS_ENDPOINT:
            operations = {"get": _metrics_operation(settings)}
        if _needs_key(app, endpoint):
            submits = endpoint in SUBMISSIONS
            operations = {method: _with_limits(op, limited, submits) for method, op in operations.items()}
        spec.path(view=app.view_functions[endpoint], app=app, operations=operations)
    return spec.to_dict()


def _needs_key(app: Flask, endpoint: str) -> bool:
    """The endpoint is under /v1/, where required mode checks the key (api/auth.py)."""
    return any((rule.rule + "/").startswith(PROTECTED_PREFIX) for rule in app.url_map.iter_rules(endpoint))


def _with_key(operation: dict[str, object]) -> dict[str, object]:
    responses = {**operation["responses"], "401": "Unauthorized"}
    return {**operation, "responses": responses, "security": [{SECURITY_SCHEME: []}]}


def _metrics_operation(settings: Settings) -> dict[str, object]:
    """GET /metrics as api/metrics.py guards it: the scrape token's scheme, off (404), or open."""
    if settings.metrics_token:
        responses = {"200": METRICS_TEXT, "401": "Unauthorized", "503": "Unavailable"}
        return _op(METRICS_SUMMARY, responses, security=[{METRICS_SCHEME: []}])
    if settings.auth == "required":
        return _op(METRICS_SUMMARY + " (off: no STYLEFORGE_METRICS_TOKEN is set)", {"404": "NotFound"})
    public = {"200": METRICS_TEXT, "503": "Unavailable"}
    return _op(METRICS_SUMMARY + " (open mode, no token: public)", public)


def _with_limits(operation: dict[str, object], limited: bool, submits: bool) -> dict[str, object]:
    """A /v1 operation's 429 (rate limits, and a submission's usage quotas), a submission's 403 (parameter
    caps), and the RateLimit-* headers on its successes when rate limits are on (api/limits.py)."""
    responses = dict(operation["responses"])
    if submits:
        responses |= {"403": "QuotaForbidden", "429": "TooManyRequests"}
    elif limited:
        responses["429"] = "RateLimited"
    if limited:
        for status, response in responses.items():
            if status.startswith("2") and isinstance(response, dict):
                responses[status] = {**response, "headers": {**response.get("headers", {}), **RATE_HEADERS}}
    return {**operation, "responses": responses}


def _add_components(spec: APISpec, settings: Settings) -> None:
    for name, schema in _schemas(settings).items():
        spec.components.schema(name, schema)
    for name, (description, codes) in ERROR_RESPONSES.items():
        spec.components.response(name, _json(f"{description} (codes: {', '.join(codes)})", "Error"))
    spec.components.response("Unavailable", UNAVAILABLE)
    for name, response in LIMIT_RESPONSES.items():
        spec.components.response(name, response)
    if settings.auth == "required":  # open mode checks no key, and its document says so by naming none
        spec.components.security_scheme(SECURITY_SCHEME, BEARER)
    if settings.metrics_token:
        spec.components.security_scheme(METRICS_SCHEME, METRICS_BEARER)
    if settings.auth == "required" or settings.metrics_token:
        spec.components.response("Unauthorized", UNAUTHORIZED)
    for component_id, (name, location, schema, description) in PARAMETERS.items():
        parameter = {"name": name, "schema": schema, "description": description}
        spec.components.parameter(component_id, location, parameter)
    spec.components.parameter("JobId", "path", _id_param("job_id", "job"))
    spec.components.parameter("BatchId", "path", _id_param("batch_id", "batch"))
    spec.components.parameter("StyleId", "path", _id_param("style_id", "saved style"))


def _id_param(name: str, what: str) -> dict[str, object]:
    description = f"The {what}'s id as the API issued it (32 hex digits); anything else answers 404."
    return {"name": name, "schema": {"type": "string", "pattern": ID_PATTERN}, "description": description}


def _json(description: str, schema: str | dict) -> dict[str, object]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _schemas(settings: Settings) -> dict[str, dict]:
    return {
        "Error": ERROR_SCHEMA,
        "LimitError": LIMIT_ERROR_SCHEMA,
        "StyleParamsInput": _params_input(settings),
        "StyleParams": _params_output(),
        "Job": JOB_SCHEMA,
        "JobList": {"type": "object", "required": ["jobs"], "properties": {"jobs": _list_of("Job")}},
        "BatchItem": BATCH_ITEM_SCHEMA,
        "Batch": BATCH_SCHEMA,
        "BatchList": {
            "type": "object",
            "required": ["batches"],
            "properties": {"batches": _list_of("Batch")},
        },
        "StyleId": {
            "type": "string",
            "pattern": ID_PATTERN,
            "description": "a saved style's id (POST /v1/styles), in place of style images",
        },
        "Style": STYLE_SCHEMA,
        "StyleList": {"type": "object", "required": ["styles"], "properties": {"styles": _list_of("Style")}},
        "StyleForm": _style_form(settings),
        "JobForm": _job_form(settings),
        "BatchForm": _batch_form(settings),
        "BatchJson": _batch_json(settings),
    }


def _list_of(schema: str) -> dict[str, object]:
    return {"type": "array", "items": schema}


def _param_field(name: str, settings: Settings) -> dict[str, object]:
    """One style option as the validator accepts it (form fields carry the same values as text)."""
    if name in FLAGS:
        return {"type": "boolean"}
    if name in CHOICES:
        return {"type": "string", "enum": list(CHOICES[name])}
    bound = NUMBERS[name]
    low, high = (
        (settings.min_image_side, settings.max_dim_limit) if name == "max_dim" else (bound.low, bound.high)
    )
    field = {"type": "integer" if bound.kind is int else "number", "minimum": low, "maximum": high}
    if bound.low_open:
        field["exclusiveMinimum"] = True
    if bound.high_open:
        field["exclusiveMaximum"] = True
    return field


def _params_input(settings: Settings) -> dict[str, object]:
    properties = {name: _param_field(name, settings) for name in [*NUMBERS, *CHOICES, *FLAGS]}
    properties["preset"] = {"type": "string", "enum": sorted(PRESETS)}
    properties["style_blend_weights"] = {**BLEND_WEIGHTS, "nullable": True}
    description = "Overrides of the preset's defaults; an unknown name or a bad value answers 400 naming it."
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "description": description,
    }


def _params_output() -> dict[str, object]:
    properties = {
        name: {"type": "integer" if bound.kind is int else "number"} for name, bound in NUMBERS.items()
    }
    properties |= {name: {"type": "string"} for name in [*CHOICES, "preset"]}
    properties |= {name: {"type": "boolean"} for name in FLAGS}
    properties["style_blend_weights"] = {"type": "array", "items": {"type": "number"}, "nullable": True}
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _form_fields(settings: Settings) -> dict[str, object]:
    """The text fields a multipart submission shares: params as JSON, each option alone, the webhook."""
    fields = {name: _param_field(name, settings) for name in [*NUMBERS, *CHOICES, *FLAGS]}
    fields["preset"] = {"type": "string", "enum": sorted(PRESETS)}
    fields["style_blend_weights"] = {"type": "string", "description": "comma list, e.g. 0.7,0.3"}
    fields["style_id"] = "StyleId"
    fields["cache"] = CACHE_FIELD
    # A JSON object of options (OpenAPI's default for an object-typed part; FORM_ENCODING says so too); the
    # single fields win over it.
    fields["params"] = "StyleParamsInput"
    return fields | _webhook_fields(settings, json_body=False)


def _webhook_fields(settings: Settings, *, json_body: bool) -> dict[str, object]:
    """The webhook fields; without a signing secret only their empty values, which mean no webhook."""
    if settings.webhook_secret:
        return WEBHOOK_FIELDS
    off = "this deployment sends no webhooks (no STYLEFORGE_WEBHOOK_SECRET): empty or absent only"
    empty = {"type": "string", "maxLength": 0, "description": off}
    if not json_body:
        return {"webhook": empty, "webhook_events": empty}
    no_events = {"anyOf": [empty, {"type": "array", "maxItems": 0}], "nullable": True, "description": off}
    return {"webhook": {**empty, "nullable": True}, "webhook_events": no_events}


def _job_form(settings: Settings) -> dict[str, object]:
    files = {"content": BINARY, "style": {"type": "array", "items": BINARY, "minItems": 1, "maxItems": 8}}
    return {
        "type": "object",
        "additionalProperties": False,  # any other field answers 400 naming it
        "required": ["content"],
        "description": "The styles as `style` files or one saved style's `style_id`.",
        "properties": files | _form_fields(settings),
    }


def _style_form(settings: Settings) -> dict[str, object]:
    return {
        "type": "object",
        "additionalProperties": False,  # any other field answers 400 naming it
        "required": ["name", "style"],
        "properties": {
            "style": {"type": "array", "items": BINARY, "minItems": 1, "maxItems": 8},
            "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX, "pattern": r"\S"},
            "style_blend_weights": {"type": "string", "description": "comma list, e.g. 0.7,0.3"},
            "style_scale": _param_field("style_scale", settings),
        },
    }


def _batch_form(settings: Settings) -> dict[str, object]:
    files = {
        "content": {**_list_of(BINARY), "description": "content images; each filename is its relative path"},
        "archive": {**BINARY, "description": "a zip of the asset tree, instead of content files"},
        "style": {"type": "array", "items": BINARY, "minItems": 1, "maxItems": 8},
    }
    # Any other field answers 400 naming it, as JobForm says with additionalProperties false. Not said so
    # here: schemathesis 4.32 then fails its own negative draws of this form ("Unsupported type: 'Binary'").
    return {
        "type": "object",
        "properties": files | _form_fields(settings) | {"output_prefix": OUTPUT_PREFIX},
        "description": (
            "Content files or one archive, style files (or one saved style's `style_id`) and options; any "
            "other field answers 400."
        ),
    }


def _batch_json(settings: Settings) -> dict[str, object]:
    properties = BATCH_JSON_SCHEMA["properties"] | _webhook_fields(settings, json_body=True)
    return {**BATCH_JSON_SCHEMA, "properties": properties}


BINARY = {"type": "string", "format": "binary"}
CACHE_FIELD = {
    "type": "boolean",
    "description": (
        "default true (STYLEFORGE_RESULT_CACHE): use the result cache, where a job whose inputs, options, "
        "weights, precision and engine version match an earlier job of the tenant succeeds at once with a "
        "copy of its result (`cached: true`); false: the job neither reads nor writes the cache"
    ),
}
BLEND_WEIGHTS = {
    "type": "array",
    "minItems": 1,
    "maxItems": 8,
    "items": {"type": "number", "minimum": 0, "maximum": 1e6},
    "description": "one weight per style image, normalised to sum 1; not all zero",
}
WEBHOOK_FIELDS = {
    "webhook": {
        "type": "string",
        "description": "http(s) URL POSTed each event; its host must be public or allowlisted, else 400",
    },
    "webhook_events": {
        "type": "string",
        "description": "JSON list or comma list of start, progress, completed",
    },
}
NULLABLE_OBJECT = {"type": "object", "nullable": True}
NULLABLE_STRING = {"type": "string", "nullable": True}
NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable, e.g. invalid_input, not_found"},
                "message": {"type": "string", "description": "what went wrong and what to do"},
                "field": {
                    "type": "string",
                    "nullable": True,
                    "description": "the offending field, parameter or header; null when no one field is",
                },
            },
        }
    },
}

LIMIT_ERROR_SCHEMA = {
    **ERROR_SCHEMA,
    "properties": {
        "error": {
            **ERROR_SCHEMA["properties"]["error"],
            "properties": {
                **ERROR_SCHEMA["properties"]["error"]["properties"],
                "quota": {
                    "type": "object",
                    "description": "quota_exceeded: the quota, its limit, the use now (for a cap: the "
                    "job's value), and what the request adds to a usage",
                    "required": ["name", "limit", "used"],
                    "properties": {
                        "name": {
                            "type": "string",
                            "enum": ["max_active_jobs", "items_per_day", "max_dim", "max_steps"],
                        },
                        "limit": {"type": "integer"},
                        "used": {"type": "integer"},
                        "requested": {"type": "integer"},
                    },
                },
                "limit": {
                    "type": "object",
                    "description": "rate_limited: the bucket (submit or read) and its limit",
                    "required": ["name", "limit"],
                    "properties": {
                        "name": {"type": "string", "enum": ["submit", "read"]},
                        "limit": {"type": "string", "description": "e.g. 30 per 1 minute"},
                    },
                },
            },
        }
    },
}

PROGRESS = {
    "type": "object",
    "properties": {
        "step": {"type": "integer"},
        "total_steps": {"type": "integer"},
        "fraction": {"type": "number"},
    },
}
JOB_SCHEMA = {
    "type": "object",
    "required": ["id", "status", "params", "progress", "created_at", "error", "result"],
    "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN},
        "status": {"type": "string", "enum": list(JOB_STATUSES)},
        "params": "StyleParams",
        "progress": PROGRESS,
        "evaluations": {
            "type": "integer",
            "description": "loss evaluations the optimiser spent (Adam: one per step)",
        },
        "losses": NULLABLE_OBJECT,
        "initial_losses": NULLABLE_OBJECT,
        "created_at": NULLABLE_TIME,
        "started_at": {**NULLABLE_TIME, "description": "the first attempt's start"},
        "attempt_started_at": {**NULLABLE_TIME, "description": "the current (or last) attempt's start"},
        "finished_at": NULLABLE_TIME,
        "attempt": {"type": "integer"},
        "worker": {
            **NULLABLE_STRING,
            "description": "the current (or last) attempt's worker, host:pid:nonce; null until one starts",
        },
        "weights": {
            **NULLABLE_OBJECT,
            "description": "mode, note, precision: the VGG weights that ran and the dtype its convolutions"
            " computed in (float32, bfloat16 or float16); each null until a worker starts the job",
        },
        "error": NULLABLE_STRING,
        "plan": NULLABLE_OBJECT,
        "targets": NULLABLE_STRING,
        "cancel_requested": {"type": "boolean"},
        "cache": {"type": "boolean", "description": "whether the job may use the result cache"},
        "cached": {
            "type": "boolean",
            "description": "it succeeded with a copy of an earlier job's result: no GPU time, same bytes",
        },
        "cache_key": {
            **NULLABLE_STRING,
            "description": "sha256 of what its result depends on; null until a worker starts the job",
        },
        "engine_version": {**NULLABLE_STRING, "description": "the engine version of its worker"},
        "steps": {"type": "array", "items": {"type": "object"}, "description": "intermediate images"},
        "result": {**NULLABLE_OBJECT, "description": "key, presigned url, url_expires_in_s, width, height"},
        "batch_id": NULLABLE_STRING,
        "style_id": NULLABLE_STRING,
        "owner": {"type": "string"},
    },
}
BATCH_ITEM_SCHEMA = {
    "type": "object",
    "required": ["job_id", "path", "status"],
    "properties": {
        "job_id": {"type": "string", "pattern": ID_PATTERN},
        "path": {"type": "string"},
        "status": {"type": "string", "enum": list(JOB_STATUSES)},
        "step": {"type": "integer"},
        "total_steps": {"type": "integer"},
        "error": NULLABLE_STRING,
        "cached": {"type": "boolean", "description": "succeeded with a copy of an earlier result"},
        "result": NULLABLE_OBJECT,
    },
}
BATCH_SCHEMA = {
    "type": "object",
    "required": ["id", "status", "params", "counts", "progress", "items", "next_offset"],
    "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN},
        "status": {"type": "string", "enum": list(BATCH_STATUSES)},
        "params": "StyleParams",
        "style_keys": {"type": "array", "items": {"type": "string"}},
        "style_id": NULLABLE_STRING,
        "created_at": {"type": "number"},
        "items_total": {"type": "integer"},
        "counts": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "items per status, and `cached`: the succeeded ones served from the result cache",
        },
        "cache": {"type": "boolean", "description": "whether its items may use the result cache"},
        "progress": {"type": "object"},
        "eta_s": {"type": "number", "nullable": True},
        "targets": {"type": "object"},
        "skipped": {"type": "array", "items": {"type": "object"}},
        "thumbnail": NULLABLE_STRING,
        "output_prefix": {**NULLABLE_STRING, "description": "as submitted, ending with '/'; null: none"},
        "manifest_key": {
            **NULLABLE_STRING,
            "description": "the full key of manifest.json, once written (no item queued or running)",
        },
        "items": _list_of("BatchItem"),
        "next_offset": {"type": "integer", "nullable": True},
    },
}
OBJECT_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": 1024,
    "description": "an object key in the bucket, under the caller's `tenants/{tenant}/` (else 403)",
}
OUTPUT_PREFIX = {
    "type": "string",
    "maxLength": MAX_PREFIX_CHARS,
    "pattern": r"^(?!(" + "|".join(sorted(keys.RESERVED_SEGMENTS)) + r")(/|$))"
    r"([A-Za-z0-9_][A-Za-z0-9._-]*/)*[A-Za-z0-9_][A-Za-z0-9._-]*/?$",
    "description": (
        "a relative prefix inside your `tenants/{tenant}/`, e.g. `builds/2026-12-02/` ('/' added when "
        "missing); each result is also written there under its relative path, and `manifest.json` once the "
        "batch ends. Not under inputs/, jobs/, targets/, cache/ or styles/ (400)."
    ),
}
BATCH_JSON_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": (
        "Images already in the bucket: `contents` (keys and relative paths) or one `prefix`; the styles as "
        "`styles` (keys) or one saved style's `style_id`."
    ),
    "properties": {
        "styles": {"type": "array", "minItems": 1, "items": OBJECT_KEY},
        "style_id": {"$ref": "#/components/schemas/StyleId"},
        "cache": CACHE_FIELD,
        "contents": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key"],
                "properties": {"key": OBJECT_KEY, "path": {"type": "string"}},
            },
        },
        "prefix": OBJECT_KEY,
        "params": "StyleParamsInput",
        "output_prefix": OUTPUT_PREFIX,
        **WEBHOOK_FIELDS,  # with webhooks on; _batch_json narrows them when they are off
    },
}

STYLE_IMAGE = {
    "type": "object",
    "required": ["key", "sha256", "width", "height", "url"],
    "properties": {
        "key": {"type": "string"},
        "sha256": {"type": "string"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "url": {"type": "string", "description": "A presigned GET URL of the image, to show it"},
    },
}
STYLE_SCHEMA = {
    "type": "object",
    "required": ["id", "name", "owner", "images", "style_blend_weights", "style_scale", "created_at"],
    "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN},
        "name": {"type": "string"},
        "owner": {"type": "string"},
        "images": {"type": "array", "items": STYLE_IMAGE},
        "style_blend_weights": {"type": "array", "items": {"type": "number"}},
        "style_scale": {"type": "number"},
        "created_at": {"type": "number"},
    },
}
# name: (description, the error codes it carries)
ERROR_RESPONSES = {
    "BadRequest": (
        "A malformed or out-of-range parameter; `field` names it",
        ["invalid_input", "bad_request"],
    ),
    "NotFound": (
        "No record with that id the caller may see: unknown, expired or another tenant's answer alike",
        ["not_found"],
    ),
    "Forbidden": (
        "A JSON batch names an object key or prefix outside the caller's `tenants/{tenant}/`",
        ["forbidden"],
    ),
    "Conflict": ("The record's state forbids the request (e.g. cancelling a finished job)", ["conflict"]),
    "PayloadTooLarge": ("The body, an archive or the item count exceeds a configured limit", ["too_large"]),
    "Unprocessable": (
        "Not a usable image, or an Idempotency-Key reused with a different request",
        ["invalid_image", "idempotency_mismatch"],
    ),
}
UNAVAILABLE = {
    **_json(
        "Redis, S3 or the queue is unreachable; retry after Retry-After seconds "
        "(codes: unavailable, storage_error, queue_unavailable)",
        "Error",
    ),
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}
# Rate limits (api/limits.py) and quotas (shared/quotas.py): the headers and the answers past them.
SUBMISSIONS = {"jobs.create_job", "batches.create_batch"}  # what the quotas and the `submit` limit count
RATE_HEADERS = {
    "RateLimit-Limit": {
        "schema": {"type": "integer"},
        "description": "requests the key's bucket admits a window",
    },
    "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "requests left in the window"},
    "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "seconds until the window frees one"},
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
LIMIT_RESPONSES = {
    "RateLimited": {
        **_json(
            "Past the key's rate limit; retry after Retry-After seconds (codes: rate_limited)", "LimitError"
        ),
        "headers": {**RETRY_AFTER, **RATE_HEADERS},
    },
    "TooManyRequests": {
        **_json(
            "Past the key's rate limit (rate_limited: Retry-After), or past the tenant's active jobs or "
            "batch items per day (quota_exceeded: `quota` names it; Retry-After for items per day) "
            "(codes: rate_limited, quota_exceeded)",
            "LimitError",
        ),
        "headers": {**RETRY_AFTER, **RATE_HEADERS},
    },
    "QuotaForbidden": _json(
        "The job asks for more than the tenant's max_dim or steps quota; `field` and `quota` name it "
        "(codes: quota_exceeded)",
        "LimitError",
    ),
}
# STYLEFORGE_AUTH=required: every /v1 operation needs `Authorization: Bearer sf_<id>_<secret>`.
SECURITY_SCHEME = "apiKey"
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "sf_<id>_<secret>",
    "description": "an API key from `styleforge keys create --tenant NAME`",
}
# GET /metrics with STYLEFORGE_METRICS_TOKEN set: the scraper sends that token (api/metrics.py).
METRICS_ENDPOINT = "metrics.metrics"
METRICS_SCHEME = "metricsToken"
METRICS_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "the scrape token, STYLEFORGE_METRICS_TOKEN (not an API key)",
}
METRICS_SUMMARY = "Prometheus metrics: jobs, waits, durations, steps, backlog per queue, HTTP requests"
UNAUTHORIZED = {
    **_json("No API key, or a malformed, unknown or revoked one (codes: unauthorized)", "Error"),
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
}
# component id: (name, location, schema, description); the path ids are added by _add_components.
PARAMETERS = {
    "ListLimit": (
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": LIST_MAX, "default": 20},
        "records",
    ),
    "ItemLimit": (
        "limit",
        "query",
        {"type": "integer", "minimum": 0, "maximum": 1000, "default": 100},
        "items",
    ),
    "ItemOffset": (
        "offset",
        "query",
        {"type": "integer", "minimum": 0, "maximum": 10**6, "default": 0},
        "first",
    ),
    "LastEventIdQuery": (
        "last_event_id",
        "query",
        {"type": "string", "pattern": RESUME_PATTERN},
        "resume after this event id (the Last-Event-ID header wins; both are checked)",
    ),
    "LastEventId": (
        "Last-Event-ID",
        "header",
        {"type": "string", "pattern": RESUME_PATTERN},
        "resume after this event id, as EventSource sends it on reconnecting",
    ),
    "IdempotencyKey": (
        IDEMPOTENCY_HEADER,
        "header",
        {"type": "string"},
        "the same key with the same request answers the first id; with another request 422",
    ),
}


def _op(summary: str, responses: dict, **extra: object) -> dict[str, object]:
    return {"summary": summary, "responses": responses, **extra}


JOB_202 = {
    "202": {
        **_json("Accepted; the job is queued", "Job"),
        "headers": {"Location": {"schema": {"type": "string"}}},
    }
}
BATCH_202 = {
    "202": {
        **_json("Accepted; the items are queued", "Batch"),
        "headers": {"Location": {"schema": {"type": "string"}}},
    }
}
# 404: a `style_id` the caller has no saved style under (unknown, deleted or another tenant's).
SUBMIT_ERRORS = {
    "400": "BadRequest",
    "404": "NotFound",
    "413": "PayloadTooLarge",
    "422": "Unprocessable",
    "503": "Unavailable",
}
ID_ERRORS = {"404": "NotFound", "503": "Unavailable"}
SSE_EVENT = {
    "type": "object",
    "required": ["id", "event", "data"],
    "description": "one event of the stream",
    "properties": {
        "id": {"type": "string", "pattern": EVENT_ID_PATTERN, "description": "the Redis stream id"},
        "event": {"type": "string", "description": "status, progress or snapshot"},
        "data": {
            "type": "string",
            "description": "JSON: type, status, step, total_steps, losses, message, ts, job_id, ...",
        },
    },
}
SSE_RESPONSES = {
    "200": {
        "description": "text/event-stream: one event per status change or progress report, id = stream id",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    },
    "204": {"description": "the stream has ended and nothing after Last-Event-ID was missed"},
    "400": "BadRequest",
    **ID_ERRORS,
}
FORM_ENCODING = {"params": {"contentType": "application/json"}}
JOB_FORM_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": "JobForm", "encoding": FORM_ENCODING}},
}
STYLE_FORM_BODY = {"required": True, "content": {"multipart/form-data": {"schema": "StyleForm"}}}
BATCH_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": "BatchForm", "encoding": FORM_ENCODING},
        "application/json": {"schema": "BatchJson"},
    },
}
HEALTH = {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}}
READY = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
PRESETS_SCHEMA = {
    "type": "object",
    "required": ["default", "presets"],
    "properties": {"default": {"type": "string"}, "presets": {"type": "object"}},
}
METRICS_TEXT = {
    "description": "the Prometheus text exposition format",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
HTML = {"description": "the web page", "content": {"text/html": {"schema": {"type": "string"}}}}

# endpoint: its operations, keyed by HTTP method.
OPERATIONS: dict[str, dict[str, dict]] = {
    METRICS_ENDPOINT: {"get": {}},  # built per settings by _metrics_operation
    "health.healthz": {"get": _op("The process is up", {"200": _json("up", HEALTH)})},
    "health.readyz": {
        "get": _op(
            "Redis and S3 are reachable",
            {"200": _json("ready", READY), "503": _json("a dependency is unreachable", READY)},
        )
    },
    "jobs.create_job": {
        "post": _op(
            "Submit a job: one content image, one to eight style images, options as fields",
            JOB_202 | SUBMIT_ERRORS,
            parameters=["IdempotencyKey"],
            requestBody=JOB_FORM_BODY,
        )
    },
    "jobs.list_jobs": {
        "get": _op(
            "The newest single jobs, newest first",
            {"200": _json("jobs", "JobList"), "400": "BadRequest", "503": "Unavailable"},
            parameters=["ListLimit"],
        )
    },
    "jobs.get_job": {
        "get": _op("A job's snapshot", {"200": _json("the job", "Job"), **ID_ERRORS}, parameters=["JobId"])
    },
    "jobs.cancel_job": {
        "post": _op(
            "Cancel a job: a queued one at once (200), a running one cooperatively (202)",
            {
                "200": _json("canceled", "Job"),
                "202": _json("the running job was asked to stop", "Job"),
                "409": "Conflict",
                **ID_ERRORS,
            },
            parameters=["JobId"],
        )
    },
    "events.job_events": {
        "get": _op(
            "A job's events as Server-Sent Events, ending after its terminal event",
            SSE_RESPONSES,
            parameters=["JobId", "LastEventId", "LastEventIdQuery"],
        )
    },
    "batches.create_batch": {
        "post": _op(
            "Submit a batch: content files, one zip, or JSON naming the caller's objects in the bucket",
            BATCH_202 | SUBMIT_ERRORS | {"403": "Forbidden"},
            parameters=["IdempotencyKey"],
            requestBody=BATCH_BODY,
        )
    },
    "batches.list_batches": {
        "get": _op(
            "The newest batches, newest first",
            {"200": _json("batches", "BatchList"), "400": "BadRequest", "503": "Unavailable"},
            parameters=["ListLimit"],
        )
    },
    "batches.get_batch": {
        "get": _op(
            "A batch's counts, progress, ETA and one page of items",
            {"200": _json("the batch", "Batch"), "400": "BadRequest", **ID_ERRORS},
            parameters=["BatchId", "ItemOffset", "ItemLimit"],
        )
    },
    "batches.results_zip": {
        "get": _op(
            "The finished outputs under their relative paths, as a streamed zip",
            {
                "200": {"description": "zip", "content": {"application/zip": {"schema": BINARY}}},
                **ID_ERRORS,
            },
            parameters=["BatchId"],
        )
    },
    "batches.cancel_batch": {
        "post": _op(
            "Cancel a batch's queued items; running ones finish",
            {"200": _json("the batch", "Batch"), **ID_ERRORS},
            parameters=["BatchId"],
        )
    },
    "events.batch_events": {
        "get": _op(
            "Every item's events of a batch as Server-Sent Events, ending once none is queued or running",
            SSE_RESPONSES,
            parameters=["BatchId", "LastEventId", "LastEventIdQuery"],
        )
    },
    "styles.create_style": {
        "post": _op(
            "Save a house style: one to eight style images, a name, optional blend weights and scale",
            {
                "201": {
                    **_json("Created; use its id as `style_id`", "Style"),
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                **SUBMIT_ERRORS,
            },
            requestBody=STYLE_FORM_BODY,
        )
    },
    "styles.list_styles": {
        "get": _op(
            "The caller's saved styles, newest first",
            {"200": _json("styles", "StyleList"), "400": "BadRequest", "503": "Unavailable"},
            parameters=["ListLimit"],
        )
    },
    "styles.get_style": {
        "get": _op("A saved style", {"200": _json("the style", "Style"), **ID_ERRORS}, parameters=["StyleId"])
    },
    "styles.delete_style": {
        "delete": _op(
            "Delete a saved style; jobs already recorded with it are not touched",
            {"204": {"description": "deleted"}, **ID_ERRORS},
            parameters=["StyleId"],
        )
    },
    "web.index": {"get": _op("The web page for artists", {"200": HTML})},
    "web.static": {
        "get": _op(
            "The web page's files (app.js, style.css, ...)",
            {"200": {"description": "the file"}, "404": "NotFound"},
            parameters=[{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
        )
    },
    "web.presets": {"get": _op("Each preset's defaults", {"200": _json("presets", PRESETS_SCHEMA)})},
    "openapi.openapi_json": {
        "get": _op("This document", {"200": _json("OpenAPI 3.0 document", {"type": "object"})})
    },
}
