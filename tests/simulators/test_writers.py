"""Writers round-trip through JSON."""

import json

from simulators import FleetSimulator, preset, write_jsonl, write_labels
from simulators.__main__ import main


def test_write_jsonl_and_labels(tmp_path):
    sim = FleetSimulator(preset("demo", samples=400), seed=3)
    n = write_jsonl(tmp_path / "r.jsonl", sim.readings())
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert n == len(lines) == 40 * 400
    assert [json.loads(x) for x in lines] == list(sim.readings())
    m = write_labels(tmp_path / "l.json", sim.labels())
    assert json.loads((tmp_path / "l.json").read_text()) == sim.labels()
    assert m == len(sim.labels())


def test_cli(tmp_path, capsys):
    main(["demo", str(tmp_path / "r.jsonl"), str(tmp_path / "l.json"), "--samples", "400", "--seed", "2"])
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 40 * 400
    assert len(json.loads((tmp_path / "l.json").read_text())) == 40
    assert "readings" in capsys.readouterr().out
