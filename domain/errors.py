"""Domain errors. Each carries a message a person can act on."""

from datetime import datetime


class DomainError(Exception):
    """Base of every error the use cases raise on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """The caller sent something that breaks a rule (answered with 400)."""


class InvalidTicker(InvalidInput):
    pass


class InvalidUsername(InvalidInput):
    pass


class InvalidPassword(InvalidInput):
    pass


class UnknownTicker(InvalidInput):
    """CoinGecko lists no coin with this symbol."""


class UnknownCurrency(InvalidInput):
    """A currency that is not one of the configured QUOTE_CURRENCIES."""


class UnknownCoin(InvalidInput):
    """CoinGecko lists no coin of this id under this ticker."""


class Conflict(DomainError):
    """The action clashes with what is stored (answered with 409)."""


class UsernameTaken(Conflict):
    pass


class CryptoAlreadyTracked(Conflict):
    def __init__(self, symbol: object) -> None:
        super().__init__(f"crypto {symbol} is already tracked")


class Forbidden(DomainError):
    """The action is not allowed here, whoever asks (answered with 403)."""


class RegistrationClosed(Forbidden):
    def __init__(self) -> None:
        super().__init__("registration is closed")


class NotFound(DomainError):
    """What the caller named is not stored (answered with 404)."""


class CryptoNotFound(NotFound):
    def __init__(self, symbol: object) -> None:
        super().__init__(f"crypto {symbol} is not tracked")


class InvalidCredentials(DomainError):
    """Wrong username or password (answered with 401, one message for every cause)."""

    def __init__(self, message: str = "invalid username or password") -> None:
        super().__init__(message)


class InvalidToken(DomainError):
    """A bearer token that is missing, malformed, forged or expired (401)."""


class TooManyAttempts(DomainError):
    """Too many failed logins for a username or from an address (answered with 429).

    ``retry_after``: whole seconds until the window lets an attempt through again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins: try again in {retry_after} s")
        self.retry_after = retry_after


class UpstreamError(DomainError):
    """The price source failed; nothing was changed (answered with 500)."""

    # What the live stream's ``upstream`` event says while the poller gets this
    # (``domain.events.UPSTREAM_STATUSES``); a subclass names its own.
    upstream_status = "failing"


class UpstreamRateLimited(UpstreamError):
    """The price source asked us to wait, or our own budget of calls is spent."""

    upstream_status = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CallBudgetSpent(UpstreamRateLimited):
    """The month's budget of CoinGecko calls is spent (answered with 503): no call is
    made until it renews at ``renews_at``, the next calendar month (UTC)."""

    upstream_status = "budget_spent"

    def __init__(self, message: str, renews_at: datetime, now: datetime) -> None:
        super().__init__(message, retry_after=max((renews_at - now).total_seconds(), 1.0))
        self.renews_at = renews_at


class StorageUnavailable(DomainError):
    """The database cannot be reached, or did not answer in time (answered with 503).
    A write cut short by it may or may not have been applied."""

    def __init__(self, message: str = "database unavailable") -> None:
        super().__init__(message)


class TooManyStreams(DomainError):
    """This server holds as many live price streams as it allows (answered with 503)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"too many open price streams on this server (the limit is {limit}); "
            "try again later or poll GET /crypto"
        )


class FeedClosed(DomainError):
    """A price stream's subscription was ended by the server."""
