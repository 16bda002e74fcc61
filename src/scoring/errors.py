"""One error family: every fault the service, the commands and the pipelines name derives from here.

Each error carries a stable ``code`` (what a client or a script matches on), the HTTP status it is
answered with where it reaches the API, and its message in Chinese and English. The API maps the
whole family in one exception handler; the CLI catches it once (feast's ``errors.py`` has the same
shape: one base with ``http_status_code()`` and a detail dict).
"""

from __future__ import annotations

from typing import Any


class ScoringError(Exception):
    """The base of every error this package raises on purpose.

    Subclasses set ``code``, ``status`` and ``title_zh`` (a short Chinese statement of the kind of
    fault); an instance may override any of them. Without an explicit ``message_zh`` the Chinese
    message is the title followed by the English detail, so nothing said in English is lost.

    Args:
        message_en: what went wrong, in English, naming the file, field or value at fault.
        message_zh: the same in Chinese (default: ``title_zh`` and the English detail).
        code: the stable code (default: the class's).
        status: the HTTP status (default: the class's; None where the error never reaches the API).
        field: the request field at fault, if any.
        headers: extra HTTP headers of the answer (``Retry-After``, ``WWW-Authenticate``).
    """

    code: str = "error"
    status: int | None = None
    title_zh: str = "处理失败"

    def __init__(
        self,
        message_en: str,
        *,
        message_zh: str | None = None,
        code: str | None = None,
        status: int | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_zh = message_zh if message_zh is not None else f"{self.title_zh}：{message_en}"
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.field = field
        self.headers = headers

    def http_status_code(self) -> int:
        """The status the API answers with: the error's own, else 500 (a fault of ours, not the caller's)."""
        return self.status if self.status is not None else 500

    def detail(self) -> dict[str, Any]:
        """The body's ``error`` object: code, both messages and the field."""
        return {"code": self.code, "message_zh": self.message_zh, "message_en": self.message_en, "field": self.field}


class ApiError(ScoringError):
    """An error raised where the request is answered: its status and both messages given in full."""

    def __init__(
        self,
        status: int,
        code: str,
        message_zh: str,
        message_en: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message_en, message_zh=message_zh, code=code, status=status, field=field, headers=headers)
        self.status: int = status
