"""Offline trainer: data (simulator and real-data loader), model, losses, training, grid, evaluation,
report and export of a model directory. Imports ``lightcurve``; never imports ``service``."""
