"""Property-based fuzzing of the whole REST API (issue 11): schemathesis generates requests
from the OpenAPI schema and sends them to a real `kizuna serve` (gunicorn) on loopback with
an administrator's API key; any 5xx fails the run.

    .venv/bin/python tests/fuzz/api_schema.py [--max-examples 5] [--max-time 150] [--seed 1]

Bounded in time (`--max-time`, schemathesis' own budget) and run by `dev.py test` as its own
step. A throwaway SQLite data directory is made and removed; the server is stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"

SETUP = """
import json, django
django.setup()
from django.contrib.auth import get_user_model
from kizuna.iam.services import api_key_create
from kizuna.api.api import api
admin = get_user_model().objects.create_superuser("fuzz", "fuzz@example.invalid", "x")
issued = api_key_create(name="fuzz", role="admin", created_by=admin)
secret = issued.secret
open(r"{key}", "w").write(secret)
open(r"{schema}", "w").write(json.dumps(api.get_openapi_schema()))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (loopback)
            return
        except urllib.error.HTTPError:
            return  # the server answers (401 without a key)
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server did not answer at {url} within {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=5)
    parser.add_argument("--max-time", type=int, default=150, help="seconds for the fuzzing")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only", default="", help="a path regex: fuzz only these operations")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kizuna-fuzz-"))
    env = {
        **os.environ,
        "KIZUNA_DATA_DIR": str(work / "data"),
        "DJANGO_SETTINGS_MODULE": "kizuna.settings.base",
        "KIZUNA_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    env.pop("KIZUNA_TEST_DB", None)
    server: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run([BIN / "kizuna", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
        key_file, schema_file = work / "key", work / "openapi.json"
        setup = SETUP.format(key=key_file, schema=schema_file)
        subprocess.run([BIN / "python", "-c", setup], env=env, check=True, cwd=ROOT)
        port = free_port()
        log = open(work / "server.log", "wb")  # noqa: SIM115 (closed with the directory)
        server = subprocess.Popen(
            [BIN / "kizuna", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        wait_for(base + "/api/v1/customers")
        command = [
            str(BIN / "schemathesis"),
            "run",
            str(schema_file),
            "--url",
            base,
            "--header",
            f"Authorization: Bearer {key_file.read_text().strip()}",
            "--checks",
            "not_a_server_error",
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            str(args.max_examples),
            "--max-time",
            str(args.max_time),
            "--seed",
            str(args.seed),
            "--workers",
            str(args.workers),
            "--request-timeout",
            "30",
            "--generation-codec",
            "utf-8",
            "--suppress-health-check",
            "all",
            "--warnings",
            "off",
        ]
        if args.only:
            command += ["--include-path-regex", args.only]
        started = time.monotonic()
        result = subprocess.run(command, cwd=ROOT, check=False)
        took = time.monotonic() - started
        print(f"fuzz: schemathesis exited {result.returncode} after {took:.0f} s")
        if result.returncode != 0:
            log_text = (work / "server.log").read_text(errors="replace")
            errors = list(log_text.split("Internal Server Error: ")[1:])
            print("--- server errors: kizuna frames and the exception of each traceback ---")
            for block in errors[:10]:
                lines = block.splitlines()
                ours = [x.strip() for x in lines if 'File "' + str(ROOT / "kizuna") in x]
                last = next((x for x in lines if x and not x[0].isspace() and "Error" in x), "")
                print(lines[0], *ours[-3:], last, sep="\n   ")
        return result.returncode
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
