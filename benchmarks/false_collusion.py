"""Every collusion alert that names no colluding set, with what each named device really is.

    python benchmarks/false_collusion.py --scenarios scenarios/tuning/single-device.yaml,scenarios/tuning/slow-drift.yaml --seeds 8,9 [--detection.option value ...]
    python benchmarks/false_collusion.py --scenarios scenarios/diagnostics/harsh.yaml --seeds 0,1 --world signal.drift_sigma=0

``--world SECTION.FIELD=VALUE`` (repeatable) changes the scenarios' honest world, for
finding which part of it makes the false alerts.

Runs the monitor on each scenario and seed (simulated, with ground truth) and
prints one line per collusion alert (its last firing version) none of whose
devices is a member of a colluding set at that time: the group, the alert's
onset and time (samples from the start), its direction, the memory (windows) of the
running means that found it, and per named device
what the ground truth says it is then (``h`` honest, with its natural calibration
drift in its own sigmas per day and its rank by that drift among the group's
honest devices, fastest first in the alert's direction, e.g. ``h+0.44#1``;
``TYPE:SET`` an attack or event at that time (``camouflage-lead``: the set's camouflage member, which
reports the pulled consensus; the last line counts those named), ``TYPE-off`` a device labelled at
another time), and ``!N`` when it is in an alarm of its own at the alert, with its onset N windows before. ``--all``
prints the other alerts too. This is coarser than the scorer, which also
counts as false an alert naming too few of a set's members (Jaccard under
0.5, see `monitor.evaluation.scoring.score_collusion`): it is for finding what
makes false alerts, not a score.
"""

from __future__ import annotations

import argparse

import numpy as np

from _replay import fleet_args, label_type
from monitor.evaluation.runner import run_monitor
from simulators import FleetSimulator, load_scenario, to_eval_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="print the alerts that name a set too")
    ap.add_argument("--world", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="change the scenarios' world, e.g. signal.front_rate_per_day=0 (repeatable)")
    args, scenarios, seeds, settings = fleet_args(ap)
    total = false = 0
    leads: dict[tuple, bool] = {}  # (scenario, seed, camouflage member): named in an alert with its set
    for spec in scenarios:
        for seed in seeds:
            sim = FleetSimulator(_changed(load_scenario(spec), args.world), seed=seed)
            data = to_eval_data(sim)
            t0, w = float(np.nanmin(data.ts)), data.interval
            truth: dict[str, list[tuple]] = {}
            for lab in data.labels:
                if lab["status"] != "honest":
                    end = np.inf if lab.get("end_ts") is None else (lab["end_ts"] - t0) / w
                    typ = label_type(lab)
                    truth.setdefault(lab["device_id"], []).append(
                        (typ, lab.get("collusion_set"), (lab["start_ts"] - t0) / w, end))
                    if typ == "camouflage-lead":
                        leads.setdefault((spec, seed, lab["device_id"]), False)
            drift = dict(zip(sim.device_ids, (sim.drift_rates / sim.sigmas).tolist()))  # sigmas per day
            alerts, *_ = run_monitor(data, settings)
            latest = {a.alert_id: a for a in alerts if a.kind == "collusion" and a.state == "firing"}
            alarms = _alarms(alerts, t0, w)
            for a in latest.values():  # the last version of each alert (a set re-fires as it grows)
                on, at = (a.onset_ts - t0) / w, (a.ts - t0) / w
                tags, in_set = [], False
                for d in a.devices:
                    now = [x for x in truth.get(d, []) if x[2] <= at + 10 and x[3] >= on]
                    in_set |= any(x[1] for x in now)
                    tags.append((_honest(d, a, drift, truth) if d not in truth else f"{now[0][0]}:{now[0][1]}"
                                 if now else f"{truth[d][0][0]}-off")
                                + "".join(f"!{at - s:.0f}" for s, e in alarms.get(d, []) if s <= at < e))
                total += 1
                false += not in_set
                for d, t in zip(a.devices, tags):
                    if (spec, seed, d) in leads and t.startswith("camouflage-lead:") and len(a.devices) > 1:
                        leads[(spec, seed, d)] = True
                if args.all or not in_set:
                    site = a.group.split("/")[0]
                    print(_group_sets(site, truth, sum(k.rsplit("-", 2)[0] == site for k in drift)), end=" ")
                    print(f"{spec.split('/')[-1]} seed {seed} {'set  ' if in_set else 'FALSE'} {a.group} "
                          f"onset {on:.0f} at {at:.0f} {a.evidence.get('direction')} "
                          f"(memory {a.evidence.get('memory_windows')}, shift {a.evidence.get('shift_sigmas')}σ, chi2/df {a.evidence.get('shift_chi2_per_df')}): "
                          + " ".join(f"{d.rsplit('-', 1)[-1]}={t}" for d, t in zip(a.devices, tags)))
    print(f"{false} of {total} collusion alerts name no member of a colluding set")
    if leads:
        print(f"camouflage members (reporting the pulled consensus) named in a collusion alert during their set: "
              f"{sum(leads.values())} of {len(leads)}")


def _changed(scenario, changes: list[str]):
    """The scenario with ``SECTION.FIELD=VALUE`` changes to its ``signal`` or ``delivery``."""
    for change in changes:
        key, _, value = change.partition("=")
        section, _, name = key.partition(".")
        part = getattr(scenario, section)
        if section not in ("signal", "delivery") or name not in type(part).model_fields:
            raise SystemExit(f"--world {change}: expected signal.FIELD=VALUE or delivery.FIELD=VALUE")
        scenario = scenario.model_copy(update={section: part.model_copy(update={name: float(value)})})
    return scenario


def _alarms(alerts, t0: float, w: float) -> dict[str, list[tuple[float, float]]]:
    """Per device, its own alarms as (onset, end) in samples from the start (end infinite while firing)."""
    spans: dict[str, dict[str, list[float]]] = {}
    for a in alerts:
        if a.kind == "device":
            span = spans.setdefault(a.devices[0], {}).setdefault(a.alert_id, [(a.onset_ts - t0) / w, np.inf])
            if a.state != "firing":
                span[1] = (a.ts - t0) / w
    return {d: [tuple(x) for x in v.values()] for d, v in spans.items()}


def _group_sets(group: str, truth: dict, n: int) -> str:
    """The colluding sets of the alert's group, as TYPE x SIZE (share of the group), e.g. ``[collusion x10 50%]``."""
    sets: dict[str, tuple[str, set]] = {}
    for d, xs in truth.items():
        if d.rsplit("-", 2)[0] == group:
            for typ, name, *_ in xs:
                if name:
                    sets.setdefault(name, (typ.removesuffix("-lead"), set()))[1].add(d)
    return "[" + ", ".join(f"{t} x{len(m)} {len(m) / n:.0%}" for t, m in sets.values()) + "]"


def _honest(device: str, alert, drift: dict[str, float], truth: dict) -> str:
    """``h``, the device's drift (sigmas per day) and its rank among its group's honest devices,
    fastest first in the alert's direction."""
    sign = -1.0 if alert.evidence.get("direction") == "low" else 1.0
    group = device.rsplit("-", 2)[0]
    peers = sorted((sign * v for k, v in drift.items() if k.rsplit("-", 2)[0] == group and k not in truth), reverse=True)
    return f"h{drift[device]:+.2f}#{peers.index(sign * drift[device]) + 1}"


if __name__ == "__main__":
    main()
