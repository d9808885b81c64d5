"""Scenario 3 (hot reads over HTTP with wrk, and the same queries on PostgreSQL).

``ReadTargets`` is built purely from the normalized dataset; running wrk blocks.
"""

from __future__ import annotations

import random
import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from eventstrata_bench.infra import BenchError

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Row:
    """The facts of one normalized event the read scenarios need."""

    tenant: str
    id: str
    user_id: str | None
    type: str
    ts: int


@dataclass(slots=True)
class ReadTargets:
    """Parameters per query kind, shared by the product and PostgreSQL runs."""

    users: list[tuple[str, str]] = field(default_factory=list)
    user_types: list[tuple[str, str, str]] = field(default_factory=list)
    types_hour: list[tuple[str, str, int]] = field(default_factory=list)
    ids: list[tuple[str, str]] = field(default_factory=list)


def build_targets(
    rows: Iterable[Row],
    now_ms: int,
    *,
    seed: int = 3,
    heavy: int = 20,
    random_users: int = 80,
    n_ids: int = 2000,
    page: int = 50,
) -> ReadTargets:
    """Choose query parameters from the dataset: the most active users of each tenant plus a
    random sample of the others that have at least ``page`` events (so a user page is a full
    page, as "a user timeline page of 50 events" means; until 2026-12-02 the sample was of all
    users, and the pages held 14.7 events on average), each user's most frequent type, the
    types seen in the dataset's last hour, and random ids. Pure and deterministic."""
    rng = random.Random(seed)
    per_user: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    types_hour: Counter[tuple[str, str]] = Counter()
    ids: list[tuple[str, str]] = []
    for seen, r in enumerate(rows, start=1):
        if r.user_id is not None:
            per_user[(r.tenant, r.user_id)][r.type] += 1
        if r.ts >= now_ms - HOUR_MS:
            types_hour[(r.tenant, r.type)] += 1
        if len(ids) < n_ids:
            ids.append((r.tenant, r.id))
        elif rng.random() < n_ids / seen:
            ids[rng.randrange(n_ids)] = (r.tenant, r.id)
    by_tenant: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (tenant, user), c in per_user.items():
        by_tenant[tenant].append((sum(c.values()), user))
    t = ReadTargets(ids=ids)
    for tenant, lst in sorted(by_tenant.items()):
        lst.sort(key=lambda x: (-x[0], x[1]))
        chosen = [u for _, u in lst[:heavy]]
        rest = [u for n, u in lst[heavy:] if n >= page]
        chosen += rng.sample(rest, min(random_users, len(rest)))
        for u in chosen:
            t.users.append((tenant, u))
            t.user_types.append((tenant, u, per_user[(tenant, u)].most_common(1)[0][0]))
    since = now_ms - HOUR_MS
    t.types_hour = [(tenant, ty, since) for (tenant, ty), _ in types_hour.most_common(40)]
    return t


def api_requests(t: ReadTargets) -> dict[str, list[tuple[str, str]]]:
    """``kind → [(path, tenant)]`` for the native API. Pure."""

    def q(params: dict[str, Any]) -> str:
        return urlencode(params)

    return {
        "user newest 50": [(f"/v1/events?{q({'user_id': u, 'limit': 50})}", tn) for tn, u in t.users],
        "user+type newest 50": [
            (f"/v1/events?{q({'user_id': u, 'type': ty, 'limit': 50})}", tn) for tn, u, ty in t.user_types
        ],
        "type newest 50, last hour": [
            (f"/v1/events?{q({'type': ty, 'since': s, 'limit': 50})}", tn) for tn, ty, s in t.types_hour
        ],
        "get by id": [(f"/v1/events/{quote(i, safe='')}", tn) for tn, i in t.ids],
        "count for user": [(f"/v1/events/count?{q({'user_id': u})}", tn) for tn, u in t.users],
    }


def pg_params(t: ReadTargets) -> dict[str, list[tuple[Any, ...]]]:
    """``kind → parameter tuples`` for ``baseline_pg.QUERIES``. Pure."""
    return {
        "user newest 50": list(t.users),
        "user+type newest 50": list(t.user_types),
        "type newest 50, last hour": list(t.types_hour),
        "get by id": list(t.ids),
        "count for user": list(t.users),
    }


_LUA = """
local reqs = {
%s
}
local i = 0
init = function(args)
  math.randomseed(%d)
  i = math.random(#reqs)
end
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  local r = reqs[i]
  return wrk.format("GET", r[1], {["Authorization"] = "Bearer " .. r[2]})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write("BENCH_SUMMARY ", summary.requests, " ", summary.duration, " ", e.status,
           " ", e.connect + e.read + e.write + e.timeout, "\\n")
  io.write("BENCH_P ", latency:percentile(50) / 1000.0, " ", latency:percentile(99) / 1000.0, "\\n")
  io.write("BENCH_Q")
  for p = 0.5, 99.5, 1.0 do io.write(" ", latency:percentile(p) / 1000.0) end
  io.write("\\n")
end
"""


def lua_script(reqs: Sequence[tuple[str, str]], keys: dict[str, str], seed: int = 11) -> str:
    """A wrk script cycling through ``reqs`` with each tenant's bearer key. Pure."""
    body = ",\n".join(f'  {{"{_lua_esc(p)}", "{_lua_esc(keys[t])}"}}' for p, t in reqs)
    return _LUA % (body, seed)


def _lua_esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    bad_status: int
    socket_errors: int
    quantiles_ms: tuple[float, ...]


def parse_wrk(output: str) -> WrkResult:
    """Parse the BENCH_* lines the script's ``done`` prints. Pure; raises ``BenchError``."""
    m = re.search(r"BENCH_SUMMARY (\d+) (\d+) (\d+) (\d+)", output)
    p = re.search(r"BENCH_P ([\d.e+-]+) ([\d.e+-]+)", output)
    q = re.search(r"BENCH_Q ([^\n]*)", output)
    if not (m and p and q):
        raise BenchError(f"unexpected wrk output: {output[-500:]}")
    requests, dur_us = int(m.group(1)), int(m.group(2))
    seconds = dur_us / 1e6
    return WrkResult(
        requests,
        seconds,
        requests / seconds if seconds else 0.0,
        float(p.group(1)),
        float(p.group(2)),
        int(m.group(3)),
        int(m.group(4)),
        tuple(float(x) for x in q.group(1).split()),
    )


def run_wrk(base: str, script: Path, *, concurrency: int, seconds: float) -> WrkResult:
    """wrk -t1 -c<concurrency> -d<seconds> with ``script``. Blocks; raises ``BenchError``."""
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        timeout=seconds + 60,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"wrk failed: {proc.stderr.decode(errors='replace')[-400:]}")
    return parse_wrk(proc.stdout.decode(errors="replace"))
