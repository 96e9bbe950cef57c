"""After a Redis restart the first requests succeed (issue 16, item 3): a connection the server dropped
is replaced by a fresh one, never by another connection that predates the restart (real server, a
real Redis restarted on the same port with its data)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import RedisProcess, ThreadServer, make_settings

pytestmark = pytest.mark.slow

N = 12


def _det(i: int) -> dict[str, Any]:
    return {"object_id": f"GOTO_restart{i}", "mjd": 58600.0, "mag": 18.0, "mag_err": 0.05, "ra": 45.0,
            "dec": -10.0}


async def _gets(url: str) -> list[int]:
    """``N`` concurrent reads: each holds one of the store's connections while it waits."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        responses = await asyncio.gather(*(client.get(f"/objects/GOTO_restart{i}") for i in range(N)))
    return [r.status_code for r in responses]


def test_first_requests_after_a_redis_restart_succeed(
    tiny_model_dir: Path, loaded_model: Any, tmp_path: Path
) -> None:
    from service.app import create_app

    redis_server = RedisProcess(tmp_path, persistent=True)
    redis_server.start()
    settings = make_settings(tiny_model_dir, redis_server.url, redis_timeout_s=1.0)
    try:
        with ThreadServer(create_app(settings, model=loaded_model)) as srv:
            with httpx.Client(base_url=srv.url) as client:
                for i in range(N):
                    assert client.post("/classify", json=_det(i)).status_code == 200
            for _ in range(3):  # several idle connections in the store's pool
                assert asyncio.run(_gets(srv.url)) == [200] * N

            redis_server.stop()  # while the service is idle
            redis_server.start()  # same port, same data

            assert asyncio.run(_gets(srv.url)) == [200] * N
            with httpx.Client(base_url=srv.url) as client:
                r = client.post("/classify", json={**_det(0), "mjd": 58601.0})
            assert r.status_code == 200 and r.json()["n_detections"] == 2
    finally:
        redis_server.stop()
