"""``python -m simulators PRESET READINGS.jsonl [LABELS.json] [--seed N] [--samples N] ...``"""

from __future__ import annotations

import argparse

from simulators.engine import FleetSimulator
from simulators.presets import PRESETS, preset
from simulators.writers import write_jsonl, write_labels


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulators", description="Write a simulated fleet run.")
    ap.add_argument("preset", choices=sorted(PRESETS))
    ap.add_argument("readings", help="output JSON-lines file of readings")
    ap.add_argument("labels", nargs="?", help="output JSON file of ground-truth labels")
    for name in ("seed", "samples", "groups", "devices_per_group"):
        ap.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name)
    args = ap.parse_args(argv)
    overrides = {k: v for k in ("seed", "samples", "groups", "devices_per_group")
                 if (v := getattr(args, k)) is not None}
    sim = FleetSimulator(preset(args.preset, **overrides))
    n = write_jsonl(args.readings, sim.readings())
    print(f"{n} readings -> {args.readings}")
    if args.labels:
        m = write_labels(args.labels, sim.labels())
        print(f"{m} labels -> {args.labels}")


if __name__ == "__main__":
    main()
