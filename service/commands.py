"""Handler of the ``goto-classifier serve`` subcommand."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["serve"]

log = logging.getLogger("service")

#: Set before numpy/TensorFlow load in the workers: one BLAS thread per worker (two workers on two
#: cores would otherwise oversubscribe), quiet TensorFlow.
WORKER_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}


def _build_engine_file(model_dir: str, tolerance: float, path: str) -> None:
    """Child process: load the Keras artifact, build and verify the step engine, save it."""
    for name, value in WORKER_ENV.items():
        os.environ.setdefault(name, value)
    from pathlib import Path

    from service.inference import load_model, save_verified_engine

    loaded = load_model(Path(model_dir), tolerance)  # raises (exit code 1) if the engine differs
    try:
        save_verified_engine(loaded, Path(path))
    except OSError as exc:
        log.warning("cannot write the verified engine to %s (%s); workers will load the model", path, exc)
        raise SystemExit(3) from None


def verified_engine_file(settings: Settings) -> Path | None:
    """Verify the step engine once (in a child process, so this supervisor never holds TensorFlow) and
    return the file the workers load it from (``None``: not writable, workers load the model
    themselves); exits if the engine does not equal the Keras model."""
    import multiprocessing

    from service.inference import load_verified_engine, model_fingerprint

    path = settings.data_dir / "engines" / f"{model_fingerprint(settings.model_dir)}.npz"
    if load_verified_engine(path, settings.model_dir, settings.engine_tolerance) is not None:
        return path
    child = multiprocessing.get_context("spawn").Process(
        target=_build_engine_file, args=(str(settings.model_dir), settings.engine_tolerance, str(path))
    )
    child.start()
    child.join()
    if child.exitcode == 3:
        return None
    if child.exitcode != 0:
        raise SystemExit("the step engine could not be built or differs from the Keras model; not serving")
    return path


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir() -> Path | None:
    """Set up prometheus-client multiprocess mode for the workers; returns a directory to remove at exit.

    Must run before anything imports ``prometheus_client`` (it chooses its value store at import). An
    operator-chosen ``PROMETHEUS_MULTIPROC_DIR`` is emptied of metric files (values of a previous run
    would be added to this run's); otherwise a fresh temporary directory is used and removed at exit.
    """
    chosen = os.environ.get(MULTIPROC_ENV)
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    path = Path(tempfile.mkdtemp(prefix="goto-classifier-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def prepare_peer_dir(workers: int) -> Path | None:
    """With several workers, a private directory where they find each other (``service.affinity``)."""
    if workers < 2 or os.environ.get("GOTO_PEER_DIR"):
        return None
    path = Path(tempfile.mkdtemp(prefix="goto-classifier-peers-"))
    os.environ["GOTO_PEER_DIR"] = str(path)
    os.environ["GOTO_PEER_WORKERS"] = str(workers)
    return path


def serve(args: argparse.Namespace) -> int:
    """Run the HTTP service with ``args.workers`` uvicorn workers.

    Settings are validated here, before any worker starts, so a bad ``GOTO_*`` value fails at once.
    With several workers the step engine is built from the Keras artifact and verified once, in a
    child process, and the workers load the verified weights without importing TensorFlow (each would
    otherwise hold ~650 MB of it); a single worker simply loads the artifact itself.
    Without ``GOTO_REDIS_URL`` an embedded Redis server is started first and its URL exported to the
    workers, so that all of them share one server. With webhooks configured one dispatcher process runs
    beside the workers (``GOTO_WEBHOOK_DISPATCHER=auto``; see ``service.webhooks.process``). Prometheus
    metrics are collected across workers through ``PROMETHEUS_MULTIPROC_DIR`` (see
    :func:`prepare_metrics_dir`). Each object is classified by one worker, the others forward its
    detections there (see :func:`prepare_peer_dir` and ``service.affinity``).
    """
    for name, value in WORKER_ENV.items():
        os.environ.setdefault(name, value)
    metrics_dir = prepare_metrics_dir()
    peer_dir = prepare_peer_dir(args.workers)
    try:
        return _serve(args)
    finally:
        for path in (metrics_dir, peer_dir):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)


def _exit_after_shutdown(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lightcurve.metadata import load_metadata
    from service.embedded_redis import EmbeddedRedis
    from service.logs import configure_logging
    from service.settings import load_settings, redacted_url

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        load_metadata(settings.model_dir)
    except ValueError as exc:
        raise SystemExit(f"invalid model directory: {exc}") from None
    if settings.webhooks is not None:  # fail here, not in every worker
        from service.webhooks import WebhookConfigError, load_subscriptions

        try:
            load_subscriptions(settings.webhooks)
        except WebhookConfigError as exc:
            raise SystemExit(f"invalid webhook subscriptions: {exc}") from None
    if args.workers > 1 and "GOTO_ENGINE_FILE" not in os.environ:
        engine_file = verified_engine_file(settings)
        if engine_file is not None:
            os.environ["GOTO_ENGINE_FILE"] = str(engine_file)
    embedded = None
    if settings.redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        os.environ["GOTO_REDIS_URL"] = embedded.start()
        os.environ["GOTO_REDIS_EMBEDDED"] = "true"  # so the workers' start-up line says so
    else:
        log.info("external Redis at %s", redacted_url(settings.redis_url))
    dispatcher = None
    if settings.webhooks is not None and settings.webhook_dispatcher in ("auto", "process"):
        from service.webhooks.process import DispatcherProcess

        os.environ["GOTO_WEBHOOK_DISPATCHER"] = "process"  # the workers leave delivery to it
        dispatcher = DispatcherProcess(os.environ["GOTO_REDIS_URL"], settings.webhooks, settings.log_level)
        dispatcher.start()
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, restoring the handlers it found;
    # with the default handler the process would die there and skip the clean-up below (the embedded
    # Redis was left running). This handler turns the re-raised signal into a normal exit.
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    try:
        uvicorn.run(
            "service.app:create_app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=settings.log_level,
            # No uvicorn log config: its loggers propagate to the root handler set by configure_logging
            # (JSON with GOTO_LOG_JSON), and the access log is the service's own (service.access, with
            # request id and route template), so uvicorn's is off.
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
            # Per-request work nobody here needs: the service is not behind a proxy that rewrites
            # client addresses, and Server/Date headers are not part of the API.
            proxy_headers=False,
            server_header=False,
            date_header=False,
        )
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        if embedded is not None:
            embedded.stop()
    return 0
