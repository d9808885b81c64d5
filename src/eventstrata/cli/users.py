"""``eventstrata users erase USER``: erase a user's events from both tiers (``erasure``).

Local mode (``--tenant``) records the tombstone and the job on the stack's Redis and runs the
job at once (it waits for the tenant's archive lease while an archive pass runs). Remote mode
(an admin key: ``--key`` / ``EVENTSTRATA_API_KEY``) asks ``DELETE /v1/users/{id}`` and follows
``GET /v1/erasures/{id}`` until the job is done (``--no-wait``: print the job and return).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import typer

from eventstrata import erasure
from eventstrata.archive.destination import open_destination
from eventstrata.cli.remote import ApiOpt, KeyOpt, local_tenant, no_tenant_remotely, remote_client, remote_key
from eventstrata.config import ConfigError, Settings
from eventstrata.redisconn import connect_redis

app = typer.Typer(help="Erase a user's events (privacy requests).", no_args_is_help=True)
POLL_S = 0.5


def _print(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(job))
        return
    typer.echo(f"erasure {job['id']}: {job['status']}  hot={job['hot_removed']} cold={job['cold_removed']} "
               f"files={job['files_rewritten']}" + (f"  error: {job['error']}" if job["error"] else ""))


def _local(tenant: str, user_id: str) -> dict[str, Any]:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    async def go() -> dict[str, Any]:
        redis = connect_redis(settings)
        try:
            layout = settings.layout()
            job = await erasure.request(redis, layout, tenant, user_id, by="cli")
            done = await erasure.run(redis, layout, open_destination(settings), tenant, job.id,
                                     window_ms=settings.window_ms, lease_ms=settings.archive_lease_ms)
            return (done or job).to_dict()
        finally:
            await redis.aclose()

    return asyncio.run(go())


@app.command()
def erase(
    user_id: Annotated[str, typer.Argument(help="The user id whose events to erase.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant (local mode; remote: the admin key's).")] = None,
    wait: Annotated[bool, typer.Option(help="Remote: follow the job until it ends.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
    api: ApiOpt = None, key: KeyOpt = None,
) -> None:
    """Erase every event of USER from the hot tier and the archive, and drop the user's older
    events if they are ingested again. Exit codes: 0 done (or started, with --no-wait), 1 the
    job failed or the API refused, 2 bad arguments."""
    admin_key = remote_key(key)
    if admin_key:
        no_tenant_remotely(tenant)
        with remote_client(api, admin_key) as es:
            job = es.erase_user(user_id)
            while wait and job.status not in ("done", "failed"):
                time.sleep(POLL_S)
                job = es.erasure(job.id)
        out = {f: getattr(job, f) for f in job.__dataclass_fields__}
    else:
        out = _local(local_tenant(tenant), user_id)
    _print(out, as_json)
    if out["status"] == "failed":
        raise typer.Exit(1)
