#!/usr/bin/env python3
"""Set up kizuna from a fresh clone and run it.

    python3 dev.py demo     # virtualenv + install + `kizuna demo` (console with a demo business)
    python3 dev.py test     # virtualenv + system packages + lint, types, layers, deploy check,
                            # tests on SQLite and on a real PostgreSQL, a browser test, API fuzz

Needs only Python 3.11. `test` installs PostgreSQL, Redis and Chromium with apt-get when they are
missing (as root, or through sudo).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
APT_PACKAGES = {"pg_ctl": "postgresql", "chromium": "chromium", "redis-server": "redis-server"}


def say(message: str) -> None:
    print(f"\033[1;36m==> {message}\033[0m", flush=True)


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    printable = " ".join(str(c) for c in cmd)
    print(f"$ {printable}", flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        sys.exit(f"dev.py: `{printable}` failed with exit code {result.returncode}")


def ensure_python311() -> None:
    if sys.version_info[:2] == (3, 11):
        return
    other = shutil.which("python3.11")
    if other is None:
        sys.exit("dev.py: kizuna needs Python 3.11 (python3.11 was not found on PATH)")
    os.execv(other, [other, __file__, *sys.argv[1:]])


def ensure_venv(extras: str) -> None:
    """Create .venv and (re)install kizuna when pyproject.toml or the extras changed."""
    if not (BIN / "python").exists():
        say("creating virtualenv .venv")
        run(sys.executable, "-m", "venv", VENV)
        run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    stamp = VENV / f".kizuna-installed-{extras or 'base'}"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    say(f"installing kizuna{'[' + extras + ']' if extras else ''} into .venv")
    target = f".[{extras}]" if extras else "."
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", target)
    stamp.write_text(wanted)


def ensure_system_packages() -> None:
    missing = []
    if shutil.which("pg_ctl") is None and not list(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")
    ):
        missing.append(APT_PACKAGES["pg_ctl"])
    for command in ("chromium", "redis-server"):
        if shutil.which(command) is None:
            missing.append(APT_PACKAGES[command])
    if not missing:
        return
    say(f"installing {', '.join(missing)} with apt-get")
    sudo: list[str] = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(*sudo, "apt-get", "update", "-qq", env=env)
    run(*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env)


def demo(args: list[str]) -> None:
    ensure_venv("")
    say("starting the demo")
    os.execv(str(BIN / "kizuna"), [str(BIN / "kizuna"), "demo", *args])


def test(args: list[str]) -> None:
    started = time.monotonic()
    ensure_system_packages()
    ensure_venv("test")
    env = {**os.environ, "KIZUNA_DATA_DIR": str(ROOT / "test-artifacts" / "data")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    say("ruff (lint + format)")
    run(BIN / "ruff", "check", "kizuna", "tests", "bench", "dev.py", "conftest.py")
    run(BIN / "ruff", "format", "--check", "kizuna", "tests", "bench", "dev.py", "conftest.py")
    say("mypy")
    run(BIN / "mypy", "kizuna", env=env)
    say("import-linter (layers of shared/DESIGN.md)")
    run(BIN / "lint-imports", env=env)
    say("migrations are up to date")
    run(BIN / "kizuna", "makemigrations", "--check", "--dry-run", env=env)
    say("check --deploy on the production settings")
    deploy_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "kizuna.settings.production",
        "KIZUNA_SECRET_KEY": secrets.token_urlsafe(64),
        "KIZUNA_ALLOWED_HOSTS": "kizuna.example.com",
    }
    run(BIN / "kizuna", "check", "--deploy", "--fail-level", "WARNING", env=deploy_env)
    test_suites(args, env)
    say("API fuzz: schemathesis over the whole OpenAPI schema against a live server, no 5xx")
    run(BIN / "python", "tests/fuzz/api_schema.py", "--max-time", "150", env=env)
    say(f"all checks passed in {time.monotonic() - started:.0f} s")


def test_suites(args: list[str], env: dict[str, str]) -> None:
    """The SQLite suite (with the browser tests) and the PostgreSQL suite run side by side: each
    spends much of its time waiting on servers and worker processes, so two cores finish both in
    little more than the time of one. Each has its own data directory and temporary directory."""
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    pg_log_path = artifacts / "pytest-postgresql.log"
    pg_cmd = [
        str(BIN / "pytest"),
        "-m",
        "not browser",
        "--basetemp",
        str(artifacts / "tmp-pg"),
        "--durations=15",
        *args,
    ]
    pg_env = {**env, "KIZUNA_TEST_DB": "postgresql", "KIZUNA_DATA_DIR": str(artifacts / "data-pg")}
    say(f"tests on PostgreSQL (server started by pytest-postgresql), output in {pg_log_path}")
    print(f"$ {' '.join(pg_cmd)} &", flush=True)
    with pg_log_path.open("w") as pg_log:
        postgresql = subprocess.Popen(
            pg_cmd, cwd=ROOT, env=pg_env, stdout=pg_log, stderr=subprocess.STDOUT
        )
        say("tests on SQLite (with the browser tests), meanwhile")
        sqlite_cmd = [
            str(BIN / "pytest"),
            "--basetemp",
            str(artifacts / "tmp-sqlite"),
            "--durations=15",
            *args,
        ]
        print(f"$ {' '.join(sqlite_cmd)}", flush=True)
        sqlite_rc = subprocess.run(sqlite_cmd, cwd=ROOT, env=env, check=False).returncode
        if postgresql.poll() is None:
            say("SQLite suite done; waiting for the PostgreSQL suite")
        pg_rc = postgresql.wait()
    say(f"PostgreSQL suite output ({pg_log_path})")
    print(pg_log_path.read_text(errors="replace"), flush=True)
    failed = [name for name, rc in (("SQLite", sqlite_rc), ("PostgreSQL", pg_rc)) if rc != 0]
    if failed:
        sys.exit(f"dev.py: the {' and '.join(failed)} test suite failed")


def main() -> None:
    ensure_python311()
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test"}:
        sys.exit(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    {"demo": demo, "test": test}[command](args)


if __name__ == "__main__":
    main()
