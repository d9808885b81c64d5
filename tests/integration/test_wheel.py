"""The product's wheel, built from the repository: it ships the product only (no benchmark,
measurement or dictionary-training code, no ``workers`` package) and pulls none of the
benchmark's dependencies."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_ONLY = ("faust", "matplotlib", "psycopg", "py-spy", "pyinstrument")


def test_the_wheel_holds_the_product_and_nothing_of_the_benchmark(tmp_path: Path) -> None:
    tree = tmp_path / "tree"  # a clean copy: an in-tree build/ directory could hold stale modules
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(tree)],
                   check=True, timeout=300)
    wheel = next(tmp_path.glob("eventstrata-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "eventstrata/hotstore/write.lua" in names
    assert "eventstrata/hotstore/zstd-dict-2.bin" in names
    assert "eventstrata/processes/ingest.py" in names
    static = sorted(p.name for p in (ROOT / "src/eventstrata/console/static").iterdir() if p.is_file())
    assert static and all(f"eventstrata/console/static/{n}" in names for n in static)  # the console ships
    tooling = [n for n in names if re.search(r"bench|measure|traindict|^workers/", n)]
    assert tooling == []
    requires = [line.split(":", 1)[1].strip().lower() for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]
    assert requires, "the metadata lists the product's dependencies"
    assert [r for r in requires if r.startswith(BENCH_ONLY)] == []
