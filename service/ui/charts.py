"""The object page's three plots: light curve, probabilities against detection number and against time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.store import StoredDetection
from service.ui.svg import Axis, Plot, esc

__all__ = ["light_curve_svg", "probability_svg", "version_changes"]


def light_curve_svg(light_curve: Sequence[StoredDetection], used_ids: frozenset[str], n_steps: int) -> str:
    """Magnitude against MJD with error bars, y inverted; the model's input (``circle.det.used``) drawn
    apart from the detections beyond its first ``n_steps`` (``circle.det.beyond``)."""
    mjds = [d.mjd for d in light_curve]
    extents = [d.mag + s * d.mag_err for d in light_curve for s in (-1, 1)]
    plot = Plot("lightcurve", "Light curve", Axis.around(mjds, "MJD"),
                Axis.around(extents, "magnitude", inverted=True, minimum_span=0.2))
    first_beyond = next((d for d in light_curve if d.detection_id not in used_ids), None)
    if first_beyond is not None and len(used_ids) >= n_steps:
        plot.vertical_marker(first_beyond.mjd, "cutoff", f"after the model's first {n_steps}")
    for d in light_curve:
        plot.error_bar(d.mjd, d.mag, d.mag_err)
    for i, d in enumerate(light_curve, start=1):
        used = d.detection_id in used_ids
        tip = (f"#{i} {d.detection_id}: MJD {d.mjd:.5f}, {d.mag:.3f} ± {d.mag_err:.3f} mag ({d.filter})"
               f"{'' if used else ', not in the model input'}")
        plot.point(d.mjd, d.mag, "det used" if used else "det beyond", tip)
    n_used = sum(d.detection_id in used_ids for d in light_curve)
    return plot.render(f"{len(light_curve)} detections, {n_used} in the model input (first {n_steps})")


def version_changes(history: Sequence[dict[str, Any]]) -> list[int]:
    """Indices of the history rows whose model version differs from the row before.

    Examples
    --------
    >>> version_changes([{"model_version": "a"}, {"model_version": "a"}, {"model_version": "b"}])
    [2]
    """
    versions = [r.get("model_version") for r in history]
    return [i for i in range(1, len(versions)) if versions[i] != versions[i - 1]]


def probability_svg(
    history: Sequence[dict[str, Any]], class_names: Sequence[str], x_field: str, element_id: str
) -> str:
    """Each class's probability against ``x_field`` of the history rows (``n_detections`` or ``mjd``):
    one point per row and class (``circle.prob``), a dashed marker where the model version changes."""
    xs = [float(r[x_field]) for r in history]
    label = "detection number" if x_field == "n_detections" else "MJD of the detection"
    title = "Probabilities by detection number" if x_field == "n_detections" else "Probabilities over time"
    x_axis = Axis.around(xs, label, minimum_span=2.0 if x_field == "n_detections" else 1.0)
    plot = Plot(element_id, title, x_axis, Axis(0.0, 1.0, "probability"), height=260)
    for i in version_changes(history):
        plot.vertical_marker(xs[i], "version", f"model {history[i].get('model_version', '?')}")
    # the stored strings of each row, escaped once for all the classes' tooltips
    row_tips = [f"after {esc(r.get('n_detections'))} detection(s), MJD {float(r.get('mjd', 0)):.5f}, "
                f"model {esc(r.get('model_version', '?'))}" for r in history]
    for ci, name in enumerate(class_names):
        label = esc(name)
        # a row without this class (another model's classes) has no point: NaN would be invalid SVG
        series = [(x, float(p), tip) for r, x, tip in zip(history, xs, row_tips, strict=True)
                  if (p := r.get("probabilities", {}).get(name)) is not None]
        plot.series([x for x, _, _ in series], [y for _, y, _ in series], f"series c{ci}", f"prob c{ci}",
                    [f"{label} {y:.3f} {tip}" for _, y, tip in series])
    return plot.render(f"{len(history)} classification updates, {len(class_names)} classes")
