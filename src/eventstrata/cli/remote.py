"""The remote mode shared by the commands that can talk to an API instead of the local stack.

A command is remote when it is given an API key (``--key`` or ``EVENTSTRATA_API_KEY``); it then
asks the API at ``--api`` (or ``EVENTSTRATA_API_URL``) through ``eventstrata.client``, as the
key's tenant. Without a key it works on the local stack's servers, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
import typer

from eventstrata.client import ApiError, Client
from eventstrata.config import api_key, api_url

ApiOpt = Annotated[str | None, typer.Option(help="API base URL (remote mode; default EVENTSTRATA_API_URL).")]
KeyOpt = Annotated[str | None, typer.Option(help="API key: ask a remote API (default EVENTSTRATA_API_KEY).")]


def remote_key(key: str | None) -> str | None:
    """The key that makes a command remote: ``key``, else ``EVENTSTRATA_API_KEY``, else None."""
    return key or api_key()


@contextmanager
def remote_client(api: str | None, key: str) -> Iterator[Client]:
    """A ``Client`` of ``api`` (default ``EVENTSTRATA_API_URL``) with ``key``, closed at exit.
    Turns the API's refusals into exit code 2 for a 400 and 1 otherwise, and an unreachable API
    into exit code 1, each with a one-line message on stderr."""
    url = api or api_url()
    try:
        with Client(url, key) as client:
            yield client
    except ApiError as exc:
        typer.echo(f"error: {exc.message} ({exc.status} {exc.code})", err=True)
        raise typer.Exit(2 if exc.status == 400 else 1) from None
    except httpx.TransportError as exc:
        typer.echo(f"error: cannot reach {url}: {exc}", err=True)
        raise typer.Exit(1) from None


def local_tenant(tenant: str | None) -> str:
    """``--tenant`` of a command in local mode; exits 2 with a message when it is missing."""
    if tenant is None:
        typer.echo("error: --tenant is required without an API key (--key / EVENTSTRATA_API_KEY)", err=True)
        raise typer.Exit(2)
    return tenant


def no_tenant_remotely(tenant: str | None) -> None:
    """Exits 2 when ``--tenant`` is given in remote mode: the tenant is the key's."""
    if tenant is not None:
        typer.echo("error: --tenant is for the local stack; in remote mode the tenant is the key's", err=True)
        raise typer.Exit(2)
