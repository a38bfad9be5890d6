import numpy as np
import pytest

from monitor.windows import WindowAligner


def collect(aligner_batches, window=10.0, lateness=0.0):
    al = WindowAligner(window, lateness)
    rounds, late = [], 0
    for g, d, ts, v in aligner_batches:
        late += al.add(np.asarray(g), np.asarray(d), np.asarray(ts, float), np.asarray(v, float), np.asarray(d))
        rounds += al.close()
    rounds += al.close(flush=True)
    # flatten to (group, window, device, value) records in processing order per group
    out = {}
    for r in rounds:
        for i, g in enumerate(r.groups.tolist()):
            for j in np.flatnonzero(r.devices[i] >= 0):
                out.setdefault(g, []).append((int(r.windows[i]), int(r.devices[i, j]), float(r.values[i, j])))
    return out, late


def stream(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 4, n)
    d = g * 5 + rng.integers(0, 5, n)
    ts = np.arange(n) * 0.2 + rng.uniform(-8, 0, n)  # out of order by up to 8 s
    v = rng.normal(size=n)
    return g, d, ts, v


@pytest.mark.parametrize("sizes", [[1], [7], [250], [3000], [1, 1000, 3, 500]])
def test_result_does_not_depend_on_how_the_stream_is_cut(sizes):
    g, d, ts, v = stream()
    whole, late_whole = collect([(g, d, ts, v)], lateness=2.0)
    cuts, i, k = [], 0, 0
    while i < len(g):
        s = sizes[k % len(sizes)]
        cuts.append((g[i:i + s], d[i:i + s], ts[i:i + s], v[i:i + s]))
        i, k = i + s, k + 1
    parts, late_parts = collect(cuts, lateness=2.0)
    assert parts == whole and late_parts == late_whole
    assert late_whole > 0  # the stream does have late readings


def test_windows_close_in_event_time_order_and_last_arrival_wins():
    out, late = collect([([0, 0, 0, 0, 0], [1, 1, 2, 1, 2], [1.0, 3.0, 4.0, 15.0, 31.0], [1, 2, 3, 4, 5])])
    assert out[0] == [(0, 1, 2.0), (0, 2, 3.0), (1, 1, 4.0), (3, 2, 5.0)]
    assert late == 0


def test_late_reading_is_dropped_and_counted():
    out, late = collect([([0, 0, 0], [1, 1, 1], [1.0, 25.0, 2.0], [1, 2, 3])])
    assert late == 1 and (0, 1, 3.0) not in out[0]


def test_state_round_trip():
    al = WindowAligner(10, 5)
    al.add(np.array([0, 1]), np.array([0, 1]), np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([0, 0]))
    other = WindowAligner(10, 5)
    other.load_state_dict(al.state_dict())
    assert [r.values.tolist() for r in other.close(flush=True)] == [r.values.tolist() for r in al.close(flush=True)]


@pytest.mark.parametrize("w, lat", [(0, 0), (-1, 0), (10, -1)])
def test_bad_parameters(w, lat):
    with pytest.raises(ValueError):
        WindowAligner(w, lat)
