from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from lightcurve.types import Detection, LightCurve, derive_detection_id, order_detections


def det(**kw):
    base = dict(object_id="GOTO_SN2019euw", mjd=58605.1, mag=18.4, mag_err=0.07)
    base.update(kw)
    return Detection(**base)


@pytest.mark.parametrize("object_id", ["GOTO_IRAS18547+1254", "ZTF21abcdefg", "a", "x" * 64, "A.b:c-d+e_f"])
def test_survey_identifiers_are_accepted(object_id):
    assert det(object_id=object_id).object_id == object_id


@pytest.mark.parametrize("object_id", ["", "x" * 65, "has space", "semi;colon", "slash/", "ünï"])
def test_bad_identifiers_are_rejected_naming_the_field(object_id):
    with pytest.raises(ValidationError) as err:
        det(object_id=object_id)
    assert err.value.errors()[0]["loc"] == ("object_id",)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mag", math.nan),
        ("mag", math.inf),
        ("mag", 99.0),
        ("mjd", -math.inf),
        ("mjd", 1000.0),
        ("mag_err", 0.0),
        ("mag_err", -0.1),
        ("mag_err", math.nan),
    ],
)
def test_non_finite_and_out_of_range_values_name_the_field(field, value):
    with pytest.raises(ValidationError) as err:
        det(**{field: value})
    assert err.value.errors()[0]["loc"] == (field,)


def test_missing_field_is_named():
    with pytest.raises(ValidationError) as err:
        Detection(object_id="a", mjd=58605.0, mag=18.0)
    assert ("mag_err",) in [e["loc"] for e in err.value.errors()]


def test_detection_id_is_derived_from_mjd_and_filter_when_absent():
    d = det(mjd=58605.179148, filter="L")
    assert d.detection_id == derive_detection_id("GOTO_SN2019euw", 58605.179148, "L")
    assert det(mjd=58605.179148, filter="R").detection_id != d.detection_id
    assert det(detection_id="d1").detection_id == "d1"


def test_order_detections_sorts_by_time_and_drops_repeated_ids_keeping_first():
    a = det(detection_id="a", mjd=58610.0, mag=18.0)
    b = det(detection_id="b", mjd=58600.0)
    a_again = det(detection_id="a", mjd=58590.0, mag=10.0)  # a replay with different content
    out = order_detections([a, b, a_again])
    assert [d.detection_id for d in out] == ["b", "a"]
    assert out[1].mag == 18.0


def test_equal_times_are_ordered_by_detection_id_whatever_the_arrival_order():
    x, y = det(detection_id="x", mjd=58600.0), det(detection_id="y", mjd=58600.0)
    assert order_detections([y, x]) == order_detections([x, y])


def test_light_curve_rejects_mixed_objects_naming_the_detection():
    with pytest.raises(ValidationError, match=r"detections\[1\]\.object_id"):
        LightCurve(object_id="a", detections=(det(object_id="a"), det(object_id="b")))
