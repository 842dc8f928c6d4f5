"""``mock-portal serve --tls``: the env lines it prints take a plain requests client to the portal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.conftest import REPO_ROOT

CLIENT = """
import json, sys, requests
r = requests.get(sys.argv[1] + "app.info.json", params={"auth": sys.argv[2]}, timeout=30)
print(json.dumps([r.status_code, r.json()]))
"""


@pytest.mark.slow
def test_serve_tls_prints_the_env_a_handler_needs() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_portal", "serve", "--port", "0", "--portal", "p1.bitrix24.com", "--tls"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: dict[str, str] = {}
        env: dict[str, str] = {}
        for line in process.stdout:
            if line.startswith("serving"):
                break
            key, _, value = line.partition(" ")
            if key == "env":
                name, _, setting = value.strip().partition("=")
                env[name] = setting
            else:
                lines[key] = value.strip()
        endpoint = lines["portal"].split()[1]
        assert endpoint == "https://p1.bitrix24.com/rest/"
        assert {"HTTPS_PROXY", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"} <= set(env)
        app = httpx.post(lines["url"] + "/_portal/apps", json={}, timeout=10).json()
        out = subprocess.run(
            [sys.executable, "-c", CLIENT, endpoint, app["access_token"]],
            env={"PATH": os.environ.get("PATH", ""), **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        status, body = json.loads(out.stdout)
        assert status == 200
        assert body["result"]["INSTALLED"] is True
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert not os.path.exists(env["SSL_CERT_FILE"])  # the CA files go with the front
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
