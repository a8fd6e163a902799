"""The example deployment in deploy/ runs as docs/deploy.md says.

Each test loads the shipped files (the env file, the launcher, the systemd
unit, the nginx site), fills in only what an operator must (database URL,
pepper, data folder, ports), and runs them: several processes on one
PostgreSQL database, migrated once, sharing keys and limits; SIGTERM stopping
them cleanly; nginx in front, passing the client address through and keeping
every request answered while the processes restart one at a time.
"""

from __future__ import annotations

import asyncio
import configparser
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from agentmark_gateway.cli.serve import GRACEFUL_SHUTDOWN_SECONDS
from tests.clock import wait_for_a_window_with
from tests.conftest import PEPPER, _pg_url, pg_database
from tests.resilience.databases import alembic_versions
from tests.resilience.gateways import (
    OWNER_EMAIL,
    OWNER_PASSWORD,
    Admin,
    GatewayProcess,
    add_owner,
    key_headers,
)
from tests.resilience.probes import PROBE_PARAMS, PROBE_PATH
from tests.resilience.traffic import (
    SPANS_PER_BATCH,
    TEMPLATE_PATH,
    batch,
    half_written,
    new_marker,
    publish_template,
    stored_per_batch_postgres,
)
from tests.servers import free_port

pytestmark = pytest.mark.slow

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENV_FILE = DEPLOY / "gateway.env"
LAUNCHER = DEPLOY / "run-gateways"
UNIT = DEPLOY / "systemd" / "agentmark-gateway@.service"
NGINX_SITE = DEPLOY / "nginx" / "agentmark-gateway.conf"
GATEWAY_BIN = Path(sys.executable).parent / "agentmark-gateway"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (no quotes, no expansion)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def filled_env_file(database_url: str, tmp_path: Path) -> Path:
    """The shipped env file with what an operator fills in; every other line as shipped."""
    fill = {
        "AGENTMARK_DATABASE_URL": database_url,
        "AGENTMARK_KEY_PEPPER": PEPPER,
        "AGENTMARK_DATA_DIR": str(tmp_path / "data"),
    }
    lines = []
    for line in ENV_FILE.read_text().splitlines():
        name = line.partition("=")[0].strip()
        lines.append(f"{name}={fill[name]}" if name in fill and "=" in line else line)
    path = tmp_path / "gateway.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def two_free_ports_in_a_row() -> int:
    """A port p with p and p + 1 both free (the launcher uses consecutive ports)."""
    for _ in range(50):
        first = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", first + 1))
            except OSError:
                continue
        return first
    raise RuntimeError("no two free ports in a row")


def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"not healthy in time:\n{log.read_text()}")


