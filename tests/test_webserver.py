"""The Dagster UI's server loads the code location and serves the asset graph."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

from netflix_assets.settings import REPO_ROOT

QUERY = "{ assetNodes { assetKey { path } groupName } }"


def _asset_nodes(port: int) -> list[dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["data"]["assetNodes"]


def test_webserver_serves_the_asset_graph(tmp_path, free_tcp_port: int) -> None:
    port = free_tcp_port
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO_ROOT,
        env={**__import__("os").environ, "DAGSTER_HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        nodes: list[dict] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not nodes:
            try:
                nodes = _asset_nodes(port)
            except OSError:
                time.sleep(1)
        groups = {tuple(n["assetKey"]["path"]): n["groupName"] for n in nodes}
        assert groups.get(("catalog_schema",)) == "catalog", groups
        assert groups.get(("qoe_aggregates",)) == "streaming", groups
    finally:
        server.terminate()
        server.wait(timeout=30)
