"""House rules of the package source, checked on its syntax trees (``ast``, nothing is imported).

* The process environment is read only by ``eventstrata/config.py``: no other module names
  ``os.environ``, ``os.environb``, ``os.getenv`` / ``os.getenvb`` (nor imports them from ``os``),
  nor declares a command-line option that click reads from a variable (``envvar=``).
* ``Settings`` is built only by ``Settings.from_env`` (the one parser of settings): no other
  module calls the ``Settings`` class itself (``dataclasses.replace`` of built settings is fine).
* The hot tier's Redis layout has one owner, ``eventstrata/hotstore/`` (``keys.py`` builds the
  names): no other module calls a Redis stream command (the tail stream's) nor names a hot-tier
  key of ``keys.TenantKeys`` (``HOT_KEYS``).
* The query engine, the live tail and the archiver (``eventstrata/query/``,
  ``eventstrata/tail/``, ``eventstrata/archive/archiver.py``) reach the hot tier only through
  ``hotstore.interface`` (``HotStore``, ``HotHandoff``): of ``eventstrata.hotstore`` they import
  the interfaces and the values of their contract (``READ_CONTRACT``), never a function that
  takes a Redis client, and they do not import ``eventstrata.redisconn``. So their unit tests
  can run on ``hotstore.memory.MemoryHotStore``.
* Module names say what a module is for: no two modules of the package share a file name, but
  ``__init__.py``, ``__main__.py`` and the command modules ``cli/<area>.py`` (named by their command).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "eventstrata"
CONFIG = SRC / "config.py"
ENV_NAMES = frozenset({"environ", "environb", "getenv", "getenvb"})


def env_reads(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` of every read of the process environment in ``source``."""
    found: list[tuple[int, str]] = []
    os_names = {"os"}
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [(node.lineno, f"from os import {a.name}") for a in node.names if a.name in ENV_NAMES]
        elif (isinstance(node, ast.Attribute) and node.attr in ENV_NAMES
              and isinstance(node.value, ast.Name) and node.value.id in os_names):
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
        elif isinstance(node, ast.keyword) and node.arg in ("envvar", "auto_envvar_prefix"):
            found.append((node.value.lineno, f"{node.arg}="))
    return found


def settings_built(source: str) -> list[int]:
    """Lines of ``source`` that call the ``Settings`` class (not one of its methods)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and ((isinstance(node.func, ast.Name) and node.func.id == "Settings")
             or (isinstance(node.func, ast.Attribute) and node.func.attr == "Settings"))
    ]


def shared_names(paths: list[Path]) -> dict[str, list[str]]:
    """File names that more than one module under ``SRC`` uses (exempt ones left out)."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        rel = path.relative_to(SRC)
        if rel.name in ("__init__.py", "__main__.py") or rel.parts[0] == "cli":
            continue
        by_name[rel.name].append(str(rel))
    return {name: sorted(where) for name, where in by_name.items() if len(where) > 1}


HOTSTORE = SRC / "hotstore"
KEYS = SRC / "keys.py"
STREAM_COMMANDS = frozenset({"xadd", "xread", "xrange", "xrevrange", "xtrim", "xlen", "xinfo_stream"})
HOT_KEYS = frozenset({"id_buckets", "gpos", "position_node", "spos", "user_sets", "hour_counts", "seq_blocks",
                      "id_bucket", "seq_block", "user_set", "user_sets_field", "type_set", "types_of_hour",
                      "tombstones", "offsets", "tail"})
"""Names of ``keys.TenantKeys`` that only the hot tier's owner reads (the job records of
``erasure`` and the archive's ``watermark``/``lease``/``days`` have names shared with other
things, and are checked where they are used)."""
SHARED_NAMES = frozenset({"gpos", "spos", "offsets", "tail"})
"""Of ``HOT_KEYS``, the names that other things have too (a row's ``gpos``, the app's ``tail``):
flagged only on a ``TenantKeys``."""


def hot_layout_uses(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` of every stream command called and hot-tier key named in ``source``: a
    name of ``SHARED_NAMES`` counts only on what looks like a ``TenantKeys`` (``.tenant(...)``,
    or a name ending in ``keys``/``tk``), the other names of ``HOT_KEYS`` on anything."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in STREAM_COMMANDS:
            found.append((node.lineno, node.func.attr))
        elif isinstance(node, ast.Attribute) and node.attr in HOT_KEYS:
            owner = node.value
            keys_like = (isinstance(owner, ast.Call) and isinstance(owner.func, ast.Attribute)
                         and owner.func.attr == "tenant") or (
                isinstance(owner, ast.Name | ast.Attribute)
                and (owner.id if isinstance(owner, ast.Name) else owner.attr).endswith(("keys", "tk")))
            if node.attr not in SHARED_NAMES or keys_like:
                found.append((node.lineno, node.attr))
    return found


READERS = (SRC / "query", SRC / "tail", SRC / "archive" / "archiver.py")
READ_CONTRACT = {
    "interface": {"HotStore", "HotHandoff"},
    "handoff": {"HotRef", "PartRef"},
    "read": {"Row", "ScanResult", "SeqRow", "Sources", "Family"},
    "tailentry": {"Announcement", "empty_ranges"},
    "codec": {"BodyCodec", "BodyError"},
    "stored": {"StoredEvents", "TimePos"},
}
"""What a reader of the hot tier may import from each module of ``eventstrata.hotstore``."""


def hot_reads_around_the_store(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` of every import in ``source`` that reaches the hot tier other than
    through ``READ_CONTRACT``: another name of ``eventstrata.hotstore``, a module of it imported
    whole, or ``eventstrata.redisconn``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names
                      if a.name.startswith("eventstrata.hotstore") or a.name == "eventstrata.redisconn"]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module == "eventstrata.redisconn":
                found.append((node.lineno, node.module))
            elif node.module == "eventstrata.hotstore":
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
            elif node.module.startswith("eventstrata.hotstore."):
                allowed = READ_CONTRACT.get(node.module.removeprefix("eventstrata.hotstore."), set())
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if a.name not in allowed]
    return found


