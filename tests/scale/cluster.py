"""A real 3-master Redis Cluster for the tests: redis-server processes on free ports joined by
`redis-cli --cluster create`, started once per test process (or taken from RECENGINE_TEST_REDIS_CLUSTER_URL)."""

from __future__ import annotations

import atexit
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

MASTERS = 3
BUS_OFFSET = 10_000  # a node also listens on port + 10000 for the cluster bus


def cluster_port() -> int:
    """A port nobody listens on whose cluster-bus port (port + 10000, at most 65535) is free too."""
    for _ in range(200):
        port = random.randint(20_000, 55_000)
        if _free(port) and _free(port + BUS_OFFSET):
            return port
    raise AssertionError("no free port pair for a Redis Cluster node")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class LocalCluster:
    """Three cluster-enabled redis-server processes, no replicas, all 16384 slots assigned."""

    def __init__(self) -> None:
        self.ports = [cluster_port() for _ in range(MASTERS)]
        self.dir = Path(tempfile.mkdtemp(prefix="recengine-cluster-"))
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """Any node's URL (the client discovers the others)."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        """Start the nodes, create the cluster and wait until every node reports it ok."""
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            pytest.fail("redis-server and redis-cli are needed for the cluster tests: apt-get install redis-server")
        for port in self.ports:
            args = [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"]
            args += ["--cluster-config-file", f"nodes-{port}.conf", "--save", "", "--appendonly", "no"]
            args += ["--dir", str(self.dir)]
            self.processes.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in self.ports:
            _wait(lambda p=port: redis.Redis(port=p, socket_connect_timeout=0.5).ping(), "a cluster node to start")
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
        _wait(self._ok, "the cluster to report cluster_state:ok")

    def _ok(self) -> bool:
        return all(redis.Redis(port=p).cluster("info")["cluster_state"] == "ok" for p in self.ports)

    def stop(self) -> None:
        """Stop every node and remove the data directory."""
        for process in self.processes:
            process.kill()
            process.wait()
        self.processes = []
        shutil.rmtree(self.dir, ignore_errors=True)


def _wait(check: object, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@lru_cache(maxsize=1)
def cluster_url() -> str:
    """The test cluster's URL: RECENGINE_TEST_REDIS_CLUSTER_URL, else a local cluster started now (once)."""
    given = os.environ.get("RECENGINE_TEST_REDIS_CLUSTER_URL")
    if given:
        return given
    cluster = LocalCluster()
    cluster.start()
    atexit.register(cluster.stop)
    return cluster.url


def flush_cluster(url: str) -> None:
    """Empty every master of the cluster."""
    client = RedisCluster.from_url(url)
    try:
        client.flushall(target_nodes=RedisCluster.PRIMARIES)
    finally:
        client.close()


def fresh_cluster_url() -> str:
    """The test cluster's URL, every master emptied first."""
    url = cluster_url()
    flush_cluster(url)
    return url
