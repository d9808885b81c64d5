"""The ingest scenario's per-event CPU figures (pure arithmetic over what the meters read)."""

from __future__ import annotations

import pytest

from eventstrata_bench.scen_ingest import IngestRun, RedisCost, RedisMeter


def test_worker_cpu_per_event_is_cpu_seconds_over_events() -> None:
    run = IngestRun(events=100_000, seconds=10.0, start_seconds=1.0, worker_cpu=(50.0, 30.0),
                    redis_cpu=80.0, memory_delta=0)
    # 0.8 of a core for 10 s = 8 CPU seconds for 100,000 events
    assert run.worker_us_per_event() == pytest.approx(80.0)


def test_the_scripts_own_work_is_evalsha_minus_the_commands_it_ran() -> None:
    cost = RedisCost(40.0, {"evalsha": 38.0, "zadd": 9.0, "hsetnx": 4.0, "hset": 1.5, "info": 0.1, "eval": 0.5})
    assert cost.script_own() == pytest.approx(23.5)
    assert RedisCost(1.0, {"zadd": 2.0}).script_own() == 0.0


class _Info:
    """``INFO cpu`` / ``INFO commandstats`` replies in the shape redis-py returns them."""

    def __init__(self) -> None:
        self.cpu = {"used_cpu_user": 1.0, "used_cpu_sys": 0.5, "used_cpu_user_children": 0.0,
                    "used_cpu_sys_children": 0.0}
        self.stats = {"cmdstat_evalsha": {"usec": 100}}

    def info(self, section: str) -> dict[str, object]:
        return dict(self.cpu) if section == "cpu" else dict(self.stats)


def test_the_redis_meter_keeps_the_forked_childrens_cpu_apart() -> None:
    r = _Info()
    meter = RedisMeter(r)
    meter.start()
    r.cpu.update(used_cpu_user=3.0, used_cpu_sys=1.5, used_cpu_user_children=0.25, used_cpu_sys_children=0.05)
    r.stats["cmdstat_evalsha"] = {"usec": 2_000_100}
    cost = meter.stop(100_000)
    assert cost.us_per_event == pytest.approx(30.0)  # 3 s of the server process for 100,000 events
    assert cost.children_us_per_event == pytest.approx(3.0)
    assert cost.by_command == {"evalsha": pytest.approx(20.0)}
