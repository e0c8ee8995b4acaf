from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    # Refuses, naming them, when stored usernames already differ only in case: the
    # index could not be built, and which account to keep is for a person to decide.
    # The SHARE lock keeps registrations out between the check and the index.
    return """
        LOCK TABLE "users" IN SHARE MODE;
DO $$
DECLARE
    clashes TEXT;
BEGIN
    SELECT string_agg(names, ', ' ORDER BY folded COLLATE "C") INTO clashes
    FROM (
        SELECT lower(username) AS folded,
               '(' || string_agg(username, ', ' ORDER BY username COLLATE "C") || ')' AS names
        FROM "users"
        GROUP BY lower(username)
        HAVING count(*) > 1
    ) AS groups;
    IF clashes IS NOT NULL THEN
        RAISE EXCEPTION 'cannot make usernames case-insensitive: these usernames differ only in case: %; rename or delete all but one of each, then migrate again', clashes;
    END IF;
END
$$;
CREATE UNIQUE INDEX "users_lower_username_key" ON "users" (lower("username"));"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "users_lower_username_key";"""


MODELS_STATE = (
    "eJztmW1v2jgcwL8KyqtOuptY2pTe3gVKb9xaqIDtTjudLJOYEDWxM9s5inr97mc7Cc4jI9"
    "I6FcYr4P8Q2z/H/j/wZITERQF7O6CbiJMpcgh1jfedJwPDEIkvtfpfOgaMIq2VAg4XgXJw"
    "lKWSwQXjFDpciJcwYEiIXMQc6kfcJ1hIcRwEUkgcYehjT4ti7H+NEeDEQ3yFqFD8/Y8Q+9"
    "hFj4hlP6MHsPRRUJyxryao5IBvIiUbYX6jDOVoC+CQIA6xNo42fEXw1trHXEo9hBGFHMnH"
    "cxrL6cvZpQvNVpTMVJskU8z5uGgJ44DnlrsAWmYAMJ7MwWw4B8BoAcghWMIVU2Vq9Z6cwq"
    "/mu4vexdX55cWVMFHT3Ep6z8nQGkziqPCM58az0kMOEwvFWENlm3BBgirYwQrSerLao0RX"
    "TLtMN2P5evGG8BEECHt8JZl2d7D8bE8HH+zpmdl9Iwck4gAkB2Ocakylkrg1Xof4GNS9uM"
    "18cy7fB3Am0IT1of3xiC1rH8aW1QxZ6oqU1WcLxJn9ie9+fJ2YUoQ5iKjv1IC+CQhsuIYr"
    "niXkS+l6gNB3ML6efOrfDjv30+FgNBtNxnKUcMO+BlopRULgc8VgOrRvS8ADyDiII1cBqf"
    "C+FmLuh6geedm3RNxNnd9mX46L/nx0N5zN7bt7hZ1l2O35UGrM4mak0rPL0mHYPqTz52j+"
    "oSN/dr5MxmrfIsK4R9WI2m7+xZBzgjEnAJM1gG6eSSbORMWzRZEED5Jj0Gaji56vapvHZH"
    "325ifeYJnDLh9yCZcULKDzsIbUBQWNfhNWPuOEbqqvQT91vPk4RQFULKsbnubz9/Ki1en8"
    "YR5sLU3TQQWUmKSJaFUVmmFZAjH01JLk2HKkGmQ1FVKJaHOBpGIcyO3ii5ZJT4ZeXlqbpV"
    "mjQClt0WMk3mImRtoi0JXUIyjMFqQP4MmK0lfKUE8RS1A/nlsVZn3f+1lqs99M8/y8Z3bP"
    "L6+si17Puupui7Sqale11h/9Lgu2wk317QqufVJ2SsZaJWPJoWgTmROPVxWRT4lXNfHK3Z"
    "l7dpUKPt++wA5gR79Hf6mS7ZQh19xOhCLfwx/RRoEeiTlBXHspNfQpDwxzU2IjxBSutzG1"
    "+IIJCmLtKLmYBvZsYF8PkzBcn0q+ZJL0iSHanCPltDtTpFjYnTrIx9VBlnvatgGX9zm6Lr"
    "K1TxfZau4iW5UucgQZW4vDBVaQrdpwrjieOp57djxPXZnjy/5adGVeMpTaSNRfq7owmmp2"
    "hlCobU4x9Fhi6L8iLUrbevte7TmX06W+36UuD1ULwqn5EdJ9190nRRFWjXSVrvxXN+YI18"
    "TLP2aTcdNf3VuXcqD0Hd75rxP47BCL6h1wJYxCjMyYnt3Zf5VxD24n/XLwkw/o1xXdPzKY"
    "Pf8PqfKdWQ=="
)
