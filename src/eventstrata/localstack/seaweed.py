"""A real S3-compatible server for the tests and the local stack: SeaweedFS (``weed``).

``weed`` is built once from the Go module proxy (``go mod download`` of the pinned module, then
``go build ./weed`` inside it: ``go install`` refuses the module because its go.mod has a
replace directive) and cached as ``<cache>/bin/weed-<version>``. Building needs Go and takes
~5 minutes of CPU and ~230 MB of disk, once per machine.

``S3Server`` runs ``weed server`` (master, volume, filer and S3 gateway in one process) on
free loopback ports with one identity (an access key and secret key made for it) allowed everything, and
creates the buckets it is asked for. Data lives in its state dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from eventstrata.config import cache_root, child_env
from eventstrata.localstack.ports import free_port, port_is_free
from eventstrata.localstack.proc import ProcRef, StackError, spawn, stop, tail_text

WEED_MODULE = "github.com/seaweedfs/seaweedfs"
WEED_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
REGION = "us-east-1"


def weed_path() -> Path:
    """Where the built ``weed`` binary is cached."""
    return cache_root() / "bin" / f"weed-{WEED_VERSION.rsplit('-', 1)[-1]}"


def ensure_weed(*, build: bool = True) -> Path:
    """The cached ``weed`` binary, built with Go when missing. Blocks (minutes when it builds).
    Raises ``StackError`` when Go is missing or the build fails (with its output)."""
    path = weed_path()
    if path.is_file() and os.access(path, os.X_OK):
        return path
    go = shutil.which("go")
    if not build or go is None:
        raise StackError("SeaweedFS (weed) is not built and Go is not installed: install Go "
                         "(https://go.dev/dl/) and run `make deps`")
    env = child_env({"GOFLAGS": "-mod=mod"})
    got = subprocess.run([go, "mod", "download", "-json", f"{WEED_MODULE}@{WEED_VERSION}"],
                         env=env, capture_output=True, text=True, check=False)
    if got.returncode != 0:
        raise StackError(f"go mod download of {WEED_MODULE}@{WEED_VERSION} failed: {got.stdout[-1500:]}"
                         f"{got.stderr[-1500:]}")
    src = Path(json.loads(got.stdout)["Dir"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    built = subprocess.run([go, "build", "-o", str(tmp), "./weed"], cwd=src, env=env,
                           capture_output=True, text=True, check=False)
    if built.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise StackError(f"go build of weed failed (exit {built.returncode}): {built.stderr[-3000:]}")
    tmp.replace(path)
    return path


def _grpc_pair() -> int:
    """A free port P <= 55535 whose P+10000 is free too (weed's default gRPC port)."""
    for _ in range(200):
        port = free_port()
        if port <= 55535 and port_is_free(port + 10000):
            return port
    raise OSError("no free port pair for SeaweedFS")


def render_s3_identities(access_key: str, secret_key: str) -> str:
    """The S3 gateway's identities file: one identity allowed every action (pure)."""
    return json.dumps({"identities": [{
        "name": "eventstrata", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]})


class S3Server:
    """One ``weed server`` with its S3 gateway, owned by this process; data under ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self.access_key = f"es-{secrets.token_hex(6)}"
        self.secret_key = secrets.token_urlsafe(24)  # per server: nothing to leak, nothing to guess
        self.s3_port = free_port()
        self.log_file = self.state_dir / "weed.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.ref: ProcRef | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self) -> None:
        """Build ``weed`` if needed, then start it. Does not wait."""
        binary = ensure_weed()
        data = self.state_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "s3.json"
        config.write_text(render_s3_identities(self.access_key, self.secret_key))
        master, volume, filer = _grpc_pair(), _grpc_pair(), _grpc_pair()
        argv = [str(binary), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={master}", f"-master.port.grpc={master + 10000}", "-master.telemetry=false",
                "-master.volumeSizeLimitMB=64", f"-master.dir={data}",
                f"-volume.port={volume}", f"-volume.port.grpc={volume + 10000}", "-volume.max=0",
                f"-filer.port={filer}", f"-filer.port.grpc={filer + 10000}",
                "-s3", f"-s3.port={self.s3_port}", f"-s3.port.grpc={free_port()}", f"-s3.config={config}",
                "-s3.port.iceberg=0", "-s3.port.lance=0"]
        self.popen, self.ref = spawn("seaweedfs", argv, log=self.log_file, cwd=self.state_dir)

    def wait_ready(self, *, buckets: tuple[str, ...] = (), timeout: float = 60.0) -> None:
        """Block until the S3 gateway has created ``buckets`` and written to each once (or
        answers, with none). Raises ``StackError`` on timeout or when the process exits."""
        import boto3
        import botocore.exceptions

        client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key)
        deadline = time.monotonic() + timeout
        pending = list(buckets)
        last = ""
        while True:
            if self.popen is not None and self.popen.poll() is not None:
                raise StackError(f"weed exited with code {self.popen.returncode} while starting; "
                                 f"last lines of {self.log_file}:\n{tail_text(self.log_file)}")
            try:
                client.list_buckets()
                while pending:
                    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                        client.create_bucket(Bucket=pending[0])
                    # the first write to a bucket allocates its volumes (seconds): do it now
                    client.put_object(Bucket=pending[0], Key=".ready", Body=b"")
                    client.delete_object(Bucket=pending[0], Key=".ready")
                    pending.pop(0)
                return
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise StackError(f"SeaweedFS S3 at {self.endpoint} not ready within {timeout:.0f} s ({last})")
            time.sleep(0.3)

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 5 s. Blocks."""
        if self.ref is not None:
            stop(self.ref, timeout=5.0, popen=self.popen)
