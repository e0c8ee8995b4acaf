"""Tables, as Tortoise models. Migrations are generated from these with aerich.

Repositories convert them to the domain entities; nothing outside
``infrastructure.db`` should import them.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.fields.db_defaults import Now
from tortoise.indexes import Index
from tortoise.models import Model


class UserRecord(Model):
    id = fields.IntField(primary_key=True)
    # Also unique regardless of case: the unique index on lower(username) is in
    # migration 1_..._username_case_insensitive, as Tortoise cannot declare an
    # expression index unique (so aerich neither generates nor drops it).
    username = fields.CharField(max_length=50, unique=True)
    password_hash = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(db_default=Now())

    class Meta:
        table = "users"


class CryptoRecord(Model):
    id = fields.IntField(primary_key=True)
    symbol = fields.CharField(max_length=20, unique=True)
    coin_id = fields.CharField(max_length=255)
    name = fields.CharField(max_length=255)
    # The latest observation's price in each quote currency it has one in, by
    # lower-case code ({"usd": 67187.33, "eur": 61850.2}): a currency configured
    # later is simply absent, one no longer configured may stay.
    current_prices = fields.JSONField()
    last_updated = fields.DatetimeField()
    created_at = fields.DatetimeField(db_default=Now())

    history: fields.ReverseRelation[PriceRecord]

    class Meta:
        table = "cryptos"


class PriceRecord(Model):
    id = fields.BigIntField(primary_key=True)
    crypto: fields.ForeignKeyRelation[CryptoRecord] = fields.ForeignKeyField(
        "models.CryptoRecord", related_name="history", on_delete=fields.CASCADE
    )
    # One observation: its price in every currency it has one in (as current_prices),
    # so HISTORY_LIMIT counts observations, whatever the number of currencies.
    prices = fields.JSONField()
    ts = fields.DatetimeField()

    class Meta:
        table = "price_history"
        # id too: the trim finds each crypto's keep-th newest (ts, id) by an
        # index-only scan, where a heap fetch per history row would cost ten times more.
        indexes = (Index(fields=("crypto_id", "ts", "id"), name="idx_price_history_crypto_ts_id"),)


class MonthCallsRecord(Model):
    """CoinGecko calls of a calendar month (UTC), for the whole deployment.

    One row a month, counted up by ``infrastructure.db.month_calls``."""

    month = fields.DateField(primary_key=True)  # the month's first day
    calls = fields.IntField()

    class Meta:
        table = "coingecko_month_calls"
