"""Micro-benchmark of the format layer: ``normalize`` and ``render`` throughput per format on
one core, over ``samples.sample_event`` messages (~600 bytes). Not a test; prints a table.

Rates are per second of this process's CPU time (``time.process_time``), so that other load on
a shared machine does not distort them; the best of ``--repeat`` runs is shown. The normalized
events of a run are kept alive (as the ingest batch does), so the cyclic GC's cost is included
unless ``--no-gc``. ``loads/s`` is plain ``orjson.loads`` of the same messages and ``ratio`` =
loads/s ÷ normalize/s: a load-independent measure (orjson.loads alone does ~900k/s on an idle
core of a 2-vCPU machine).

Run: ``python -m eventstrata_bench.formats_measure [--n 20000] [--repeat 5] [--no-headers] [--no-gc]``.
With ``--no-headers`` the format and tenant come from the body / shape detection (ThisData and
event-store samples then keep an ``es-tenant`` header only, as they carry no tenant field).
"""

from __future__ import annotations

import argparse
import gc
import random
import time

import orjson

from eventstrata.formats.normalize import normalize
from eventstrata.formats.render import render
from eventstrata.formats.samples import encode_headers, sample_event
from eventstrata.model import FORMATS, Event

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _messages(fmt: str, n: int, with_headers: bool) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    rng = random.Random(f"bench-{fmt}")
    out = []
    for i in range(n):
        obj, headers = sample_event(rng, fmt, f"tenant{i % 5}", f"user{i % 1000:06d}", NOW_MS - i * 997)
        if not with_headers:
            keep = fmt in ("thisdata", "eventstore")  # shapes without a tenant field
            headers = {k: v for k, v in headers.items() if k == "es-tenant" and keep}
        out.append((orjson.dumps(obj), encode_headers(headers)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-headers", action="store_true")
    ap.add_argument("--no-gc", action="store_true", help="disable the cyclic GC while timing")
    args = ap.parse_args()
    print(f"{'format':<12} {'bytes':>6} {'loads/s':>10} {'normalize/s':>12} {'µs/event':>9} {'ratio':>6} "
          f"{'render/s':>10}")
    for fmt in FORMATS:
        msgs = _messages(fmt, args.n, not args.no_headers)
        avg = sum(len(v) for v, _ in msgs) / len(msgs)
        best = float("inf")
        events: list[Event] = []
        if args.no_gc:
            gc.disable()
        try:
            for _ in range(args.repeat):
                t0 = time.process_time()
                res = [normalize(v, h, now_ms=NOW_MS) for v, h in msgs]
                best = min(best, time.process_time() - t0)
                events = [e for e in res if isinstance(e, Event)]
                del res
            if len(events) != len(msgs):
                raise SystemExit(f"{fmt}: {len(msgs) - len(events)} samples did not normalize")
            best_l = float("inf")
            for _ in range(args.repeat):
                t0 = time.process_time()
                parsed = [orjson.loads(v) for v, _ in msgs]
                best_l = min(best_l, time.process_time() - t0)
                del parsed
            best_r = float("inf")
            for _ in range(args.repeat):
                t0 = time.process_time()
                for e in events:
                    render(e, fmt)
                best_r = min(best_r, time.process_time() - t0)
        finally:
            gc.enable()
        rate = len(msgs) / best
        loads_rate = len(msgs) / best_l
        print(f"{fmt:<12} {avg:6.0f} {loads_rate:10,.0f} {rate:12,.0f} {1e6 / rate:9.2f} "
              f"{loads_rate / rate:6.1f} {len(events) / best_r:10,.0f}")


if __name__ == "__main__":
    main()
