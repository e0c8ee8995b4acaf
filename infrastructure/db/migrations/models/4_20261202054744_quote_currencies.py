"""Prices in several quote currencies (issue 15): ``cryptos.current_price`` and
``price_history.price`` (float8) become ``current_prices`` and ``prices`` (jsonb), a
JSON object of lower-case currency code -> number; today's prices move in as
``{"usd": price}``.

Nothing is lost: each float8 becomes the JSON number of its shortest exact decimal
(``extra_float_digits`` > 0, set here so that a server or role configured with 0,
which prints 15 digits, cannot round them), so ``(prices->>'usd')::float8`` reads back
the very same double, 0.30000000000000004 and 5e-324 included. NaN and the
infinities, which JSON numbers cannot hold and versions before prices were checked
may have stored, become the JSON strings "NaN", "Infinity" and "-Infinity"
(PostgreSQL's own to_jsonb of them), which read back as the same float8 through that
cast; the code reads a NaN as "no price in that currency".

Each column is changed in place (ALTER ... TYPE ... USING): one rewrite of each table,
no dead row versions left behind, the (crypto_id, ts, id) index rebuilt with it.

Downgrade, best effort: only the usd price can go back into a float8 column, so a
history row with no usd price is deleted, and so is a crypto whose current prices
have none (with its history: the old schema cannot hold a crypto without a price).
Prices in other currencies are dropped.
"""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        SET LOCAL extra_float_digits = 3;
        ALTER TABLE "cryptos" ALTER COLUMN "current_price" TYPE JSONB USING jsonb_build_object('usd', "current_price");
        ALTER TABLE "cryptos" RENAME COLUMN "current_price" TO "current_prices";
        ALTER TABLE "price_history" ALTER COLUMN "price" TYPE JSONB USING jsonb_build_object('usd', "price");
        ALTER TABLE "price_history" RENAME COLUMN "price" TO "prices";"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DELETE FROM "cryptos" WHERE NOT ("current_prices" ? 'usd');
        DELETE FROM "price_history" WHERE NOT ("prices" ? 'usd');
        ALTER TABLE "price_history" ALTER COLUMN "prices" TYPE DOUBLE PRECISION USING ("prices" ->> 'usd')::float8;
        ALTER TABLE "price_history" RENAME COLUMN "prices" TO "price";
        ALTER TABLE "cryptos" ALTER COLUMN "current_prices" TYPE DOUBLE PRECISION USING ("current_prices" ->> 'usd')::float8;
        ALTER TABLE "cryptos" RENAME COLUMN "current_prices" TO "current_price";"""


MODELS_STATE = (
    "eJztWltz4jYU/isaP5GZNMOSENK+ASG7dBvYSdi2s92OImxhPLElrySXMGn+eyVhfLdjpt"
    "ndwPoJ+1zko+9I5yLxaHjUwi4/GbK1L+gNNimzjF/Ao0GQh+VDIf8YGMj3Y64iCDR3tYKp"
    "JTUNzblgyBSSvEAux5JkYW4yxxcOJZJKAtdVRGpKQYfYMSkgzpcAQ0FtLJaYScZff0uyQy"
    "z8gPn21b+HCwe7aYsdbaCmQ7H2NW1MxJUWVF+bQ5O6gUdiYX8tlpRE0g4RimpjghkSWA0v"
    "WKDMV9aFE93OaGNpLLIxMaFj4QUKXJGY7hzGNAPCyXQGb0czCI0dADIpUeBKU7meva1M+K"
    "nz5qx3dnF6fnYhRbSZEaX3tPl0DMxGUcMzmRlPmo8E2khojGNQ+dqbUzcP7HCJWDGysUYG"
    "XWl2Ft0tlq8XXg89QBcTWywVpu0KLH/v3wzf9W9anfaR+iCVG2CzMSYhp6NZCu4YXpM6BB"
    "Yt3HJ8EyovA/CWECMcb9pvD3G3WwfjbrccZMVLo6x/d4B4K9/gWw9fM2AMEwF95piY55H+"
    "9XY6KVnMOc0M5pZjCvAvcB2eC817gH0F1AoTNbLH+Rc3iXDruv9nFvzhb9OBBodyYTM9ih"
    "5gkHGEi7iAgW9phHJuuJRk4Xi42BVZ3awjQuWT7cNhuWM2vh7dzvrXH1I+uezPRorT0dR1"
    "hto6z/gpGgT8MZ69A+oVfJpORlnXRXKzT4ayCQWCQkJXEFlJTLbkLSm95xhWwEMkdnV0Wv"
    "NVuXlCV62jH9jBqrZd3CcKMUWYI/N+hZgFU5x4JSxlbKRsnV8Gg1Dx6v0NdpHGMu/wsM7/"
    "oAJwXObv58aOqWGZqAGlHVqGaJ7ldbwsBRFk6ympb6svhZBdUyKWQ+S6vLx9yskcV7ZQsr"
    "SzsXlPoaf0oKkUazVUxlCqvlWqQCsBugBIPWJiIQb0cKD1cTY8OgYLyoDsrcBqSV0MLOy7"
    "dO3JJHxiZLB+kUE/k89kSjBgdCWVtc4xMGlA5OICgQ/ma3B355AFk+mHBaYImIw985MEAH"
    "d32rL/0RnqwYrDZHGIjBSqouPeNTMV0VFFvGc6wWgx1uywI/nnm+w9iDAv0WfvEN2/ZtxK"
    "hvqCkJXJBOXRStfsMJF9vuqxz6MRTy88awq7YKHNks9KAz/4Mgdz+b0IiPh86AGmbIbhMI"
    "JvRwqXqKEHknPRL087nTgNHPtHOXT6udM5Pe112qfnF92zXq970Y52RZ5VtT0G47dqh6RK"
    "reePpnbvNpsu80W6TFEAenXLIQpBbzrK795wpDvKRFCtm+STOk2iL0v0WZDzCF9Rhh2bvM"
    "drDfRY2oSIWXQKWXIxs2cwl3VskszQKsq16QUmUZBzx2JzfNu/HfYvR5v0/O2rqI8cs/Ii"
    "KsGtrKECKddcmR3WlZny6a43Dkmdg7s269a5NuuWX5t1c9dmPuJ8JTcXXCJe0NiX45xTbK"
    "54al7xNMfNh1f9vZIDiT6WfdmyKI2GnMoUimKZJoceSg79R5ZF4X1F3dCeUGmCer2grjbV"
    "DgiH4geI7pt2nRJFSpWiq3nZ//YQgUlBvqz4O0Ss0pxQ7XhC9V2T2dN/qqk64g=="
)
