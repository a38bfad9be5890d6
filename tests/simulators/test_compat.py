"""The original presets stay byte-identical: new features are default-off and draw from new streams.

The reference hashes were computed before the realism/attack extensions were added.
"""

import hashlib
import json

import pytest

from simulators import FleetSimulator, preset

#: "<preset>/<seed>": (sha256 of readings + labels, sha256 of values, ts, true signal, sigmas)[:32]
REFERENCE = {
    "clean/0": ("735c3704daaca5982b2c8010579af852", "3ade88fd4026d4fc94c9a6597ce7beaa"),
    "clean/1": ("df5660e78561093a441344f0fef6752c", "039f3dea77d3241782a8c598a6a50c85"),
    "clean/7": ("4c842cafcce043ac2e484863ae2d1174", "1e579c9d0314a19e7f555e44056bdbe9"),
    "clean/123": ("c8d2abe4743d77b02aa0fa918117163a", "743d37bd6f5adf5e5d03631784ad6672"),
    "demo/0": ("50b834c4785cc6a3bc4063fcdd9c9e48", "d32fdbfa42c16d0d61948cd98ccabfc8"),
    "demo/1": ("acda79176847986961924099c47806af", "ad3ee2d71b40863ad0b56514cfbdb6f9"),
    "demo/7": ("458b24e8fbb9f45cc0004c0a59f92415", "98e82b13028ec51fca3115bc46a94f0d"),
    "demo/123": ("638351ce3c6725e0bb1ca97cca804ba2", "7fd3a80c698b892860d376e344841053"),
    "mixed/0": ("730734ea54243ba882c245602d3ed285", "a98c0a1b0a49be8f3bd6988bcbdd55b3"),
    "mixed/1": ("6850649e65894c57cb58e2745e33dfd3", "8ec8e6ca670611cb962b474ec3f2d164"),
    "mixed/7": ("e8d2c7e36ef2b3489c047592069aba62", "e1f74be470691d02fa535bbcbe0b7d4f"),
    "mixed/123": ("177652a25fa569032676a45b2cfe9a3e", "acf2643064cd00c810145da670cb5c31"),
    "mixed-jitter/3": ("b6a8771719f1452dfc6a655d163e6553", ""),
}


def _readings_hash(sim):
    h = hashlib.sha256()
    for r in sim.readings():
        h.update(json.dumps(r, sort_keys=True, separators=(",", ":")).encode())
        h.update(b"\n")
    h.update(json.dumps(sim.labels(), sort_keys=True).encode())
    return h.hexdigest()[:32]


def _arrays_hash(sim):
    raw = sim.values.tobytes() + sim.ts.tobytes() + sim.true_signal.tobytes() + sim.sigmas.tobytes()
    return hashlib.sha256(raw).hexdigest()[:32]


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_original_presets_byte_identical(key):
    name, seed = key.split("/")
    if name == "mixed-jitter":
        sim = FleetSimulator(preset("mixed", seed=int(seed), groups=5, devices_per_group=7, samples=800,
                                    ts_jitter_seconds=5.0))
    else:
        sim = FleetSimulator(preset(name, seed=int(seed)))
    readings, arrays = REFERENCE[key]
    assert _readings_hash(sim) == readings
    if arrays:
        assert _arrays_hash(sim) == arrays


@pytest.mark.parametrize("name", ["clean", "demo", "mixed"])
def test_original_presets_keep_the_simple_emission(name):
    sim = FleetSimulator(preset(name, samples=600))
    assert not sim.scenario.delivery.active and sim.n_regular == len(sim.device_ids)
    tick, row, col = sim.emission
    assert (tick == col).all() and row.tolist()[:sim.n_regular] == list(range(sim.n_regular))
