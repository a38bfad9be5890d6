"""Feasibility (session 23, not in the product): hour-of-day means of each device's residual, subset-scanned.

    python docs/experiments/hour-scan.py scenarios/tuning/poisoning.yaml 0,1
    python docs/experiments/hour-scan.py beijing 0 [--long 28]

A poisoner at chosen hours lies a few hours a day, too briefly for the running means to reach
the scan's threshold; an exponential mean per device and hour-of-day bin (``--bins``, memory
``--days`` days) gathers its lie over days. Each window, every group's devices are scanned
(`monitor.scan.subset_scan`, the product's penalty and threshold 14) on their mean for the
current bin less their mean over all bins (``--contrast 1``: a device's slow wander is in every
bin), in standard errors, both ways; with ``--long D`` less a D-day mean of the same bin too (a
change of a device's daily profile, not the profile). Prints, per group, the first and the
strongest set over the threshold and how many group-windows were, beside the true sets. The
monitor itself runs unchanged (its ``observe`` and ``scan`` are wrapped to watch); ``beijing``
replays the Beijing data, clean (seed 0 in the output) and with the scoreboard's injected attacks
(seed 1), whatever the seeds given.
"""
import sys, argparse
sys.path.insert(0, "benchmarks")
import numpy as np
from _replay import detection_settings
from monitor.collusion import CollusionDetector
from monitor.evaluation.runner import run_monitor
from monitor.evaluation.suite import simulated
from monitor.scan import subset_scan
ap = argparse.ArgumentParser(); ap.add_argument("scen"); ap.add_argument("seeds")
ap.add_argument("--bins", type=int, default=12); ap.add_argument("--days", type=float, default=7.0)
ap.add_argument("--threshold", type=float, default=14.0)
ap.add_argument("--contrast", type=int, default=1)
ap.add_argument("--long", type=float, default=0.0)
args = ap.parse_args()
B = args.bins
st = {}
orig_obs, orig_scan = CollusionDetector.observe, CollusionDetector.scan
def obs(self, devices, z):
    st["last"] = (devices.copy(), z.copy())
    return orig_obs(self, devices, z)
def scan(self, devices, scored, groups, windows=None, **kw):
    dv, z = st.pop("last", (None, None))
    W = st["W"]
    if dv is not None and len(dv) and windows is not None:
        n = max(len(self._ewma), dv.max() + 1)
        if st["m"].shape[0] < n:
            for k in ("m", "v", "c", "L"):
                st[k] = np.r_[st[k], np.zeros((n - st[k].shape[0], B))]
        # window of each device: from the devices matrix
        wmap = np.full(n, -1, np.int64)
        rows, cols = np.nonzero(devices >= 0)
        wmap[devices[rows, cols]] = windows[rows]
        b = (((wmap[dv] * W) % 86400) // (86400 / B)).astype(int)
        lam = 1.0 / (args.days * 86400 / B / W)
        c = st["c"][dv, b] + 1
        w = np.maximum(lam, 1.0 / c)
        zc = np.clip(z, -4, 4)
        st["m"][dv, b] += w * (zc - st["m"][dv, b])
        st["v"][dv, b] = (1 - w) ** 2 * st["v"][dv, b] + w ** 2
        st["c"][dv, b] = c
        if args.long > 0:
            wl = np.maximum(1.0 / (args.long * 86400 / B / W), 1.0 / c)
            st["L"][dv, b] += wl * (zc - st["L"][dv, b])
        # scan each row at its current bin
        d = np.maximum(devices, 0)
        bb = (((windows * W) % 86400) // (86400 / B)).astype(int)
        M = st["m"] - st["L"] if args.long > 0 else st["m"]
        m = M[d, bb[:, None]]; v = st["v"][d, bb[:, None]]; cc = st["c"][d, bb[:, None]]
        if args.contrast:
            allm, allv = M[d].mean(axis=2), st["v"][d].mean(axis=2)
            m = m - allm; v = v * (1 - 2.0 / B) + allv / B
            cc = np.minimum(cc, st["c"][d].min(axis=2))
        ok = scored & (devices >= 0) & (cc >= 20)
        u = np.where(ok, m / np.sqrt(np.where(v > 0, v, 1)), np.nan)
        for sign in (1, -1):
            r = subset_scan(sign * u, 2, 0.5)
            for i in np.flatnonzero(r.evidence >= args.threshold):
                g = int(groups[i])
                mem = devices[i, r.members(i)]
                st["hits"].append((g, int(windows[i]), sign, float(r.evidence[i]), mem.tolist()))
    return orig_scan(self, devices, scored, groups, windows, **kw)
CollusionDetector.observe, CollusionDetector.scan = obs, scan
def datasets():
    if args.scen == "beijing":
        from _replay import beijing
        clean, attacked = beijing()
        yield 0, clean; yield 1, attacked
        return
    for seed in [int(s) for s in args.seeds.split(",")]:
        for data, _ in simulated([args.scen], [seed]):
            yield seed, data
if True:
    for seed, data in datasets():
        st.update(m=np.zeros((0, B)), v=np.zeros((0, B)), c=np.zeros((0, B)), L=np.zeros((0, B)), hits=[], W=data.interval)
        alerts, rec, pipe, *_ = run_monitor(data, detection_settings([]))
        names, gn = pipe.registry.device_names, pipe.registry.group_names
        role = {}
        for lab in data.labels:
            if lab.get("collusion_set"): role[lab["device_id"]] = lab["collusion_set"]
        t0w = int(np.nanmin(data.ts) // data.interval)
        sets = {}
        for dname, sid in role.items(): sets.setdefault(sid, []).append(dname)
        gof = {dd: data.groups[gg] for dd, gg in zip(data.device_ids, data.device_group)}
        for sid, ds in sets.items(): print("  true", sid, gof[ds[0]], " ".join(sorted(x.rsplit('-',1)[-1] for x in ds)))
        per = {}
        for g, w, sign, ev, mem in st["hits"]:
            per.setdefault(g, []).append((w, sign, ev, mem))
        print(f"== {data.name} seed {seed}: {len(st['hits'])} group-windows over threshold, groups {len(per)}")
        for g, hs in sorted(per.items()):
            w, sign, ev, mem = hs[0]
            mx = max(hs, key=lambda h: h[2])
            tag = lambda ms: " ".join(names[x].rsplit('-', 1)[-1] + ('*' if names[x] in role else '') for x in ms)
            print(f"  {gn[g]} first at {w - t0w} ({'+' if sign > 0 else '-'}, {ev:.1f}) [{tag(mem)}]; {len(hs)} windows; max {mx[2]:.1f} {'+' if mx[1] > 0 else '-'} [{tag(mx[3])}]")
