"""deploy/helm/values.yaml against Dagster's Helm chart, and the runs it would launch.

The chart's own `values.schema.json` cannot be fetched here: the chart is published only on its
Helm repository (not on PyPI or npm), which this machine cannot reach. So the check has three
parts, each as strict as what can be had:

1. every key the values set is checked against the chart's schema for that section, as
   published in the chart's `values.schema.json` (dagster-io/dagster, `helm/dagster/`), written
   down below for the sections this deployment sets: key names, types, enums, and
   `additionalProperties: false` where the chart has it, so a misspelt key fails;
2. the run launcher config that the chart renders from `runLauncher.config.k8sRunLauncher` into
   the instance's `dagster.yaml` is processed with dagster-k8s's own `K8sRunLauncher` config
   schema, and the run coordinator's with Dagster's instance schema;
3. that launcher then launches the location's jobs, and the Jobs it builds are read back through
   the `kubernetes` client's models (tests/test_k8s_run_pods.py's recorder).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema
from dagster_k8s import K8sRunLauncher
from kubernetes import client
from test_k8s_run_pods import _container, launch, recording_launcher

from netflix_assets import run_profiles
from netflix_assets.settings import REPO_ROOT

VALUES = REPO_ROOT / "deploy" / "helm" / "values.yaml"
PROD_INSTANCE = REPO_ROOT / "deploy" / "dagster.prod.yaml"


def _obj(properties: dict, required: tuple[str, ...] = (), closed: bool = True) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": not closed,
    }


STR = {"type": "string"}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
STR_MAP = {"type": "object", "additionalProperties": STR}
PULL_POLICY = {"enum": ["Always", "IfNotPresent", "Never"]}
IMAGE = _obj(
    {"repository": STR, "tag": {"type": ["string", "integer", "null"]}, "pullPolicy": PULL_POLICY},
    ("repository", "pullPolicy"),
    closed=False,
)
NAME_REFS = {"type": "array", "items": _obj({"name": STR}, ("name",), closed=False)}
RESOURCES = {"type": "object"}  # a ResourceRequirements: checked with the kubernetes models
STR_OR_ENV = {"anyOf": [STR, _obj({"env": STR}, ("env",))]}

# The sections of the chart's values.schema.json that these values set. The chart's own defaults
# (its values.yaml) fill the keys a section requires and the values leave out, so `required`
# lists only what the chart requires of an item the values add (a user deployment).
CHART_SCHEMA = _obj(
    {
        "global": _obj(
            {
                "postgresqlSecretName": STR,
                "dagsterHome": STR,
                "serviceAccountName": STR,
                "celeryConfigSecretName": STR,
            }
        ),
        "serviceAccount": _obj({"create": BOOL, "name": STR, "annotations": STR_MAP}),
        "dagsterWebserver": _obj(
            {
                "replicaCount": INT,
                "image": IMAGE,
                "envConfigMaps": NAME_REFS,
                "envSecrets": NAME_REFS,
                "resources": RESOURCES,
            },
            closed=False,
        ),
        "dagster-user-deployments": _obj(
            {
                "enabled": BOOL,
                "enableSubchart": BOOL,
                "imagePullSecrets": NAME_REFS,
                "deployments": {
                    "type": "array",
                    "minItems": 1,
                    "items": _obj(
                        {
                            "name": STR,
                            "image": IMAGE,
                            "dagsterApiGrpcArgs": {"type": "array", "items": STR},
                            "codeServerArgs": {"type": "array", "items": STR},
                            "includeConfigInLaunchedRuns": _obj({"enabled": BOOL}, ("enabled",)),
                            "deploymentNamespace": STR,
                            "port": INT,
                            "envConfigMaps": NAME_REFS,
                            "envSecrets": NAME_REFS,
                            "resources": RESOURCES,
                        },
                        ("name", "image", "port"),
                        closed=False,
                    ),
                },
            }
        ),
        "runLauncher": _obj(
            {
                "type": {"enum": ["CeleryK8sRunLauncher", "K8sRunLauncher", "CustomRunLauncher"]},
                "config": _obj(
                    {
                        "k8sRunLauncher": _obj(
                            {
                                "image": IMAGE,
                                "imagePullPolicy": PULL_POLICY,
                                "jobNamespace": STR,
                                "loadInclusterConfig": BOOL,
                                "kubeconfigFile": STR,
                                "envConfigMaps": NAME_REFS,
                                "envSecrets": NAME_REFS,
                                "envVars": {"type": "array", "items": STR},
                                "volumeMounts": {"type": "array"},
                                "volumes": {"type": "array"},
                                "labels": STR_MAP,
                                "failPodOnRunFailure": BOOL,
                                "resources": RESOURCES,
                                "schedulerName": STR,
                                "securityContext": {"type": "object"},
                                "runK8sConfig": _obj(
                                    {
                                        key: {"type": "object"}
                                        for key in (
                                            "containerConfig",
                                            "podSpecConfig",
                                            "podTemplateSpecMetadata",
                                            "jobSpecConfig",
                                            "jobMetadata",
                                        )
                                    }
                                ),
                            }
                        )
                    },
                    closed=False,
                ),
            },
            ("type", "config"),
        ),
        "postgresql": _obj(
            {
                "image": IMAGE,
                "enabled": BOOL,
                "postgresqlHost": STR,
                "postgresqlUsername": STR,
                "postgresqlPassword": STR,
                "postgresqlDatabase": STR,
                "postgresqlParams": {"type": "object"},
                "postgresqlScheme": STR,
                "service": _obj({"port": INT}, ("port",), closed=False),
            }
        ),
        "generatePostgresqlPasswordSecret": BOOL,
        "dagsterDaemon": _obj(
            {
                "enabled": BOOL,
                "runCoordinator": _obj(
                    {
                        "enabled": BOOL,
                        "type": {"enum": ["QueuedRunCoordinator", "CustomRunCoordinator"]},
                        "config": _obj(
                            {
                                "queuedRunCoordinator": _obj(
                                    {
                                        "maxConcurrentRuns": INT,
                                        "tagConcurrencyLimits": {
                                            "type": "array",
                                            "items": _obj(
                                                {"key": STR, "value": STR, "limit": INT},
                                                ("key", "limit"),
                                            ),
                                        },
                                        "dequeueIntervalSeconds": INT,
                                    }
                                )
                            },
                            closed=False,
                        ),
                    },
                    ("enabled", "type", "config"),
                ),
                "envConfigMaps": NAME_REFS,
                "envSecrets": NAME_REFS,
            },
            closed=False,
        ),
        "computeLogManager": _obj(
            {
                "type": {
                    "enum": [
                        "NoOpComputeLogManager",
                        "AzureBlobComputeLogManager",
                        "GCSComputeLogManager",
                        "S3ComputeLogManager",
                        "CustomComputeLogManager",
                    ]
                },
                "config": _obj(
                    {
                        "s3ComputeLogManager": _obj(
                            {"bucket": STR_OR_ENV, "prefix": STR_OR_ENV},
                            ("bucket",),
                            closed=False,
                        )
                    }
                ),
            },
            ("type", "config"),
        ),
        "telemetry": _obj({"enabled": BOOL}, ("enabled",)),
    }
)

# How the chart's instance template names the K8sRunLauncher's keys in dagster.yaml.
LAUNCHER_KEYS = {
    "imagePullPolicy": "image_pull_policy",
    "jobNamespace": "job_namespace",
    "loadInclusterConfig": "load_incluster_config",
    "kubeconfigFile": "kubeconfig_file",
    "envVars": "env_vars",
    "volumeMounts": "volume_mounts",
    "volumes": "volumes",
    "labels": "labels",
    "failPodOnRunFailure": "fail_pod_on_run_failure",
    "resources": "resources",
    "schedulerName": "scheduler_name",
    "securityContext": "security_context",
}
RUN_K8S_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def rendered_launcher_config(chart_values: dict) -> dict:
    """The run_launcher config the chart writes into the instance's dagster.yaml."""
    section = chart_values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {LAUNCHER_KEYS[k]: v for k, v in section.items() if k in LAUNCHER_KEYS}
    config["env_config_maps"] = [ref["name"] for ref in section["envConfigMaps"]]
    config["env_secrets"] = [ref["name"] for ref in section["envSecrets"]]
    config["service_account_name"] = chart_values["global"]["serviceAccountName"]
    config["instance_config_map"] = "netflix-assets-dagster-instance"
    config["run_k8s_config"] = {
        RUN_K8S_KEYS[k]: v for k, v in section.get("runK8sConfig", {}).items()
    }
    return config


