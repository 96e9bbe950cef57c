"""A minimal GOTO Marshall webhook receiver: verify the signature, drop duplicates, keep the latest.

Run it::

    MARSHALL_WEBHOOK_SECRET=... uvicorn --factory examples.marshall_receiver:app_from_env --port 9000

and subscribe ``http://<host>:9000/goto/webhook`` in the file named by ``GOTO_WEBHOOKS``.

What a real receiver must keep from this example:

* verify the signature over the RAW body before parsing it (re-serialised JSON would not match);
* answer 2xx quickly and do slow work afterwards (the dispatcher times out and retries slow answers);
* deduplicate by event id: delivery is at-least-once, so the same event may arrive again (here an
  in-memory LRU; in the Marshall, a unique index on the event id in its database);
* order an object's events by ``sequence``, not by arrival: a retried event can arrive after a newer one;
* answer 4xx only when retrying cannot help (bad signature, malformed body): such events are
  dead-lettered at once, while 5xx/429 are retried with backoff.

``verify_signature`` comes from ``service/webhooks/signing.py``, which uses only the standard library:
copy that file into the receiver's code base if it does not install goto-classifier.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.webhooks.signing import SignatureVerificationError, verify_signature

#: How many recent event ids to remember for deduplication (retries arrive within the dispatcher's
#: max_age_s, 24 h by default; size this to a day of events).
SEEN_CAPACITY = 100_000


def create_app(secret: str, tolerance_s: float = 300.0) -> FastAPI:
    """The receiver app; ``app.state.latest`` maps object id to its newest event payload."""
    if not secret:
        raise ValueError("secret: the subscription's shared secret is required")
    app = FastAPI(title="GOTO Marshall webhook receiver (example)")
    seen: OrderedDict[str, None] = OrderedDict()
    app.state.latest = {}
    app.state.processed = []  # every event handled once, in arrival order (for the demo and tests)

    def handle(event: dict[str, Any]) -> None:
        """Application logic: here, keep the newest classification per object."""
        app.state.processed.append(event)
        current = app.state.latest.get(event["object_id"])
        if current is None or event["sequence"] >= current["sequence"]:
            app.state.latest[event["object_id"]] = event

    @app.post("/goto/webhook")
    async def goto_webhook(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            verify_signature(secret, request.headers, body, tolerance_s)
        except SignatureVerificationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        try:
            event = json.loads(body)
            event_id = event["id"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "body is not a webhook event"}, status_code=400)
        if event_id in seen:
            return JSONResponse({"status": "duplicate"})
        handle(event)
        seen[event_id] = None
        if len(seen) > SEEN_CAPACITY:
            seen.popitem(last=False)
        return JSONResponse({"status": "ok"})

    return app


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory``: the secret comes from ``MARSHALL_WEBHOOK_SECRET``."""
    return create_app(os.environ.get("MARSHALL_WEBHOOK_SECRET", ""))
