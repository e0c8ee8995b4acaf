"""The service's clock: UTC, to the second (the precision the API shows)."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
