"""The hot read script's arguments and its packaged source (pure: no Redis; the script itself
runs in tests/integration)."""

from __future__ import annotations

from eventstrata.hotstore.read import PAGE_SCRIPT, READ_SCRIPT, read_args
from eventstrata.keys import KeyLayout


def test_read_args_are_base_window_key_then_time_id_pairs() -> None:
    tk = KeyLayout("es").tenant("acme")
    args = read_args(tk, [(1_733_000_000_123, "a:{b}"), (5, "")], window_ms=3_600_000,
                     then_get=tk.watermark)
    assert args == ["es:{acme}", 3_600_000, "es:{acme}:wm", 1_733_000_000_123, "a:{b}", 5, ""]
    assert read_args(tk, [], window_ms=60_000, then_get="") == ["es:{acme}", 60_000, ""]
    # an unknown time (get by id) is sent as '' for the script to take from ids
    assert read_args(tk, [(None, "x")], window_ms=60_000, then_get="")[3:] == ["", "x"]


def test_read_scripts_are_declared_read_only() -> None:
    assert READ_SCRIPT.startswith(b"#!lua flags=no-writes\n")
    assert PAGE_SCRIPT.startswith(b"#!lua flags=no-writes\n")
    # the body key is built exactly like keys.TenantKeys.bodies: "<base>:b:<window start>"
    assert b"base .. ':b:'" in READ_SCRIPT
