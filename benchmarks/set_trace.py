"""What became of every set the collusion scan held, beside the true colluding sets (simulated fleets).

    python benchmarks/set_trace.py --scenario scenarios/tuning/collusion-variants.yaml --seeds 8

For each seed: the true colluding sets (type, start, members), then one line per
nomination, alert and drop of a held set, in order: the window (samples from
the start), the group, the true sets its devices belong to, the devices (``*``:
a member of a true set at any time) and, for a nomination, its scan evidence
and direction (and whether it resumes the hold of a set that faded:
``collusion_recur_seconds``); for an alert, the members' chi-square per
degree of freedom and common shift; for a drop, why (the outcome
`poison_monitor_collusion_holds_total` counts: faded, unshifted,
heterogeneous, outsiders, camp, relearned). The detector's
``nominate``, ``_confirm`` and ``forget_group`` are wrapped to print; nothing else
changes. Settings: ``--detection.NAME VALUE`` pairs.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from monitor.collusion import CollusionDetector
from _replay import detection_settings
from monitor.evaluation.runner import run_monitor
from monitor.evaluation.suite import simulated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--seeds", default="0")
    args, rest = ap.parse_known_args()
    settings = detection_settings(rest)
    log: list[tuple] = []
    nominate, confirm, forget = CollusionDetector.nominate, CollusionDetector._confirm, CollusionDetector.forget_group

    def traced_nominate(self, group, window, nom, **kw):
        before = self._outcomes["resumed"]
        out = nominate(self, group, window, nom, **kw)
        log.append((window, "held", group, [int(m) for m in nom.members],
                    f"evidence {nom.evidence:.1f}, {'high' if nom.direction > 0 else 'low'}"
                    + (", resumes the hold of the set that faded" if self._outcomes["resumed"] > before else "")))
        return out

    def traced_confirm(self, s, window, *rest):
        before = dict(self._outcomes)
        out = confirm(self, s, window, *rest)
        why = [k for k, v in self._outcomes.items() if v > before.get(k, 0) and k != "alerted"]
        if out:
            log.append((window, "ALERT", s.group, list(s.members),
                        f"chi2/df {s.homogeneity:.2f}, shift {s.shift:.2f} sigma"))
        elif why:
            log.append((window, "drop", s.group, list(s.members), why[0]))
        return out

    def traced_forget(self, group, devices, window):
        s = self._active.get(group)
        if s is not None and not s.confirmed:
            log.append((window, "drop", group, list(s.members), "relearned"))
        return forget(self, group, devices, window)

    CollusionDetector.nominate, CollusionDetector._confirm = traced_nominate, traced_confirm
    CollusionDetector.forget_group = traced_forget
    for seed in (int(s) for s in args.seeds.split(",")):
        for data, _ in simulated([args.scenario], [seed]):
            log.clear()
            t0, w = float(np.nanmin(data.ts)), data.interval
            truth: dict[str, dict[str, tuple]] = defaultdict(dict)
            for lab in data.labels:
                if lab.get("collusion_set"):  # a set attacking in episodes has one label per episode
                    start = (lab["start_ts"] - t0) / w
                    prev = truth[lab["collusion_set"]].get(lab["device_id"])
                    truth[lab["collusion_set"]][lab["device_id"]] = (lab["type"], min(start, prev[1]) if prev else start)
            _, _, pipe, *_ = run_monitor(data, settings)
            names, gnames = pipe.registry.device_names, pipe.registry.group_names
            role = {d: sid for sid, devs in truth.items() for d in devs}
            print(f"== {args.scenario.rsplit('/', 1)[-1]} seed {seed}")
            group_of = {d: data.groups[g] for d, g in zip(data.device_ids, data.device_group)}
            for sid, devs in truth.items():
                typ, st = next(iter(devs.values()))
                print(f"  true set {sid} in {group_of.get(next(iter(devs)), '?')}: {typ} from sample {st:.0f}, members "
                      f"{' '.join(sorted(d.rsplit('-', 1)[-1] for d in devs))}")
            w0 = round(t0 / w)  # the detector counts windows from the epoch; print samples from the start
            for window, kind, g, members, what in log:
                ids = [names[m] for m in members]
                sets = sorted({role[d] for d in ids if d in role}) or ["-"]
                tag = " ".join(d.rsplit("-", 1)[-1] + ("*" if d in role else "") for d in ids)
                print(f"  {window - w0:6d} {kind:5s} {gnames[g]} {','.join(sets)} [{tag}] {what}")


if __name__ == "__main__":
    main()
