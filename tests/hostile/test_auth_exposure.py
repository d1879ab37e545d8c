"""Who can reach what on one machine: every port the in-process Spark driver opens listens on
loopback only, so another host on the network cannot talk to its unauthenticated RPC."""

from __future__ import annotations

import os
import socket
from pathlib import Path

LOOPBACK_V4 = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it (little-endian hex)
LOOPBACK_V6 = {"00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def _listening(pid: int) -> list[tuple[str, int]]:
    """(local address in /proc hex, port) of every TCP socket in LISTEN that pid holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                found.append((address, int(port, 16)))
    return found


def _jvm_children() -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and b"java" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def test_the_spark_driver_listens_on_loopback_only(spark) -> None:
    assert spark.range(3).count() == 3  # the block manager and RPC are up
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.driver.host") == "127.0.0.1"
    jvms = _jvm_children()
    assert jvms, "no JVM child of this test process: the Spark session runs elsewhere"
    sockets = [entry for pid in jvms for entry in _listening(pid)]
    driver_port = int(conf.get("spark.driver.port"))
    assert driver_port in {port for _, port in sockets}, sockets
    exposed = [
        (address, port)
        for address, port in sockets
        if address != LOOPBACK_V4 and address not in LOOPBACK_V6
    ]
    assert not exposed, f"ports reachable beyond loopback: {exposed} (host {socket.gethostname()})"
