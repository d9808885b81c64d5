"""Result records, target evaluation and the output files (JSON, Markdown, PNG plots).

``Metric`` values and ``evaluate`` are pure; ``write_outputs`` writes files and may raise
``OSError``.

What a run keeps in ``bench/results/`` (in git): ``<date>-<tag>.json`` with every metric and,
per latency series, its summary (``series_summary``: n, min, p1, p25, p50, p75, p99, max), the
Markdown table and the plots, which are drawn from the summaries alone (``plot_series``), so
``replot`` redraws them from a kept JSON file. The raw latency samples (megabytes per run) go,
gzip-compressed, to ``raw/<date>-<tag>-series.json.gz`` beside them, which git ignores.
"""

from __future__ import annotations

import datetime as dt
import gzip
import importlib.util
import json
import operator
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

Cmp = Literal[">=", "<="]
_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True, slots=True)
class Target:
    """A pass/fail goal for one metric: ``value <cmp> threshold``."""

    cmp: Cmp
    threshold: float

    def met(self, value: float) -> bool:
        return _OPS[self.cmp](value, self.threshold)

    def text(self, unit: str) -> str:
        return f"{self.cmp} {self.threshold:g} {unit}".strip()


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the results table.

    ``system`` is ``eventstrata`` or the baseline measured (``postgresql``, ``faust``,
    ``redis-benchmark``); ``stat`` names what ``value`` is (``p50``, ``p99``, ``median of 3``,
    ``total`` …); ``samples`` is how many observations it summarizes.
    """

    scenario: str
    name: str
    unit: str
    value: float
    stat: str
    samples: int
    system: str = "eventstrata"
    target: Target | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value)


@dataclass(slots=True)
class Run:
    """Everything one benchmark run produced (mutable while the run is going)."""

    started: str
    mode: str
    machine: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)
    series: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    series_n: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def add_series(self, group: str, label: str, values: list[float], samples: int | None = None) -> None:
        """Latency samples (ms) for the plot ``group``; ``samples`` when ``values`` are quantiles."""
        self.series.setdefault(group, {})[label] = values
        self.series_n.setdefault(group, {})[label] = len(values) if samples is None else samples

    def add(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        return metric

    def find(self, scenario: str, name: str, system: str = "eventstrata") -> Metric | None:
        for m in self.metrics:
            if m.scenario == scenario and m.name == name and m.system == system:
                return m
        return None

    def set_target(self, scenario: str, name: str, target: Target) -> None:
        for i, m in enumerate(self.metrics):
            if m.scenario == scenario and m.name == name and m.system == "eventstrata":
                self.metrics[i] = replace(m, target=target)


def fmt_value(value: float) -> str:
    """Human formatting: thousands separators, 3 significant digits for small values."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def markdown_table(metrics: Sequence[Metric]) -> str:
    """The results table: scenario, system, metric, unit, value, stat, samples, target, met?"""
    lines = [
        "| scenario | system | metric | unit | value | percentile / stat | samples | target | met? |",
        "| --- | --- | --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for m in metrics:
        target = m.target.text(m.unit) if m.target else ""
        met = "" if m.met is None else ("yes" if m.met else "**no**")
        name = f"{m.name} ({m.note})" if m.note else m.name
        lines.append(
            f"| {m.scenario} | {m.system} | {name} | {m.unit} | {fmt_value(m.value)} | {m.stat} "
            f"| {m.samples:,} | {target} | {met} |"
        )
    return "\n".join(lines)


def machine_line(machine: Mapping[str, Any]) -> str:
    return (
        f"{machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('ram_gib', '?')} GiB RAM, {machine.get('os', '?')}"
    )


def one_line(text: str, limit: int = 700) -> str:
    """Collapse whitespace (log excerpts) and keep the head and the tail of long text. Pure."""
    flat = " ".join(text.split()).replace("|", "/")
    return flat if len(flat) <= limit else flat[:250] + " … " + flat[-(limit - 250) :]


def render_markdown(run: Run) -> str:
    """``latest.md``: header with the machine, the table, missing scenarios, notes, profiles."""
    out = [
        f"# eventstrata benchmark — {run.started}",
        "",
        f"Machine: {machine_line(run.machine)} (host tag `{run.machine.get('tag', '?')}`). "
        f"Mode: `{run.mode}`. Client, servers and product share the same cores.",
        "",
        markdown_table(run.metrics),
        "",
    ]
    if run.missing:
        out += ["## Not measured in this run", ""]
        out += [f"- **{k}**: {one_line(v)}" for k, v in run.missing.items()]
        out.append("")
    if run.notes:
        out += ["## Notes", ""]
        out += [f"- {n}" for n in run.notes]
        out.append("")
    if run.profiles:
        out += ["## Profiles of missed targets (top self-time frames)", ""]
        for k, v in run.profiles.items():
            out += [f"### {k}", "", "```", v.rstrip(), "```", ""]
    pngs = sorted({f"{s}.png" for s in run.series})
    if any(m.unit == "events/s" for m in run.metrics):
        pngs.append("ingest.png")
    if any(m.unit == "req/s" for m in run.metrics):
        pngs.append("hot-reads-throughput.png")
    if pngs:
        out += ["## Plots", ""]
        out += [f"![{p}]({p})" for p in pngs]
        out.append("")
    return "\n".join(out)


def to_json(run: Run) -> dict[str, Any]:
    metrics = []
    for m in run.metrics:
        d = asdict(m)
        d["met"] = m.met
        metrics.append(d)
    return {
        "started": run.started,
        "mode": run.mode,
        "machine": run.machine,
        "config": run.config,
        "metrics": metrics,
        "missing": run.missing,
        "notes": run.notes,
        "profiles": run.profiles,
        "series": {g: {k: series_summary(v) for k, v in by.items() if v} for g, by in run.series.items()},
        "series_n": run.series_n,
    }


SUMMARY_POINTS: tuple[tuple[str, float], ...] = (("p1", 0.01), ("p25", 0.25), ("p50", 0.50), ("p75", 0.75),
                                                  ("p99", 0.99))


def series_summary(values: Sequence[float]) -> dict[str, float]:
    """The kept summary of latency samples ``values`` (non-empty): n, min, max and the
    ``SUMMARY_POINTS`` quantiles (nearest rank, like ``plot_series`` annotates). Pure."""
    ordered = sorted(values)
    last = len(ordered) - 1
    out: dict[str, float] = {"n": len(ordered), "min": ordered[0], "max": ordered[-1]}
    for name, q in SUMMARY_POINTS:
        out[name] = ordered[min(last, int(len(ordered) * q))]
    return out


def write_outputs(run: Run, out_dir: Path) -> list[Path]:
    """Write ``<date>-<tag>.json`` (summaries), ``raw/<date>-<tag>-series.json.gz`` (the raw
    samples), ``latest.md`` and the PNG plots; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    tag = str(run.machine.get("tag", "machine"))
    suffix = "" if run.mode == "full" else f"-{run.mode}"
    kept = to_json(run)
    json_path = out_dir / f"{date}-{tag}{suffix}.json"
    json_path.write_text(json.dumps(kept, indent=1, sort_keys=False) + "\n")
    raw_path = out_dir / "raw" / f"{date}-{tag}{suffix}-series.json.gz"
    raw_path.parent.mkdir(exist_ok=True)
    raw_path.write_bytes(gzip.compress(json.dumps(run.series).encode(), mtime=0))
    md_path = out_dir / ("latest.md" if run.mode == "full" else f"latest-{run.mode}.md")
    md_path.write_text(render_markdown(run) + "\n")
    paths = [json_path, raw_path, md_path]
    if importlib.util.find_spec("matplotlib") is None:  # a dependency of the bench project
        print("[bench] matplotlib missing (pip install -e ./bench): no plots written", flush=True)
        return paths
    paths += plot_series(kept["series"], kept["series_n"], run.machine, out_dir)
    paths += plot_rates(run, out_dir)
    return paths


def replot(json_path: Path, out_dir: Path) -> list[Path]:
    """Redraw the latency plots of a kept result file (``write_outputs``' JSON) into
    ``out_dir``; return the paths. Raises ``OSError``/``ValueError`` for an unreadable file."""
    kept = json.loads(json_path.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    return plot_series(kept["series"], kept.get("series_n", {}), kept["machine"], out_dir)


def plot_rates(run: Run, out_dir: Path) -> list[Path]:
    """Bar charts of throughput metrics: ``ingest.png`` (events/s, every system) and
    ``hot-reads-throughput.png`` (req/s, ours vs PostgreSQL per query)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {
        "ingest": [m for m in run.metrics if m.unit == "events/s" and m.scenario in ("1 ingest", "setup")],
        "hot-reads-throughput": [m for m in run.metrics if m.unit == "req/s"],
    }
    paths: list[Path] = []
    for name, ms in groups.items():
        if not ms:
            continue
        fig, ax = plt.subplots(figsize=(12.0, 0.45 * len(ms) + 1.8))
        labels = [f"{m.system}: {m.name}"[:90] for m in ms]
        colors = ["tab:blue" if m.system == "eventstrata" else "tab:gray" for m in ms]
        ax.barh(range(len(ms)), [m.value for m in ms], color=colors)
        ax.set_yticks(range(len(ms)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        for i, m in enumerate(ms):
            ax.annotate(
                f"{m.value:,.0f} ({m.stat}, n={m.samples:,})",
                (m.value, i),
                fontsize=7,
                xytext=(3, -3),
                textcoords="offset points",
            )
        unit = ms[0].unit
        ax.set_xlabel(unit)
        ax.set_title(
            f"{name} — {unit} (blue: eventstrata, grey: baselines)\n{machine_line(run.machine)}", fontsize=9
        )
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_series(
    summaries: Mapping[str, Mapping[str, Mapping[str, float]]],
    counts_by_group: Mapping[str, Mapping[str, int]],
    machine: Mapping[str, Any],
    out_dir: Path,
) -> list[Path]:
    """One PNG per series group: a box plot (from ``series_summary`` summaries) per label, titled
    with the unit, the percentiles shown, the sample counts and the machine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    for group, series in summaries.items():
        labels = sorted(series, key=lambda k: (k.partition(": ")[2], k))
        if not labels:
            continue
        stats = [series[k] for k in labels]
        fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(labels)), 4.5))
        ax.bxp([{"med": st["p50"], "q1": st["p25"], "q3": st["p75"], "whislo": st["p1"],
                 "whishi": st["p99"], "fliers": []} for st in stats], showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1))
        counts = counts_by_group.get(group, {})
        ax.set_xticklabels(
            [
                f"{lbl.replace(': ', ':' + chr(10))}\nn={counts.get(lbl, int(series[lbl]['n'])):,}"
                for lbl in labels
            ],
            fontsize=7,
        )
        for i, st in enumerate(stats, start=1):
            ax.annotate(
                f"p50 {st['p50']:.2f}\np99 {st['p99']:.2f}",
                (i, st["p99"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_ylabel("latency, ms (box p25–p75, line p50, whiskers p1–p99)")
        ax.set_yscale("log")
        ax.set_title(f"{group} — latency in ms\n{machine_line(machine)}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"{group}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eventstrata_bench.results replot FILE.json [OUT_DIR]``: redraw the latency
    plots of a kept result file (default: beside it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3) or args[0] != "replot":
        print("usage: python -m eventstrata_bench.results replot FILE.json [OUT_DIR]", file=sys.stderr)
        return 2
    src = Path(args[1])
    for path in replot(src, Path(args[2]) if len(args) == 3 else src.parent):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
