"""Errors that cross module boundaries. ``ApiError`` is rendered by each HTTP surface in its own
error shape (native: ``{"error": {"code", "message", "details": [{"path", "message"}]}}``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    path: str
    message: str


@dataclass(eq=False)
class ApiError(Exception):
    """A client-visible error: HTTP ``status``, stable machine ``code``, human ``message``.

    Not frozen: the interpreter sets attributes (``__traceback__``, ``__notes__``) on exceptions.
    """

    status: int
    code: str
    message: str
    details: tuple[ErrorDetail, ...] = field(default=())
    retry_after: int | None = None
    """Seconds a client should wait before retrying (sent as ``Retry-After``; 429 and 503)."""

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def to_native(self) -> dict[str, object]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "details": [{"path": d.path, "message": d.message} for d in self.details],
            }
        }