def test_values_match_the_charts_schema() -> None:
    jsonschema.Draft7Validator(CHART_SCHEMA).validate(values())


def test_a_misspelt_key_is_refused() -> None:
    """The check can fail: a key the chart does not know, in a closed section, is an error."""
    bad = values()
    bad["runLauncher"]["config"]["k8sRunLauncher"]["jobNamspace"] = "x"
    with pytest.raises(jsonschema.ValidationError, match="jobNamspace"):
        jsonschema.Draft7Validator(CHART_SCHEMA).validate(bad)


def test_resources_are_kubernetes_resource_requirements() -> None:
    chart = values()
    api = client.ApiClient()
    sections = [
        chart["dagsterWebserver"]["resources"],
        chart["dagster-user-deployments"]["deployments"][0]["resources"],
        chart["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"][
            "resources"
        ],
    ]
    for resources in sections:
        model = api._ApiClient__deserialize(resources, "V1ResourceRequirements")
        assert model.requests and model.requests["cpu"], resources


def test_the_default_run_pod_is_the_default_run_profile() -> None:
    container = values()["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    assert container["containerConfig"]["resources"] == run_profiles.PROFILES["default"]


def test_secrets_are_referenced_never_written() -> None:
    chart = values()
    assert chart["generatePostgresqlPasswordSecret"] is False
    assert chart["global"]["postgresqlSecretName"]
    assert "postgresqlPassword" not in chart["postgresql"]
    text = VALUES.read_text().lower()
    for word in ("password:", "token:", "secret_key", "api_key:"):
        assert word not in text, f"{VALUES} holds a literal {word!r}"
    deployment = chart["dagster-user-deployments"]["deployments"][0]
    for section in (
        deployment,
        chart["dagsterWebserver"],
        chart["dagsterDaemon"],
        chart["runLauncher"]["config"]["k8sRunLauncher"],
    ):
        assert {"name": "netflix-assets-secrets"} in section["envSecrets"]


def test_the_instance_it_renders_matches_the_production_instance() -> None:
    """Helm and deploy/dagster.prod.yaml describe one deployment: same launcher target and
    secrets, same queue limits, and the coordinator's config passes Dagster's instance schema."""
    chart = values()
    prod = yaml.safe_load(PROD_INSTANCE.read_text())
    launcher = rendered_launcher_config(chart)
    for key in ("job_namespace", "service_account_name", "env_config_maps", "env_secrets"):
        assert launcher[key] == prod["run_launcher"]["config"][key], key
    queued = chart["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == prod["concurrency"]["runs"]["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == prod["concurrency"]["runs"]["tag_concurrency_limits"]
    instance = {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                "max_concurrent_runs": queued["maxConcurrentRuns"],
                "tag_concurrency_limits": queued["tagConcurrencyLimits"],
            },
        }
    }
    result = process_config(dagster_instance_config_schema(), instance)
    assert result.success, [e.message for e in result.errors]


