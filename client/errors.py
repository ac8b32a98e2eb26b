"""What the SDK raises: the API's error answers, an unreachable API, and a wait that ran out of time."""

from shared.errors import StyleforgeError


class StyleforgeClientError(StyleforgeError):
    """The API (or the result store) answered with an error; `field` names the request field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.status = status
        self.code = code

    def __str__(self) -> str:
        where = f" (field: {self.field})" if self.field else ""
        return f"{self.status} {self.code}: {self.message}{where}"


class ApiUnreachable(StyleforgeError, ConnectionError):
    """No answer from the API at `url` (refused, reset, timed out)."""

    code = "unreachable"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url


class WaitTimedOut(StyleforgeError, TimeoutError):
    """A job or batch was still not finished when the caller's timeout ran out."""

    code = "wait_timed_out"
