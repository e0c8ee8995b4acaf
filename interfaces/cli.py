"""Operator commands: ``python -m interfaces.cli create-user USERNAME``.

create-user adds a user whether sign-up is open or not (``REGISTRATION_OPEN=false``),
through the same RegisterUser use case, rules and database as the API (the
configuration comes from the environment, as the server's does). The password is
asked for twice at a terminal; otherwise it is the first line of standard input:

    printf '%s\\n' "$PASSWORD" | python -m interfaces.cli create-user alice
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import TextIO

from bootstrap import bootstrap, database
from domain.errors import InvalidInput, UsernameTaken

EXIT_CREATED = 0
EXIT_INVALID = 1  # the username or the password breaks a rule
EXIT_USAGE = 2  # argparse's own, for a bad command line
EXIT_TAKEN = 3
EXIT_FAILED = 4  # the database could not be reached, or another failure

EPILOG = """exit status: 0 created, 1 the username or password breaks a rule (or the
passwords typed differ), 2 bad command line, 3 the username is taken (in any case),
4 another failure (the database could not be reached...)"""


class Refused(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def read_password(stdin: TextIO) -> str:
    """Prompted for twice at a terminal; else the first line of ``stdin``."""
    if not stdin.isatty():
        return stdin.readline().removesuffix("\n").removesuffix("\r")
    password = getpass.getpass("password: ")
    if getpass.getpass("password again: ") != password:
        raise Refused("the passwords differ", EXIT_INVALID)
    return password


async def create_user(username: str, password: str) -> str:
    """Add the user; a line saying so. Raises Refused."""
    wiring = bootstrap()
    try:
        async with database(wiring):
            user = await wiring.services.register_user.create(username, password)
    except UsernameTaken:
        raise Refused(f"username {username!r} is already taken", EXIT_TAKEN) from None
    except InvalidInput as error:
        raise Refused(error.message, EXIT_INVALID) from None
    finally:
        await wiring.close()
    return f"created user {user.username!r} (id {user.id})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interfaces.cli", epilog=EPILOG)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser(
        "create-user",
        help="add a user (also while registration is closed)",
        epilog=EPILOG,
    )
    create.add_argument("username")
    args = parser.parse_args(argv)
    try:
        password = read_password(sys.stdin)
        print(asyncio.run(create_user(args.username, password)))
    except Refused as refusal:
        print(f"create-user: {refusal}", file=sys.stderr)
        return refusal.status
    except (KeyboardInterrupt, EOFError):
        print("create-user: cancelled", file=sys.stderr)
        return EXIT_INVALID
    except Exception as error:  # an operator wants the cause, not a traceback
        print(f"create-user: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_CREATED


if __name__ == "__main__":
    sys.exit(main())
