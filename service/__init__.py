"""Online service: FastAPI app, Redis state store, incremental inference, webhooks, metrics, CLI.
Imports ``lightcurve``; never imports ``trainer``."""
