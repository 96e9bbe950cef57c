"""Server-side SVG plots (``service.ui.svg``, ``service.ui.charts``): geometry, point counts, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from service.store import StoredDetection
from service.ui.charts import light_curve_svg, probability_svg
from service.ui.svg import Axis, Plot

NS = "{http://www.w3.org/2000/svg}"


def _det(i: int, mag: float, err: float = 0.05) -> StoredDetection:
    return StoredDetection(f"d{i}", 58600.0 + i, mag, err, "L", 10.0, 20.0, None, 0.0)


def _circles(svg: str, css_class: str) -> list[ET.Element]:
    root = ET.fromstring(svg)  # also proves the document is well-formed XML (escaping intact)
    return [c for c in root.iter(f"{NS}circle") if c.get("class") == css_class]


def test_magnitude_axis_is_inverted_so_brighter_is_higher():
    plot = Plot("p", "t", Axis(0, 10, "x"), Axis(17.0, 19.0, "mag", inverted=True))
    assert plot.py(17.0) < plot.py(19.0)
    upright = Plot("p", "t", Axis(0, 10, "x"), Axis(0.0, 1.0, "p"))
    assert upright.py(1.0) < upright.py(0.0)


def test_light_curve_draws_the_model_input_apart_from_later_detections():
    lc = [_det(i, 18.0 + 0.1 * i) for i in range(7)]
    used = frozenset(d.detection_id for d in lc[:5])
    svg = light_curve_svg(lc, used, n_steps=5)
    used_pts, beyond_pts = _circles(svg, "det used"), _circles(svg, "det beyond")
    assert len(used_pts) == 5 and len(beyond_pts) == 2
    # the faintest detection is the lowest point (largest y in SVG coordinates)
    ys = [float(c.get("cy")) for c in used_pts + beyond_pts]
    assert ys == sorted(ys)
    assert svg.count('class="cutoff"') == 1 and "first 5" in svg
    # input not yet full (a recompute pending, fewer used than n_steps): no cut-off line
    assert 'class="cutoff"' not in light_curve_svg(lc[:3], frozenset(d.detection_id for d in lc[:3]), 5)


def test_probability_plot_has_one_point_per_row_and_class_and_marks_version_changes():
    probs = {"VS": 0.2, "SN": 0.7, "AGN": 0.1}
    history = [{"n_detections": n, "mjd": 58600.0 + n, "model_version": v, "probabilities": probs}
               for n, v in ((1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "a"))]
    svg = probability_svg(history, ("VS", "SN", "AGN"), "n_detections", "h")
    for ci in range(3):
        assert len(_circles(svg, f"prob c{ci}")) == 5
    assert svg.count('<g class="version">') == 2  # a -> b at row 3, b -> a at row 5
    sn = [float(c.get("cy")) for c in _circles(svg, "prob c1")]
    vs = [float(c.get("cy")) for c in _circles(svg, "prob c0")]
    assert all(s < v for s, v in zip(sn, vs, strict=True))  # 0.7 drawn above 0.2


def test_rows_without_a_class_get_no_point_and_stored_text_is_escaped():
    history = [
        {"n_detections": 1, "mjd": 1.0, "model_version": "<b>old</b>", "probabilities": {"VS": 1.0}},
        {"n_detections": 2, "mjd": 2.0, "model_version": "new&", "probabilities": {"VS": 0.5, "<i>X": 0.5}},
    ]
    svg = probability_svg(history, ("VS", "<i>X"), "mjd", "h")
    assert len(_circles(svg, "prob c0")) == 2 and len(_circles(svg, "prob c1")) == 1
    assert "nan" not in svg.lower()
    assert "<b>" not in svg and "<i>" not in svg and "model new&amp;" in svg and "&lt;i&gt;X 0.500" in svg


def test_the_modules_examples_hold():
    import doctest

    import service.ui.charts
    import service.ui.svg

    for module in (service.ui.svg, service.ui.charts):
        assert doctest.testmod(module).failed == 0