def probe(base: str, key: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{base}{PROBE_PATH}", params=PROBE_PARAMS, headers=key_headers(key))


def test_processes_started_together_on_an_empty_database_migrate_once_and_all_serve(
    empty_pg_url, tmp_path
):
    processes = [GatewayProcess(empty_pg_url, tmp_path / f"gw{i}") for i in range(3)]
    try:
        for process in processes:
            process.wait_ready()
    finally:
        for process in processes:
            process.stop()
    assert len(alembic_versions(empty_pg_url)) == 1


def test_the_launcher_with_the_example_env_file_runs_one_deployment_and_stops_cleanly(
    empty_pg_url, tmp_path
):
    env_file = filled_env_file(empty_pg_url, tmp_path)
    first = two_free_ports_in_a_row()
    bases = [f"http://127.0.0.1:{first}", f"http://127.0.0.1:{first + 1}"]
    log = tmp_path / "launcher.log"
    with log.open("wb") as out:
        launcher = subprocess.Popen(
            [str(LAUNCHER), str(env_file), str(first), "2"],
            env={**os.environ, "AGENTMARK_GATEWAY_BIN": str(GATEWAY_BIN)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for base in bases:
            wait_healthy(base, launcher, log)
        add_owner(empty_pg_url)
        admin = Admin.sign_in(bases[0])
        app_id = admin.create_app()
        key = admin.create_key(app_id, role="sdk")
        # A key made through one process works on the other (same database and
        # pepper), under the env file's per-key limit, counted across both
        # within one rate-limit window.
        wait_for_a_window_with(seconds_left=10)
        answers = [probe(bases[0], key), probe(bases[0], key), probe(bases[1], key)]
        time.sleep(0.6)  # a few rate-limit syncs (every 0.2 s)
        answers.append(probe(bases[1], key))
        launcher.send_signal(signal.SIGTERM)
        exit_code = launcher.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    output = log.read_text()

    assert [a.status_code for a in answers] == [404] * 4
    limit = read_env_file(ENV_FILE)["AGENTMARK_RATE_LIMIT_PER_KEY"]
    assert {a.headers["X-RateLimit-Limit"] for a in answers} == {limit}
    # Once synced, the second process counts the first one's requests too.
    assert answers[3].headers["X-RateLimit-Remaining"] == str(int(limit) - 4)
    assert len(alembic_versions(empty_pg_url)) == 1
    assert exit_code == 0, output
    assert output.count("Application shutdown complete.") == 2, output
    assert "Traceback" not in output, output
    for base in bases:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/health")


FAKE_GATEWAY = """#!/usr/bin/env bash
# Stands in for agentmark-gateway: "db upgrade" succeeds, "serve" runs until TERM.
[ "$1" = db ] && exit 0
echo "$$" >> "$FAKE_PIDS"
trap 'exit 0' TERM
while true; do sleep 0.05; done
"""


def test_the_launcher_stops_the_other_processes_and_exits_1_when_one_dies(tmp_path):
    fake = tmp_path / "agentmark-gateway"
    fake.write_text(FAKE_GATEWAY)
    fake.chmod(0o755)
    pids_file = tmp_path / "pids"
    env_file = filled_env_file("postgresql://unused@127.0.0.1/unused", tmp_path)
    launcher = subprocess.Popen(
        [str(LAUNCHER), str(env_file), "9418", "2"],
        env={**os.environ, "AGENTMARK_GATEWAY_BIN": str(fake), "FAKE_PIDS": str(pids_file)},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while not (pids_file.exists() and len(pids_file.read_text().split()) == 2):
            assert time.monotonic() < deadline, "the launcher did not start two processes"
            time.sleep(0.05)
        first, second = (int(pid) for pid in pids_file.read_text().split())
        os.kill(first, signal.SIGKILL)
        exit_code = launcher.wait(timeout=10)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert exit_code == 1
    assert launcher.stderr is not None and b"ended on its own" in launcher.stderr.read()
    alive = Path(f"/proc/{second}").exists()
    if alive:
        os.kill(second, signal.SIGKILL)
    assert not alive, "the other process was left running"


def children_of(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc/*/stat)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def test_serve_with_two_workers_serves_one_port_from_two_processes_and_stops_cleanly(
    pg_url, tmp_path
):
    env = read_env_file(filled_env_file(pg_url, tmp_path))
    add_owner(pg_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "workers.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(GATEWAY_BIN), "serve", "--port", str(port), "--workers", "2"],
            env={"PATH": os.environ["PATH"], **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(base, process, log)
        workers = [
            pid
            for pid in children_of(process.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        admin = Admin.sign_in(base)
        key = admin.create_key(admin.create_app(), role="sdk")
        answers = [probe(base, key).status_code for _ in range(20)]
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()

    assert len(workers) == 2, output
    assert answers == [404] * 20
    assert exit_code in (0, -signal.SIGTERM), output
    assert output.count("Application shutdown complete.") == 2, output
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_the_systemd_unit_verifies_and_its_command_stops_cleanly_within_its_timeout(
    pg_url, tmp_path
):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the unit file was not checked")
    env_file = filled_env_file(pg_url, tmp_path)
    # The shipped unit with this machine's paths (verify checks the program exists).
    local = tmp_path / UNIT.name
    local.write_text(
        UNIT.read_text()
        .replace("/opt/agentmark-gateway/bin/agentmark-gateway", str(GATEWAY_BIN))
        .replace("/etc/agentmark-gateway/gateway.env", str(env_file))
    )
    port = free_port()
    instance = local.with_name(local.name.replace("@", f"@{port}"))
    verify = subprocess.run(
        [analyze, "verify", "--man=no", str(instance)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(local.read_text())
    service = unit["Service"]
    assert service["KillSignal"] == "SIGTERM"
    stop_timeout = int(service["TimeoutStopSec"])
    assert stop_timeout > GRACEFUL_SHUTDOWN_SECONDS  # systemd never kills a draining process
    # Run the unit's command as systemd would: its environment, %i the port.
    command = service["ExecStart"].replace("%i", str(port)).split()
    log = tmp_path / "unit.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env={"PATH": os.environ["PATH"], **read_env_file(env_file)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log)
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=stop_timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # systemd counts an exit by SIGTERM after a stop request as a clean stop.
    assert exit_code in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete." in log.read_text()


# -- nginx in front -----------------------------------------------------------


@dataclass
class Stack:
    """Two gateways started with the example env file, and nginx with the example site."""

    database_url: str
    env: dict[str, str]
    data_dir: Path
    ports: list[int]
    front: str  # nginx over TLS, as clients reach it
    plain: str  # nginx's port 80, which only redirects
    gateways: list[GatewayProcess | None] = field(default_factory=lambda: [None, None])

    def start_gateway(self, index: int) -> GatewayProcess:
        process = GatewayProcess(
            self.database_url, self.data_dir / f"gw{index}", self.env, port=self.ports[index]
        )
        process.wait_ready()
        self.gateways[index] = process
        return process


def _self_signed_certificate(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that clients of this test trust (SSL_CERT_FILE)."""
    certificate, key = tmp / "gateway.crt", tmp / "gateway.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(certificate)),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key


def _nginx_config(tmp: Path, ports: list[int], plain_port: int, tls_port: int) -> Path:
    certificate, key = _self_signed_certificate(tmp)
    site = (
        NGINX_SITE.read_text()
        .replace("127.0.0.1:9418", f"127.0.0.1:{ports[0]}")
        .replace("127.0.0.1:9419", f"127.0.0.1:{ports[1]}")
        .replace("listen 80;", f"listen 127.0.0.1:{plain_port};")
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;")
        .replace("/etc/nginx/tls/agentmark-gateway.crt", str(certificate))
        .replace("/etc/nginx/tls/agentmark-gateway.key", str(key))
    )
    (tmp / "site.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp / "nginx.conf"
    # A harness around the shipped site: one process in the foreground, files in tmp.
    main.write_text(
        f"""daemon off;
master_process off;
pid {tmp / "nginx.pid"};
error_log {tmp / "error.log"} warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
{temp_paths}
    include {tmp / "site.conf"};
}}
"""
    )
    return main


@pytest.fixture(scope="module")
def stack(pg_template, tmp_path_factory) -> Iterator[Stack]:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light); the site was not run")
    tmp = tmp_path_factory.mktemp("nginx")
    with pg_database("agw", template=pg_template) as name:
        url = _pg_url(name)
        add_owner(url)
        env = read_env_file(filled_env_file(url, tmp))
        env["AGENTMARK_LOG_LEVEL"] = "warning"
        ports = [free_port(), free_port()]
        plain_port, tls_port = free_port(), free_port()
        config = _nginx_config(tmp, ports, plain_port, tls_port)
        check = subprocess.run([nginx, "-t", "-c", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        front, plain = f"https://127.0.0.1:{tls_port}", f"http://127.0.0.1:{plain_port}"
        stack = Stack(url, env, tmp, ports, front, plain)
        proxy = subprocess.Popen(
            [nginx, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        trust = pytest.MonkeyPatch()
        trust.setenv("SSL_CERT_FILE", str(tmp / "gateway.crt"))
        try:
            for index in range(2):
                stack.start_gateway(index)
            yield stack
        finally:
            trust.undo()
            proxy.terminate()
            proxy.wait(timeout=10)
            for process in stack.gateways:
                if process is not None:
                    process.stop()


def test_behind_nginx_key_allowlists_see_the_real_client_address_and_not_a_forged_one(stack):
    admin = Admin.sign_in(stack.front)
    app_id = admin.create_app()
    here = admin.create_key(app_id, role="sdk", allowed_cidrs=["127.0.0.2/32"])
    elsewhere = admin.create_key(app_id, role="sdk", allowed_cidrs=["203.0.113.0/24"])
    forged = {"X-Forwarded-For": "203.0.113.9"}
    # The test's client connects from 127.0.0.2, which is not a trusted proxy.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport) as client:

        def status(base: str, key: dict[str, str], extra: dict[str, str] | None = None) -> int:
            headers = {**key_headers(key), **(extra or {})}
            return client.get(
                f"{base}{PROBE_PATH}", params=PROBE_PARAMS, headers=headers
            ).status_code

        direct = f"http://127.0.0.1:{stack.ports[0]}"
        assert status(stack.front, here) == 404  # nginx names 127.0.0.2; the gateway believes it
        assert status(stack.front, elsewhere, forged) == 401  # left of nginx's entry: not believed
        assert status(direct, here) == 404  # straight to a process, the peer is the client
        assert status(direct, elsewhere, forged) == 401  # an untrusted peer's header is ignored


def test_behind_nginx_over_tls_a_sign_in_sets_secure_cookies_and_hsts(stack):
    redirected = httpx.get(f"{stack.plain}/login", follow_redirects=False)
    assert redirected.status_code == 301
    assert redirected.headers["location"].startswith("https://")
    with httpx.Client(base_url=stack.front) as browser:
        form = browser.get("/login")
        assert form.headers.get_list("strict-transport-security") == ["max-age=31536000"]
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form.text)
        assert token is not None
        signed_in = browser.post(
            "/login",
            data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "csrf_token": token[1]},
            follow_redirects=False,
        )
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers.get_list("strict-transport-security") == ["max-age=31536000"]
    cookies = [*form.headers.get_list("set-cookie"), *signed_in.headers.get_list("set-cookie")]
    given = [c for c in cookies if "Max-Age=0" not in c]  # not the ones being deleted
    names = {c.partition("=")[0] for c in given}
    assert names == {"agentmark_presession", "agentmark_session"}, cookies
    assert all("; Secure" in c for c in given), cookies


async def _traffic(stack: Stack, sdk: dict[str, str], stop: asyncio.Event, tally: dict) -> None:
    json_headers = {**sdk, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=stack.front, timeout=30) as client:

        async def ingest() -> None:
            while not stop.is_set():
                marker = new_marker()
                response = await client.post(
                    "/v1/traces", content=batch(marker), headers=json_headers
                )
                tally["statuses"][("ingest", response.status_code)] += 1
                if response.status_code == 200:
                    tally["acknowledged"].append(marker)

        async def score() -> None:
            for n in itertools.count():
                if stop.is_set():
                    return
                response = await client.post(
                    "/v1/scores",
                    json={"resourceId": f"trace-{n}", "name": "accuracy", "score": 1},
                    headers=sdk,
                )
                tally["statuses"][("score", response.status_code)] += 1
                await asyncio.sleep(0.01)

        async def template() -> None:
            while not stop.is_set():
                response = await client.get(
                    "/v1/templates", params={"path": TEMPLATE_PATH}, headers=sdk
                )
                tally["statuses"][("template", response.status_code)] += 1
                await asyncio.sleep(0.01)

        await asyncio.gather(ingest(), ingest(), score(), template())


async def _rolling_restart(stack: Stack, sdk: dict[str, str]) -> dict:
    tally: dict = {"statuses": Counter(), "acknowledged": []}
    stop = asyncio.Event()
    traffic = asyncio.create_task(_traffic(stack, sdk, stop, tally))
    await asyncio.sleep(1.5)
    for index in range(2):
        old = stack.gateways[index]
        assert old is not None
        old.sigterm()
        await asyncio.to_thread(old.process.wait, 30)
        await asyncio.to_thread(stack.start_gateway, index)
        await asyncio.sleep(1.0)
    stop.set()
    await traffic
    return tally


# Timing-dependent on a shared 2-core machine: a run where other load delays the
# restart or the signal proves nothing either way, so it is tried again.
@pytest.mark.flaky(reruns=2)
def test_behind_nginx_restarting_the_processes_one_at_a_time_fails_no_request(stack):
    admin = Admin.sign_in(stack.front)
    app_id = admin.create_app()
    publish_template(stack.front, key_headers(admin.create_key(app_id, role="full-access")))
    # Its own limit, above the env file's default: this test sends more than that.
    sdk = key_headers(admin.create_key(app_id, role="sdk", rate_limit_per_minute=1_000_000))

    tally = asyncio.run(_rolling_restart(stack, sdk))

    expected = {("ingest", 200), ("score", 201), ("template", 200)}
    assert set(tally["statuses"]) == expected, tally["statuses"]
    stored = stored_per_batch_postgres(stack.database_url, app_id)
    assert half_written(stored) == {}
    assert all(stored.get(m) == SPANS_PER_BATCH for m in tally["acknowledged"])
    print(f"\nthrough a rolling restart behind nginx: {dict(tally['statuses'])}")
