"""The baseline of bench.goals: a bare Sanic app that answers GET / with a fixed JSON
object, the one the harness passes in BENCH_BARE_BODY (a crypto object as the real
server serialises it), so both answer bodies of the same size.

    BENCH_BARE_BODY='{"a": 1}' sanic bench._bare_app:app --single-process
"""

from __future__ import annotations

import json
import os

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic.response import json as json_response

BODY = json.loads(os.environ.get("BENCH_BARE_BODY", "{}"))

app = Sanic("bench_bare")
app.config.ACCESS_LOG = False
# Bare: without sanic-ext, which Sanic would otherwise load by itself when installed
# (its injection signal and CORS middleware would run on every request).
# BENCH_BARE_EXTEND=1 loads it, for the reference bench.goals also shows.
app.config.AUTO_EXTEND = os.environ.get("BENCH_BARE_EXTEND") == "1"


@app.get("/")
async def fixed(request: Request) -> HTTPResponse:
    return json_response(BODY)
