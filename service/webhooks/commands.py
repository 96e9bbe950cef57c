"""CLI handlers: ``goto-classifier dispatch`` and ``goto-classifier webhooks dead-letters|replay-...``.

They talk to a Redis server (``--redis-url`` or ``GOTO_REDIS_URL``); the embedded Redis lives inside
``serve``, whose dispatcher runs as a background task, so a separate dispatcher needs a real server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["dead_letters", "dispatch", "replay_dead_letters"]


class _UsageError(Exception):
    pass


def _redis_url(args: argparse.Namespace) -> str:
    url = getattr(args, "redis_url", None) or os.environ.get("GOTO_REDIS_URL")
    if not url:
        raise _UsageError("no Redis to connect to: pass --redis-url or set GOTO_REDIS_URL (a separate "
                          "dispatcher needs a Redis server; the embedded one lives inside `serve`)")
    return url


def _webhooks_path(args: argparse.Namespace, required: bool) -> str | None:
    path = getattr(args, "webhooks", None) or os.environ.get("GOTO_WEBHOOKS")
    if required and not path:
        raise _UsageError("no subscriptions: pass --webhooks FILE or set GOTO_WEBHOOKS")
    return path


def _connect(url: str) -> Any:
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def _run(coro_factory: Any) -> int:
    try:
        return int(asyncio.run(coro_factory()) or 0)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from service.webhooks.config import WebhookConfigError

        if isinstance(exc, WebhookConfigError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


def dispatch(args: argparse.Namespace) -> int:
    """Run a dispatcher until SIGTERM/SIGINT, then stop gracefully."""
    from service.logs import configure_logging
    from service.webhooks.config import load_subscriptions
    from service.webhooks.dispatcher import Dispatcher

    # JSON lines like the service when GOTO_LOG_JSON is set (serve starts this command as its dispatcher)
    json_lines = os.environ.get("GOTO_LOG_JSON", "").strip().lower() in ("1", "true", "yes", "on")
    configure_logging(getattr(args, "log_level", "info"), json_lines)

    async def main() -> int:
        path = _webhooks_path(args, required=True)
        assert path is not None
        subscriptions = load_subscriptions(path)
        if not subscriptions:
            raise _UsageError(f"{path}: no subscriptions to dispatch")
        url = _redis_url(args)
        if args.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(args.metrics_port, addr=args.metrics_host)
        redis = _connect(url)
        dispatcher = Dispatcher(redis, subscriptions, max_in_flight=args.max_in_flight,
                                claim_idle_s=args.claim_idle_s)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(dispatcher.stop()))
        print(f"dispatching {len(subscriptions)} subscription(s) as consumer {dispatcher.consumer}",
              file=sys.stderr, flush=True)
        try:
            await dispatcher.run()
        finally:
            await redis.aclose()
        return 0

    return _run(main)


async def _subscription_ids(args: argparse.Namespace, redis: Any, need_secrets: bool = True) -> list[str]:
    if args.subscription:
        return list(args.subscription)
    path = _webhooks_path(args, required=False)
    if path:
        from service.webhooks.config import load_subscriptions

        return [s.sid for s in load_subscriptions(path, need_secrets=need_secrets)]
    # No configuration at hand: find every subscription that has a dead-letter stream.
    from service.webhooks.outbox import dead_letter_key

    pattern = dead_letter_key("*")
    prefix, suffix = pattern.split("*")
    keys = [k.decode() if isinstance(k, bytes) else k async for k in redis.scan_iter(match=pattern)]
    return sorted(k[len(prefix):-len(suffix)] for k in keys)


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def dead_letters(args: argparse.Namespace) -> int:
    """List dead-lettered events (table, or JSON lines with ``--json``)."""
    from service.webhooks.deadletters import list_dead_letters

    async def main() -> int:
        redis = _connect(_redis_url(args))
        try:
            rows = []
            for sid in await _subscription_ids(args, redis, need_secrets=False):
                rows += await list_dead_letters(redis, sid, count=args.limit)
        finally:
            await redis.aclose()
        if args.json:
            for row in rows:
                print(json.dumps(row.as_dict()))
            return 0
        if not rows:
            print("no dead letters")
            return 0
        print(f"{'subscription':<20} {'entry':<17} {'event id':<36} {'type':<33} {'object':<24} "
              f"{'reason':<12} {'att':>3} {'status':>6} {'dead at':<20} error")
        for r in rows:
            print(f"{r.subscription_id:<20} {r.entry_id:<17} {r.event_id:<36} {r.type:<33} {r.object_id:<24} "
                  f"{r.reason:<12} {r.attempts:>3} {r.last_status:>6} {_iso(r.dead_at):<20} {r.last_error}")
        return 0

    return _run(main)


def replay_dead_letters(args: argparse.Namespace) -> int:
    """Move dead letters back to the outbox (``--id`` ones, or ``--all``)."""
    from service.webhooks.deadletters import replay_dead_letters as replay

    if not args.all and not args.id:
        print("error: name dead letters with --id (entry or event id, repeatable) or pass --all",
              file=sys.stderr)
        return 2

    async def main() -> int:
        redis = _connect(_redis_url(args))
        try:
            total = 0
            for sid in await _subscription_ids(args, redis):
                moved = await replay(redis, sid, None if args.all else args.id)
                if moved:
                    print(f"{sid}: {moved} event(s) back in the outbox")
                total += moved
        finally:
            await redis.aclose()
        if not total:
            print("nothing replayed (no matching dead letters)")
            return 1 if args.id else 0
        return 0

    return _run(main)
