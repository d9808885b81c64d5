"""The generated docs are current, and the deploy manifests only use what the code knows."""

from __future__ import annotations

from pathlib import Path

import yaml

from eventstrata.config import FIELDS
from eventstrata.docgen import render_into

ROOT = Path(__file__).resolve().parents[2]
KNOWN_ENV = {f.env for f in FIELDS}


def test_operations_config_reference_is_current() -> None:
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    assert render_into(text) == text, "run: python -m eventstrata.docgen"


def _manifests() -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    for path in sorted((ROOT / "deploy").rglob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def _env_names(node: object) -> set[str]:
    """Every EVENTSTRATA_* name set anywhere in a manifest (env lists, env maps, ConfigMap data)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("EVENTSTRATA_"):
                found.add(key)
            if key == "name" and isinstance(value, str) and value.startswith("EVENTSTRATA_"):
                found.add(value)
            found |= _env_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= _env_names(item)
    return found


def _commands(node: object) -> list[list[str]]:
    out: list[list[str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "command" and isinstance(value, list) and value and value[0] == "eventstrata":
                out.append([str(v) for v in value])
            else:
                out.extend(_commands(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_commands(item))
    return out


def test_manifests_parse_and_use_known_env_vars() -> None:
    docs = _manifests()
    kinds = {d.get("kind") for d in docs}
    assert {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"} <= kinds
    used = set().union(*(_env_names(d) for d in docs))
    assert used, "manifests set no EVENTSTRATA_* variables"
    assert used <= KNOWN_ENV, f"unknown variables: {sorted(used - KNOWN_ENV)}"


def test_manifest_commands_exist_in_the_cli() -> None:
    import typer.main

    from eventstrata.cli import app

    root = typer.main.get_command(app)
    commands = [c for d in _manifests() for c in _commands(d)]
    assert {tuple(c) for c in commands} >= {
        ("eventstrata", "serve"),
        ("eventstrata", "worker", "ingest"),
        ("eventstrata", "worker", "archive"),
    }
    for argv in commands:
        node = root
        words = argv[1:]
        while words and not words[0].startswith("-"):
            sub = getattr(node, "commands", {}).get(words[0])
            assert sub is not None, f"{' '.join(argv)}: no command {words[0]!r}"
            node, words = sub, words[1:]
        known = {o for p in getattr(node, "params", []) for o in getattr(p, "opts", [])}
        for word in words:
            if word.startswith("-"):
                assert word in known, f"{' '.join(argv)}: no option {word!r}"


def test_api_deployment_has_probes_and_resources() -> None:
    api = next(d for d in _manifests() if d.get("kind") == "Deployment" and "api" in str(d["metadata"]))
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]


def test_k8s_runs_without_shared_volumes_as_the_image_user_with_loop_liveness() -> None:
    docs = [d for d in _manifests() if "kind" in d]
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]  # the archive is on S3
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert str(config["EVENTSTRATA_ARCHIVE_URI"]).startswith("s3://")
    assert any(d["kind"] == "Secret" for d in docs) and any(d["kind"] == "Job" for d in docs)
    for d in docs:
        if d["kind"] not in ("Deployment", "Job"):
            continue
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["fsGroup"] == 10001 == pod["securityContext"]["runAsUser"], d["metadata"]
        container = pod["containers"][0]
        assert {"secretRef": {"name": "eventstrata-secrets"}} in container["envFrom"]
        if d["kind"] == "Deployment" and container["command"][:2] == ["eventstrata", "worker"]:
            # a worker's metrics thread answers even when its event loop is stuck: probe /healthz
            assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_compose_archive_on_s3_with_init_healthchecks_and_restarts() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"kafka", "redis", "seaweedfs", "init", "api", "ingest", "archiver"} <= set(services)
    assert services["init"]["command"][:2] == ["eventstrata", "init"]
    for name in ("api", "ingest", "archiver"):
        svc = services[name]
        assert svc["restart"] == "unless-stopped" and svc["healthcheck"]["test"], name
        assert svc["depends_on"]["init"] == {"condition": "service_completed_successfully"}, name
        assert svc["environment"]["EVENTSTRATA_ARCHIVE_URI"].startswith("s3://"), name
        assert svc["volumes"] == ["state:/var/lib/eventstrata"], name  # owned by the image's user
    assert "9100/healthz" in " ".join(services["ingest"]["healthcheck"]["test"])
    assert "chown eventstrata /var/lib/eventstrata" in (ROOT / "Dockerfile").read_text()


def test_compose_redis_has_the_layout_settings_of_the_launcher() -> None:
    from eventstrata.localstack.redis import CPU_SETTINGS, LAYOUT_SETTINGS

    command = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]["redis"]["command"]
    pairs = dict(zip(command[1::2], command[2::2], strict=True))
    settings = (*LAYOUT_SETTINGS, *CPU_SETTINGS)
    wanted = dict(zip(settings[::2], settings[1::2], strict=True))
    assert wanted.items() <= pairs.items(), (wanted, pairs)
    ops = (ROOT / "docs" / "OPERATIONS.md").read_text()
    for name, value in wanted.items():
        assert f"| `{name.removeprefix('--')}` | `{value}` |" in ops, name


def test_grafana_dashboard_only_uses_metrics_the_code_defines() -> None:
    import json
    import re

    dash = json.loads((ROOT / "deploy" / "grafana" / "eventstrata.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    names = {re.sub(r"_(bucket|count|sum|total)$", "", n) for e in exprs for n in re.findall(r"eventstrata_[a-z_]+", e)}
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "eventstrata").rglob("*.py"))
    missing = sorted(n for n in names if f'"{n}"' not in source and f'"{n}_total"' not in source)
    assert not missing, missing
    assert len(names) >= 15
