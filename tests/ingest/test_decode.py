import json

from monitor.ingest.decode import decode_messages
from monitor.ingest.messages import RawMessage


def msg(value, offset=0):
    return RawMessage(value=value if isinstance(value, (bytes, type(None))) else json.dumps(value).encode(),
                      topic="t", offset=offset)


GOOD = {"device_id": "a", "group": "g", "ts": 1.0, "value": 2.0}


def test_garbage_is_dead_lettered_with_reasons_and_valid_readings_survive():
    messages = [
        msg(GOOD, 0),
        msg(b"not json at all", 1),
        msg({**GOOD, "value": "hot"}, 2),
        msg(b'{"device_id": "a", "group": "g", "ts": 1, "value": NaN}', 3),
        msg({"device_id": "a", "group": "g", "ts": 1.0}, 4),
        msg(b"x" * 2000, 5),
        msg(b"", 6),
        msg(None, 7),
        msg(b"\xff\xfe\x00garbage", 8),
        msg([GOOD, 17, {**GOOD, "device_id": "b"}, {**GOOD, "ts": "noon"}], 9),
        msg([], 10),
        msg(b"[" * 100000, 11),
        msg({**GOOD, "device_id": "c"}, 12),
    ]
    batch = decode_messages(messages, max_message_bytes=1000)
    assert batch.device_ids == ["a", "a", "b", "c"]
    assert batch.values.tolist() == [2.0, 2.0, 2.0, 2.0]
    reasons = [(d.message.offset, d.index, d.reason) for d in batch.dead_letters]
    assert reasons == [
        (1, None, "not_json"), (2, None, "invalid"), (3, None, "invalid"), (4, None, "invalid"),
        (5, None, "oversized"), (6, None, "empty"), (7, None, "empty"), (8, None, "not_utf8"),
        (9, 1, "not_a_reading"), (9, 3, "invalid"), (10, None, "empty"), (11, None, "oversized"),
    ]
    details = {d.message.offset: d.detail for d in batch.dead_letters}
    assert "value" in details[2] and "finite" in details[3] and "value: Field required" in details[4]
    assert batch.messages == len(messages)


def test_deep_nesting_within_the_size_limit_is_not_a_crash():
    batch = decode_messages([msg(b"[" * 5000 + b"]" * 5000)], max_message_bytes=100_000)
    assert [d.reason for d in batch.dead_letters] in (["not_json"], ["not_a_reading"])


def test_rfc3339_and_numbers_mix():
    batch = decode_messages([msg([{**GOOD, "ts": "1970-01-01T00:01:00Z"}, GOOD])])
    assert batch.ts.tolist() == [60.0, 1.0]
