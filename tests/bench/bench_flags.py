#!/usr/bin/env python3
"""What each of Chromium's flags saves: sessions with the flags of
``sessionproc/chromeflags.py`` (the base) and sessions with one change each,
all linked to the stand-in and measured in the same run, side by side.

Not a pytest test (the name keeps pytest from collecting it): it prints a
table and exits 0; it exits 1 only when the run itself breaks.

    python tests/bench/bench_flags.py                         # every variant, 2 sessions each
    python tests/bench/bench_flags.py --variants base,in-process-gpu --per-variant 3
    python tests/bench/bench_flags.py --weight real           # on the weighted page

Figures per session: PSS of its whole tree (session process, chromedriver,
Chromium), and of each kind of Chromium process (browser, renderer, GPU,
each utility service).  PSS divides a shared page among all processes that
map it, other Chromiums of the machine included: only figures of one run
compare, which is why the variants run together.  Each session proves the
page still works under its flags: it links, sends a message and receives
one before it is measured.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import orjson
import psutil

from sessionproc import browser
from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control
from wwnode.fakewa.settings import REAL_WEIGHT

from benchlib import Table, cpu_by_kind, progress, pss_by_kind, run_bench, run_main, tree_cpu
from support import SessionProcess, with_tests_dir

BENCH_DIR = Path(__file__).resolve().parent
FEATURES_FLAG = next(f for f in browser.BASE_FLAGS if f.startswith("--disable-features="))

# name -> (flags taken out of the base, flags added, features added to --disable-features[, chromedriver switches
# no longer excluded])
VARIANTS: dict[str, tuple[list[str], ...]] = {
    "base": ([], [], []),
    # Each flag kept in the base, taken out.
    "without-renderer-limit": (["--renderer-process-limit=1"], [], []),
    "without-no-software-rasterizer": (["--disable-software-rasterizer"], [], []),
    "without-in-process-gpu": (["--in-process-gpu"], [], []),
    "without-network-in-process": (["--enable-features=NetworkServiceInProcess2"], [], []),
    "without-no-unsandboxed-zygote": (["--no-unsandboxed-zygote"], [], []),
    # Its effect shows from the third minute on: --settle 200.
    "without-performance-class": (["--optimization-guide-performance-class=2"], [], []),
    # Flags tried and not kept (chromeflags.py says why).
    "single-process": ([], ["--single-process"], []),
    "no-zygote": ([], ["--no-zygote"], []),
    "js-optimize-for-size": ([], ["--js-flags=--optimize-for-size"], []),
    "js-semi-space-1mb": ([], ["--js-flags=--max-semi-space-size=1"], []),
    "js-lite-mode": ([], ["--js-flags=--lite-mode"], []),
    "site-isolation-off": ([], ["--disable-site-isolation-trials"], []),
    "no-spare-renderer": ([], [], ["SpareRendererForSitePerProcess"]),
    "no-back-forward-cache": ([], [], ["BackForwardCache"]),
    "window-800x600": ([], ["--window-size=800,600"], []),
    # Idle CPU (--idle-seconds): periodic work of the browser process.
    "field-trial-config-off": ([], ["--disable-field-trial-config"], []),
    "reclaimer-30s": (["--enable-features=NetworkServiceInProcess2"],
                      ["--enable-features=NetworkServiceInProcess2,PartitionAllocMemoryReclaimer:interval/30s"], []),
    "no-hang-watcher": ([], [], ["EnableHangWatcher"]),
    # chromedriver's switches that turn off the throttling of hidden pages' timers, passed again.
    "chromedriver-throttling-off": ([], [], [], ["disable-background-timer-throttling",
                                                 "disable-backgrounding-occluded-windows"]),
    "no-crashpad": ([], ["--disable-crashpad-for-testing"], []),
    "no-on-device-model": ([], [], ["OptimizationGuideOnDeviceModel", "OnDeviceModelService", "AIPromptAPI",
                                    "AISummarizationAPI", "AIRewriterAPI", "AIWriterAPI", "AILanguageModelService"]),
}


def variant_env(name: str) -> dict[str, str]:
    drop, add, features, *rest = VARIANTS[name]
    keep = rest[0] if rest else []
    if features:
        drop = [*drop, FEATURES_FLAG]
        add = [*add, FEATURES_FLAG + "," + ",".join(features)]
    return {"BENCH_FLAGS_DROP": orjson.dumps(drop).decode(), "BENCH_FLAGS_ADD": orjson.dumps(add).decode(),
            "BENCH_SWITCHES_KEEP": orjson.dumps(keep).decode(), "PYTHONPATH": with_tests_dir(str(BENCH_DIR))}


def tree_pss(pid: int) -> dict[str, float]:
    """PSS in MB of a session's whole tree, by kind of process."""
    root = psutil.Process(pid)
    return pss_by_kind([root, *root.children(recursive=True)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="PSS per session under each variant of Chromium's flags.")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated, from: " + ", ".join(VARIANTS) + " (default: all)")
    ap.add_argument("--per-variant", type=int, default=2, help="sessions per variant (default %(default)s)")
    ap.add_argument("--settle", type=float, default=30.0,
                    help="seconds between the last session linked and the measure (default %(default)s)")
    ap.add_argument("--weight", choices=("off", "real"), default="off", help="the stand-in page's weight")
    ap.add_argument("--parallel", type=int, default=3, help="sessions booting at once (default %(default)s)")
    ap.add_argument("--idle-seconds", type=float, default=0.0,
                    help="also measure idle CPU, per kind of process, over a window this long after the PSS "
                         "(default: not measured)")
    args = ap.parse_args(argv)
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or "base" not in names:
        ap.error(f"unknown variants {unknown}" if unknown else "the variants must include base")

    work = Path(tempfile.mkdtemp(prefix="bench-flags-")).resolve()
    weight = REAL_WEIGHT if args.weight == "real" else {}
    wa = FakeWA(settings=Settings(**weight)).start()
    control = Control(wa.url)
    sessions: list[tuple[str, SessionProcess]] = []

    def body(table: Table) -> None:
        plan = [(name, i) for i in range(args.per_variant) for name in names]  # interleaved
        booting: list[tuple[str, SessionProcess, str]] = []
        for n, (name, i) in enumerate(plan):
            key = f"{name}-{i}"
            s = SessionProcess(key, work / "profiles" / key, wa.url, work / "logs" / f"{key}.log",
                               module="flagged_session", env=variant_env(name))
            sessions.append((name, s))
            booting.append((name, s, f"5511{n:09d}"))
            if len(booting) >= args.parallel or n == len(plan) - 1:
                for _, b, phone in booting:
                    qr = b.expect("qr", timeout=180)
                    control.scan(qr["qr"], phone)
                for _bname, b, phone in booting:
                    b.expect("ready", timeout=180)
                    # The page works under these flags: a send and a message in.
                    b.send({"cmd": "send", "id": "probe", "chat_id": "5511888000001@c.us", "text": "probe"})
                    b.expect("sent", timeout=60, id="probe")
                    control.deliver(phone, "5511888000001", "probe in")
                    b.expect("message", timeout=60, match=lambda e: e["message"].get("body") == "probe in")
                progress(f"{len(sessions)}/{len(plan)} sessions linked and checked")
                booting = []
        progress(f"settling {args.settle:g} s")
        time.sleep(args.settle)
        per: dict[str, list[dict[str, float]]] = {}
        for name, s in sessions:
            per.setdefault(name, []).append(tree_pss(s.proc.pid))
        base = statistics.mean(sum(d.values()) for d in per["base"])
        for name in names:
            totals = [sum(d.values()) for d in per[name]]
            mean = statistics.mean(totals)
            kinds = sorted({k for d in per[name] for k in d})
            detail = ", ".join(f"{k} {statistics.mean(d.get(k, 0.0) for d in per[name]):.0f}" for k in kinds)
            table.add(f"{name}: PSS whole tree per session (n={len(totals)}, {min(totals):.0f}-{max(totals):.0f})",
                      mean, "MB", fmt="{:.1f}")
            if name != "base":
                table.add(f"{name}: change from base", mean - base, "MB", fmt="{:+.1f}")
            table.add(f"{name}: by process", 0, detail, fmt="")
        table.add("machine load (1-min average) at the measure", psutil.getloadavg()[0], "", fmt="{:.2f}")
        if args.idle_seconds > 0:
            idle_cpu(table, names, args.idle_seconds)

    def idle_cpu(table: Table, names: list[str], seconds: float) -> None:
        """Idle CPU per session, whole tree and per kind of process, in % of
        a core: CPU time is what a session costs, whatever the load."""
        progress(f"idle CPU window, {seconds:g} s")
        load0 = psutil.getloadavg()[0]
        before = {s.key: tree_cpu(s.proc.pid) for _, s in sessions}
        t0 = time.monotonic()
        time.sleep(seconds)  # the window itself: nothing to wait for
        wall = time.monotonic() - t0
        per: dict[str, list[dict[str, float]]] = {}
        for name, s in sessions:
            per.setdefault(name, []).append(cpu_by_kind(before[s.key], tree_cpu(s.proc.pid)))
        for name in names:
            totals = [sum(d.values()) / wall * 100 for d in per[name]]
            kinds = sorted({k for d in per[name] for k in d})
            detail = ", ".join(f"{k} {statistics.mean(d.get(k, 0.0) for d in per[name]) / wall * 100:.3f}"
                               for k in kinds)
            table.add(f"{name}: idle CPU per session, whole tree ({wall:.0f} s, n={len(totals)}, "
                      f"{min(totals):.3f}-{max(totals):.3f})", statistics.mean(totals), "% of a core", fmt="{:.3f}")
            table.add(f"{name}: idle CPU by process", 0, "% of a core: " + detail, fmt="")
        table.add("machine load (1-min average) over the CPU window", psutil.getloadavg()[0], f"(from {load0:.2f})",
                  fmt="{:.2f}")

    def cleanup() -> None:
        for _, s in sessions:
            try:
                if s.proc.poll() is None:
                    s.send({"cmd": "stop"})
            except (BrokenPipeError, ValueError):
                pass
        for _, s in sessions:
            try:
                s.proc.wait(60)
            except subprocess.TimeoutExpired:  # its reaper takes its browser along
                s.proc.kill()
        wa.stop()
        shutil.rmtree(work, ignore_errors=True)

    return run_bench(f"flags benchmark (weight {args.weight})", body, cleanup)


if __name__ == "__main__":
    run_main(main)
