"""Every command's --help is complete, and bad usage fails clearly with a non-zero exit."""

from __future__ import annotations

from typing import Any

import typer.main
from typer.testing import CliRunner

from eventstrata.cli import app

runner = CliRunner()
ROOT = typer.main.get_command(app)


def _paths(cmd: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            out += _paths(sub, (*prefix, name))
    return out


def test_the_cli_has_the_commands_the_spec_names() -> None:
    paths = {" ".join(p) for p in _paths(ROOT)}
    for required in ("dev up", "dev down", "dev status", "keys create", "keys list", "keys revoke",
                     "archive run-once", "archive status", "produce", "query", "tail", "dlq list",
                     "dlq show", "dlq replay", "worker ingest", "worker archive", "serve"):
        assert required in paths, required


def test_every_command_has_help_text() -> None:
    for path in _paths(ROOT):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
        if path:
            cmd: Any = ROOT
            for word in path:
                cmd = cmd.commands[word]
            assert (cmd.help or cmd.short_help or "").strip(), f"no help text: {' '.join(path)}"


def test_bad_flags_and_unknown_commands_fail_with_a_message() -> None:
    for argv in (["no-such-command"], ["dev", "up", "--no-such-flag"], ["query"], ["produce", "--format", "x", "-"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, (argv, result.exit_code, result.output)
        assert "Error" in result.output or "error" in result.output, (argv, result.output)


def test_tool_commands_use_the_running_dev_stack_unless_told_otherwise(tmp_path: Any) -> None:
    import json

    from eventstrata.cli import use_running_stack

    (tmp_path / "stack.json").write_text(json.dumps({"info": {"kafka": "127.0.0.1:9", "redis": "redis://r"}}))
    env = {"EVENTSTRATA_STATE_DIR": str(tmp_path)}
    use_running_stack(["produce", "-"], env)
    assert env["EVENTSTRATA_KAFKA_BOOTSTRAP"] == "127.0.0.1:9" and env["EVENTSTRATA_REDIS_URL"] == "redis://r"
    explicit = {"EVENTSTRATA_STATE_DIR": str(tmp_path), "EVENTSTRATA_REDIS_URL": "redis://mine"}
    use_running_stack(["query", "--tenant", "t"], explicit)
    assert explicit["EVENTSTRATA_REDIS_URL"] == "redis://mine"
    for argv in (["dev", "up"], ["worker", "ingest"], ["serve"], []):
        untouched = {"EVENTSTRATA_STATE_DIR": str(tmp_path)}
        use_running_stack(argv, untouched)
        assert set(untouched) == {"EVENTSTRATA_STATE_DIR"}, argv
    missing = {"EVENTSTRATA_STATE_DIR": str(tmp_path / "nope")}
    use_running_stack(["produce", "-"], missing)
    assert set(missing) == {"EVENTSTRATA_STATE_DIR"}


def test_shell_completion_is_on() -> None:
    """``eventstrata --show-completion`` prints the script for the current shell
    (``--install-completion`` installs it); the script asks the CLI itself, which completes
    commands and subcommands."""
    result = runner.invoke(app, ["--show-completion"], env={"SHELL": "/bin/bash"})
    assert result.exit_code == 0, result.output
    assert "complete -o default -F" in result.output and "_EVENTSTRATA_COMPLETE" in result.output
    env = {"_EVENTSTRATA_COMPLETE": "complete_bash", "COMP_WORDS": "eventstrata dlq ", "COMP_CWORD": "2"}
    done = runner.invoke(app, [], env=env, prog_name="eventstrata")
    assert done.output.split() == ["list", "show", "replay"], done.output
    env = {**env, "COMP_WORDS": "eventstrata co", "COMP_CWORD": "1"}
    assert runner.invoke(app, [], env=env, prog_name="eventstrata").output.split() == ["count"]
