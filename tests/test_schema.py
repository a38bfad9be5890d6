import math

import pytest
from pydantic import ValidationError

from monitor.schema import Alert, Reading

VALID = {"device_id": "hall-a:t1/x_2.b-c", "group": "hall-a/temperature", "ts": 1767225600, "value": 21.5}


@pytest.mark.parametrize("ts, expected", [
    (1767225600, 1767225600.0),
    (1767225600.25, 1767225600.25),
    ("2026-01-01T00:00:00Z", 1767225600.0),
    ("2026-01-01T01:00:00+01:00", 1767225600.0),
    ("2026-01-01T00:00:00.5z", 1767225600.5),
])
def test_valid_timestamps(ts, expected):
    assert Reading.model_validate({**VALID, "ts": ts}).ts == expected


def test_optional_fields_and_extras():
    r = Reading.model_validate({**VALID, "quantity": "temperature", "unit": "degC", "seq": 7, "extra": 1})
    assert (r.quantity, r.unit, r.seq) == ("temperature", "degC", 7)
    assert r.value == 21.5 and isinstance(Reading.model_validate({**VALID, "value": 3}).value, float)


@pytest.mark.parametrize("field, value", [
    ("device_id", ""), ("device_id", "has space"), ("device_id", "x" * 129), ("device_id", "é"), ("device_id", 5),
    ("group", ""), ("group", None),
    ("ts", "yesterday"), ("ts", "2026-01-01T00:00:00"), ("ts", True), ("ts", math.inf), ("ts", None),
    ("value", math.nan), ("value", math.inf), ("value", -math.inf), ("value", "1.5"), ("value", True), ("value", None),
    ("value", [1]), ("seq", -1), ("seq", 1.5),
])
def test_invalid_fields_name_the_field(field, value):
    with pytest.raises(ValidationError) as err:
        Reading.model_validate({**VALID, field: value})
    assert err.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize("missing", ["device_id", "group", "ts", "value"])
def test_missing_required_field(missing):
    doc = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(ValidationError) as err:
        Reading.model_validate(doc)
    assert err.value.errors()[0]["loc"] == (missing,)


def test_alert_round_trips_as_json():
    a = Alert(alert_id="x", state="firing", kind="collusion", type="collusion", group="g", devices=["a", "b"],
              onset_ts=1.0, ts=2.0, score=3.5, evidence={"detector": "CollusionDetector"})
    assert Alert.model_validate_json(a.model_dump_json()) == a
    with pytest.raises(ValidationError):
        Alert.model_validate({**a.model_dump(), "state": "pending"})
