"""Times as the API answers them: in UTC, with the offset (RFC 3339)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator


def _utc(value: dt.datetime) -> dt.datetime:
    """A time with its offset: the store keeps UTC, and SQLite gives it back without the zone."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


UtcDatetime = Annotated[dt.datetime, AfterValidator(_utc)]
