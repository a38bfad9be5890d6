"""On the Beijing replay: where the consensus level sits, and what the learners lose, per group.

    python benchmarks/beijing_level.py [--detection.offset-pin 0] [--detection.learner-fallback false]

Replays the Beijing data with the scoreboard's injected attacks (seed 1001) and without them, and
prints per group, over the windows after the group's first attack (as the scoreboard scores them):
the consensus bias against the clean replay's, the guarded and unguarded learners' damage against
their clean-trained twins, the share of uncertain windows in both replays, and how far the
consensus level strays from the plain median of the stations (largest mean over 1000-window
blocks, in sigmas, both replays). About 2 minutes.
"""

from __future__ import annotations

import sys

import numpy as np

from _replay import beijing, detection_settings
from monitor.evaluation.runner import _group_sigma, _group_windows, _recorded, run_monitor, truth_from_labels
from monitor.scan import row_median

BLOCK = 1000


def main() -> None:
    settings = detection_settings(sys.argv[1:])
    clean, data = beijing()
    t0, t_end = float(np.nanmin(data.ts)), float(np.nanmax(data.ts)) + data.interval
    truth = truth_from_labels(data.labels, t0, t_end)
    sigma = _group_sigma(data, truth)
    runs = {}
    for name, d in (("attacked", data), ("clean", clean)):
        _, rec, pipe, _, _ = run_monitor(d, settings)
        runs[name] = {f: _recorded(rec, pipe, d, f) for f in ("consensus", "guarded", "shadow", "plain_mean")}
    a, c = runs["attacked"], runs["clean"]
    print("group   bias  guarded  unguarded  uncertain(att/clean)  max|level - median| (att/clean)")
    rows, biases = [], []
    for g, group in enumerate(data.groups):
        starts = [i.start for i in truth.attacks if i.group == group]
        if not starts:
            continue
        windows = _group_windows(data, g)
        after = windows >= np.floor(min(starts) / data.interval)
        pick = lambda m: np.array([m[g].get(int(w), np.nan) for w in windows[after]])  # noqa: E731
        ca, cc = pick(a["consensus"]), pick(c["consensus"])
        both = np.isfinite(ca) & np.isfinite(cc)
        bias = abs(np.mean(ca[both] - cc[both])) / sigma[g]
        fg, fgc, fs, fsc, tp = (pick(m) for m in (a["guarded"], c["guarded"], a["shadow"], c["shadow"],
                                                 c["plain_mean"]))
        ok = np.isfinite(cc) & np.isfinite(fg) & np.isfinite(fgc) & np.isfinite(fs) & np.isfinite(fsc) & np.isfinite(tp)
        mae = lambda f, t: float(np.mean(np.abs(f[ok] - t[ok])) / sigma[g])  # noqa: E731
        row = (mae(fg, cc), mae(fgc, cc), mae(fs, tp), mae(fsc, tp))
        rows.append(row)
        biases.append(bias)
        stray = []
        for d, cons in ((data, ca), (clean, cc)):
            med = row_median(d.values[d.device_group == g].T)[after]  # NaN in hours no station reported
            gap = cons - med
            blocks = [b[np.isfinite(b)] for b in np.split(gap, np.arange(BLOCK, len(gap), BLOCK))]
            stray.append(max(abs(b.mean()) for b in blocks if len(b)) / sigma[g])
        print(f"{group:6s} {bias:5.2f}  {row[0] / row[1] - 1:+7.1%}  {row[2] / row[3] - 1:+9.1%}  "
              f"{np.mean(~np.isfinite(ca)):9.2f} / {np.mean(~np.isfinite(cc)):.2f}  {stray[0]:12.2f} / {stray[1]:.2f}")
    m = np.mean(rows, axis=0)
    print(f"mean over groups: bias {np.mean(biases):.3f} sigma, guarded {m[0] / m[1] - 1:+.1%}, "
          f"unguarded {m[2] / m[3] - 1:+.1%} (the scoreboard's consensus bias and learner damage)")


if __name__ == "__main__":
    main()
