"""Writers round-trip through JSON."""

import json

from simulators import FleetSimulator, preset, write_jsonl, write_labels


def test_write_jsonl_and_labels(tmp_path):
    sim = FleetSimulator(preset("demo", samples=400), seed=3)
    n = write_jsonl(tmp_path / "r.jsonl", sim.readings())
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert n == len(lines) == 40 * 400
    assert [json.loads(x) for x in lines] == list(sim.readings())
    m = write_labels(tmp_path / "l.json", sim.labels())
    assert json.loads((tmp_path / "l.json").read_text()) == sim.labels()
    assert m == len(sim.labels())
