"""Typed errors of the API client. Messages say what happened and what to do, never the key."""

from __future__ import annotations


class ApiError(Exception):
    """A request failed in a way retrying will not fix (or retries ran out)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, path: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code
        self.path = path


class ConfigError(ApiError):
    """The client was configured with values that cannot work; raised before any request."""


class AuthenticationError(ApiError):
    """401: the key was rejected."""


class ForbiddenError(ApiError):
    """403: the key is valid but may not read this resource."""


class NotFoundError(ApiError):
    """404: the path does not exist under the configured API root."""


class BadRequestError(ApiError):
    """400: the server refused the request's parameters."""


class RetriesExhaustedError(ApiError):
    """A retryable failure (5xx, 429, network, bad body) persisted through every retry."""


class UnexpectedResponseError(ApiError):
    """A 200 response in no shape the client knows: an error, never an empty resource."""


def describe_body(body: bytes, content_type: str = "") -> tuple[str | None, str]:
    """(error.code, message) from an error body: the JSON envelope, or a short note for HTML/other bodies."""
    import orjson  # here, not at the top: the Dagster definitions import these errors, never parse a body

    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            return (str(code) if code is not None else None, str(message) if message is not None else "")
        if isinstance(parsed.get("message"), str):
            return None, parsed["message"]
    if "html" in content_type.lower() or body.lstrip()[:1] == b"<":
        return None, "an HTML page instead of JSON, typically from a gateway in front of the API"
    snippet = body[:120].decode("utf-8", errors="replace").strip()
    return None, snippet or "empty body"


_ADVICE: dict[int, tuple[type[ApiError], str]] = {
    400: (
        BadRequestError,
        "The API refused the request's parameters. Check page_size (1..250) and the filters; "
        "if they look right, the API may have changed: report it with this message.",
    ),
    401: (
        AuthenticationError,
        "The API rejected the key in SCHED_API_KEY. Check that SCHED_API_KEY holds a current API key "
        "for this API root (keys start with cal_live_ or cal_); create a new key in the account settings "
        "if it was revoked or expired.",
    ),
    403: (
        ForbiddenError,
        "The key in SCHED_API_KEY is valid but not allowed to read this resource. Use a key of a user "
        "who can read it, or deselect this asset.",
    ),
    404: (
        NotFoundError,
        "The path does not exist under the configured API root. Check SCHED_API_BASE_URL "
        "(it must include the version prefix, e.g. https://api.cal.com/v2).",
    ),
}


def error_for_status(status: int, body: bytes, content_type: str, resource: str, path: str) -> ApiError:
    """The typed, user-facing error for a non-retryable HTTP status."""
    code, server_message = describe_body(body, content_type)
    cls, advice = _ADVICE.get(status, (ApiError, "The API refused the request; this is not retried."))
    quoted = f"{code}: {server_message}" if code else server_message
    message = f"{resource}: GET {path} failed with HTTP {status} ({quoted}). {advice}"
    return cls(message, status=status, code=code, path=path)
