"""The Kubernetes Jobs that production's K8sRunLauncher would create, one per job of the location.

No cluster can run here, so the launcher is dagster-k8s's own `K8sRunLauncher`, configured from
deploy/dagster.prod.yaml, launching real runs of the real job definitions; only the cluster's API
is replaced by a recorder (the one thing that cannot run here). Each recorded Job is then read back
through the `kubernetes` client's models, which check the API schema's required fields and types.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from dagster._config import process_config
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.launcher import LaunchRunContext
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster_k8s import K8sRunLauncher
from kubernetes import client

from netflix_assets import run_profiles
from netflix_assets.definitions import defs
from netflix_assets.settings import REPO_ROOT

IMAGE = "registry.example/netflix-assets:1"
IMAGE_PYTHON = "/usr/local/bin/python"


class RecordingJobsApi:
    """Stands in for the cluster: records each Job the launcher submits."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, client.V1Job]] = []

    def create_namespaced_job_with_retries(self, body: client.V1Job, namespace: str) -> None:
        self.jobs.append((namespace, body))


def recording_launcher(tmp_path: Path, config: dict) -> Iterator[K8sRunLauncher]:
    """dagster-k8s's K8sRunLauncher from an instance's run_launcher config, pointed at a
    kubeconfig of nowhere, its API client replaced by the recorder."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    raw = {**config, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    processed = process_config(K8sRunLauncher.config_type(), raw)
    assert processed.success, [e.message for e in processed.errors]
    launcher = K8sRunLauncher.from_config_value(None, processed.value)
    (tmp_path / "instance").mkdir()
    # The launcher holds its instance weakly: keep it alive for the test's length.
    instance = DagsterInstance.local_temp(str(tmp_path / "instance"))
    launcher.register_instance(instance)
    launcher._api_client = RecordingJobsApi()
    yield launcher
    instance.dispose()


@pytest.fixture
def launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[K8sRunLauncher]:
    monkeypatch.setenv("NETFLIX_ASSETS_IMAGE", IMAGE)
    config = yaml.safe_load((REPO_ROOT / "deploy/dagster.prod.yaml").read_text())["run_launcher"]
    yield from recording_launcher(tmp_path, config["config"])


def launch(launcher: K8sRunLauncher, job_name: str, tags: dict[str, str] | None = None) -> dict:
    """Launch one run of a job of the location; return the submitted Job as the API sees it."""
    job = defs.resolve_job_def(job_name)
    origin = JobPythonOrigin(
        job.name,
        RepositoryPythonOrigin(
            executable_path=IMAGE_PYTHON,
            code_pointer=ModuleCodePointer("netflix_assets.definitions", "defs", None),
        ),
    )
    run = launcher._instance.create_run_for_job(
        job_def=job, job_code_origin=origin, tags={**job.tags, **(tags or {})}
    )
    launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    namespace, body = launcher._api_client.jobs[-1]
    assert namespace == "netflix-assets"
    api = client.ApiClient()
    as_json = api.sanitize_for_serialization(body)
    # Round trip through the client's models: a missing required field or a wrong type raises.
    checked = api._ApiClient__deserialize(json.loads(json.dumps(as_json)), "V1Job")
    assert isinstance(checked, client.V1Job)
    return as_json


def _container(job: dict) -> dict:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("job_name", sorted(j.name for j in defs.jobs or []))
def test_every_job_gets_a_valid_run_pod(launcher: K8sRunLauncher, job_name: str) -> None:
    job = launch(launcher, job_name)
    container = _container(job)
    pod = job["spec"]["template"]["spec"]
    assert container["image"] == IMAGE
    assert container["args"][:5] == [IMAGE_PYTHON, "-m", "dagster", "api", "execute_run"]
    assert pod["serviceAccountName"] == "netflix-assets"
    env_from = {e.get("configMapRef", e.get("secretRef"))["name"] for e in container["envFrom"]}
    assert {"netflix-assets-env", "netflix-assets-secrets"} <= env_from
    assert job["metadata"]["labels"]["dagster/job"] == job_name
    # Every job of the location names its size: none runs in a pod without requests.
    assert container["resources"]["requests"]["cpu"]


def test_transcode_and_spark_pods_are_bigger_than_the_default(launcher: K8sRunLauncher) -> None:
    default = run_profiles.PROFILES["default"]["requests"]
    transcode = _container(launch(launcher, "video_pipeline"))["resources"]
    spark = _container(launch(launcher, "lake_daily_job"))["resources"]
    assert transcode["requests"] == run_profiles.PROFILES["transcode"]["requests"]
    assert spark["requests"] == run_profiles.PROFILES["spark"]["requests"]
    for requests in (transcode["requests"], spark["requests"]):
        assert _gib(requests["memory"]) > _gib(default["memory"])
    assert "ephemeral-storage" in transcode["requests"]
    assert "nvidia.com/gpu" not in transcode["limits"]
    assert "nodeSelector" not in launch(launcher, "video_pipeline")["spec"]["template"]["spec"]


def test_gpu_tags_route_a_transcode_to_gpu_nodes(launcher: K8sRunLauncher) -> None:
    job = launch(launcher, "video_pipeline", run_profiles.k8s_run_tags("transcode", gpu=True))
    pod = job["spec"]["template"]["spec"]
    assert _container(job)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == run_profiles.GPU_NODE_SELECTOR
    assert run_profiles.GPU_TOLERATION in pod["tolerations"]


def test_a_deployment_with_gpu_nodes_tags_gpu_profiles_only(monkeypatch) -> None:
    monkeypatch.setenv("NETFLIX_ASSETS_K8S_GPU_NODES", "1")
    transcode = json.loads(run_profiles.k8s_run_tags("transcode")[run_profiles.K8S_CONFIG_TAG])
    spark = json.loads(run_profiles.k8s_run_tags("spark")[run_profiles.K8S_CONFIG_TAG])
    assert transcode["pod_spec_config"]["node_selector"] == run_profiles.GPU_NODE_SELECTOR
    assert "pod_spec_config" not in spark
    with pytest.raises(ValueError, match="no GPU variant"):
        run_profiles.k8s_config("spark", gpu=True)
    with pytest.raises(KeyError, match="unknown run profile"):
        run_profiles.k8s_config("huge")


def _gib(quantity: str) -> float:
    units = {"Gi": 1.0, "Mi": 1 / 1024}
    for suffix, scale in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * scale
    raise ValueError(quantity)