def _modules() -> list[Path]:
    paths = sorted(SRC.rglob("*.py"))
    assert len(paths) > 50 and CONFIG in paths
    return paths


def test_only_config_reads_the_environment() -> None:
    found = [f"{p.relative_to(SRC)}:{line}: {what}"
             for p in _modules() if p != CONFIG for line, what in env_reads(p.read_text())]
    assert not found, "read the environment through eventstrata.config instead:\n" + "\n".join(found)
    assert env_reads(CONFIG.read_text()), "config.py reads the environment (the scan sees it)"


def test_settings_are_built_only_by_from_env() -> None:
    found = [f"{p.relative_to(SRC)}:{line}" for p in _modules() if p != CONFIG
             for line in settings_built(p.read_text())]
    assert not found, "build settings with Settings.from_env:\n" + "\n".join(found)


def test_only_hotstore_touches_the_hot_tier_layout() -> None:
    from eventstrata.keys import TenantKeys

    assert set(HOT_KEYS) <= set(dir(TenantKeys))
    found = [f"{p.relative_to(SRC)}:{line}: {what}" for p in _modules()
             if HOTSTORE not in p.parents and p != KEYS for line, what in hot_layout_uses(p.read_text())]
    assert not found, "go through eventstrata.hotstore instead:\n" + "\n".join(found)
    assert hot_layout_uses((HOTSTORE / "tailentry.py").read_text()), "the scan sees the owner's own uses"


def test_the_query_engine_the_tail_and_the_archiver_use_the_hot_tier_through_its_interface() -> None:
    readers = [p for p in _modules() if any(r == p or r in p.parents for r in READERS)]
    assert len(readers) > 10 and READERS[-1] in readers
    found = [f"{p.relative_to(SRC)}:{line}: {what}" for p in readers
             for line, what in hot_reads_around_the_store(p.read_text())]
    assert not found, "read the hot tier through eventstrata.hotstore.interface.HotStore:\n" + "\n".join(found)


def test_module_names_are_unique() -> None:
    assert not shared_names(_modules())


def test_the_scans_flag_bad_samples() -> None:
    assert [w for _, w in env_reads("import os\nx = os.environ['A']")] == ["os.environ"]
    assert [w for _, w in env_reads("import os as o\nx = o.getenv('A')")] == ["o.getenv"]
    assert [w for _, w in env_reads("from os import environ, getcwd")] == ["from os import environ"]
    assert [w for _, w in env_reads("import os\nenv = {**os.environ}")] == ["os.environ"]
    assert [w for _, w in env_reads("f(envvar='EVENTSTRATA_X')")] == ["envvar="]
    assert not env_reads("import os\nos.getpid()\nenviron = {}\nenviron.get('x')")
    assert sorted(w for _, w in hot_layout_uses("await r.xread({k: '0-0'})\nlay.tenant(t).tail\ntk.gpos")) == [
        "gpos", "tail", "xread"]
    assert not hot_layout_uses("app.state.tail\nsettings.tail_maxlen\nr.get(k)\nrow.gpos")
    assert [w for _, w in hot_reads_around_the_store(
        "from eventstrata.hotstore.read import Row, scan\nfrom eventstrata.hotstore import handoff\n"
        "import eventstrata.hotstore.read\nfrom eventstrata.redisconn import RedisClient")] == [
        "eventstrata.hotstore.read.scan", "eventstrata.hotstore.handoff", "eventstrata.hotstore.read",
        "eventstrata.redisconn"]
    assert not hot_reads_around_the_store("from eventstrata.hotstore.interface import HotStore\n"
                                          "from eventstrata.hotstore.read import Sources")
    assert settings_built("s = Settings(topic='x')") == [1]
    assert settings_built("s = config.Settings()") == [1]
    assert not settings_built("s = Settings.from_env()\nt = replace(s, topic='x')")
    shared = shared_names([SRC / "a" / "hot.py", SRC / "b" / "hot.py", SRC / "cli" / "tail.py",
                           SRC / "api" / "tail.py", SRC / "x" / "__init__.py", SRC / "y" / "__init__.py"])
    assert shared == {"hot.py": ["a/hot.py", "b/hot.py"]}