@pytest.fixture
def helm_launcher(tmp_path: Path) -> Iterator[K8sRunLauncher]:
    """dagster-k8s's K8sRunLauncher from the config the chart renders (the cluster's API is a
    recorder). The chart gives run pods the user deployment's image."""
    chart = values()
    image = chart["dagster-user-deployments"]["deployments"][0]["image"]
    config = {
        **rendered_launcher_config(chart),
        "job_image": f"{image['repository']}:{image['tag']}",
    }
    yield from recording_launcher(tmp_path, config)


def test_helm_launcher_sizes_each_job_by_its_run_profile(helm_launcher) -> None:
    """The chart's default pod for a job without a profile tag; the job's own tag wins for the
    transcode and Spark jobs; GPU tags add the GPU and the node selector."""
    for job_name, profile in (("video_pipeline", "transcode"), ("lake_daily_job", "spark")):
        job = launch(helm_launcher, job_name)
        container = _container(job)
        assert container["resources"] == run_profiles.PROFILES[profile], job_name
        assert job["metadata"]["labels"]["app.kubernetes.io/part-of"] == "netflix-assets"
    untagged = launch(helm_launcher, "video_pipeline", {run_profiles.K8S_CONFIG_TAG: "{}"})
    assert _container(untagged)["resources"] == run_profiles.PROFILES["default"]
    gpu = launch(helm_launcher, "video_pipeline", run_profiles.k8s_run_tags("transcode", True))
    assert _container(gpu)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["spec"]["template"]["spec"]["nodeSelector"] == run_profiles.GPU_NODE_SELECTOR
