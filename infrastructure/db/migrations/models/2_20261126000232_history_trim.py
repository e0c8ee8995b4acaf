from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    # The trim deletes, per crypto, the rows older than its keep-th newest (ts, id):
    # with id in the index that lookup is an index-only scan. Each poll cycle deletes
    # one row per crypto, so vacuum at 2% dead rows, not the default 20%: the space
    # is reused before the table grows, and the visibility map stays current, which
    # is what lets those index-only scans skip the heap.
    return """
        DROP INDEX IF EXISTS "idx_price_history_crypto_ts";
        CREATE INDEX IF NOT EXISTS "idx_price_history_crypto_ts_id" ON "price_history" ("crypto_id", "ts", "id");
        ALTER TABLE "price_history" SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "price_history" RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor);
        DROP INDEX IF EXISTS "idx_price_history_crypto_ts_id";
        CREATE INDEX IF NOT EXISTS "idx_price_history_crypto_ts" ON "price_history" ("crypto_id", "ts");"""


MODELS_STATE = (
    "eJztme1v2jgYwP8VlE+ddDextCm9fQuU3ri1UAHbnXY6WSYxIWpiZ7ZzFPX6v5/tJDivjE"
    "jrVBifgOfxEz/+OfbzwpMREhcF7O2AbiJOpsgh1DXed54MDEMkvtTqf+kYMIq0Vgo4XATK"
    "wFEjlQwuGKfQ4UK8hAFDQuQi5lA/4j7BQorjIJBC4oiBPva0KMb+1xgBTjzEV4gKxd//CL"
    "GPXfSIWPYzegBLHwVFj33loJIDvomUbIT5jRooZ1sAhwRxiPXgaMNXBG9H+5hLqYcwopAj"
    "+XhOY+m+9C5daLaixFM9JHExZ+OiJYwDnlvuAmiZAcB4Mgez4RwAowUgh2AJV7jK1Oo96c"
    "Kv5ruL3sXV+eXFlRii3NxKes/J1BpMYqjwjOfGs9JDDpMRirGGyjbhggRVsIMVpPVktUWJ"
    "rnC7TDdj+XrxhvARBAh7fCWZdnew/GxPBx/s6ZnZfSMnJOIAJAdjnGpMpZK4NV6H+BjUvb"
    "jNfHMm3wdwJtCE9aH98Ygtax/GltUMWeqKlNVnC8TZ+BPf/fg6MaUIcxBR36kBfRMQ2HAN"
    "VyxLyJfS9ACh72B8PfnUvx127qfDwWg2mozlLOGGfQ20UoqEwOeKwXRo35aAB5BxEEeuAl"
    "LhfS3E3A9RPfKybYm4mxq/zb4cF/356G44m9t39wo7y7Db86HUmMXNSKVnl6XDsH1I58/R"
    "/ENH/ux8mYzVvkWEcY+qGfW4+RdD+gRjTgAmawDdPJNMnImKZ4siCR4kx6DNRhctX9U2j8"
    "n67M1PvMEyh10+5BIuKVhA52ENqQsKGv0mrHzGCd1UX4N+anjzcYoCqFhWNzzN5+/lRavT"
    "+cM82FqapoMKKDFJE9GqKjTDsgRi6KklybnlTDXIaiqkEtHmAknFOJDbxRctk54Mvby0Nk"
    "uzRq7cEt+lBXqMxLvMxHxbELqeegQFn0H6GM6yJ6XvlqEeJNaifjy3qtD6vvezFGm/meb5"
    "ec/snl9eWRe9nnXV3VZrVdWusq0/+l1WboUr69ulXPvs7JSVtcrKkoPVJkQnFq8qNJ8ysG"
    "oGlrs892wvFWy+fYEdwI5+j0ZTJe0pQ665nQhFvoc/oo0CPRI+QVx7KTU0LA8Mc1OGI8QU"
    "rrcxtfiCCQpi7Si5mAb2bGBfD5MwXJ9TvmS29Ikh2pws5bQ7c6VYjDu1ko+rlSz3tG0nLm"
    "9zdO1ka592stXcTrYq7eQIMrYWhwusIFu14VwxPLU+92x9ntozx5f9tWjPvGQotZGov1Z1"
    "YTTV7AyhUI85xdBjiaH/irQo7e/te7XnTE6X+n6XujxULQinw4+Q7rvuPimKGNVIV+nK/3"
    "ljjnBNvPxjNhk3/ee9NSkHSt/hnf86gc8OsajeAVfCKMTIjOnZnf1XGffgdtIvBz/5gH5d"
    "0f0jg9nz/+Lzn+I="
)
