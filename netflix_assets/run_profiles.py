"""What each kind of run asks of a Kubernetes cluster, as the `dagster-k8s/config` run tag.

`K8sRunLauncher` (deploy/dagster.prod.yaml) starts one pod per run and reads this tag from the
run's tags, which a job's own tags supply. A default pod is sized for sensors' small runs; the
transcode and Spark runs need more, and GPU work must land on GPU nodes. Locally the tag is
ignored (the default run launcher runs in-process), so the same job definitions serve both.

The sizes come from this project's own figures: a transcode holds one decode and up to 8 encoders
plus libvmaf (about 6 GiB RSS at 1080p on the development machine) and writes renditions to the
pod's scratch disk before the object store; a Spark run's pod is the driver, whose executors come
from the `k8s://` master as pods of their own.
"""

from __future__ import annotations

import json
import os

K8S_CONFIG_TAG = "dagster-k8s/config"
# Spark runs take turns locally: dagster.yaml limits runs with this tag to one at a time.
SPARK_TAGS = {"netflix-assets/workload": "spark"}

# Label and taint of GPU nodes as NVIDIA's GPU operator sets them.
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

PROFILES: dict[str, dict[str, dict[str, str]]] = {
    "default": {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    },
    "transcode": {
        "requests": {"cpu": "8", "memory": "6Gi", "ephemeral-storage": "40Gi"},
        "limits": {"memory": "10Gi", "ephemeral-storage": "80Gi"},
    },
    "spark": {
        "requests": {"cpu": "2", "memory": "6Gi"},
        "limits": {"memory": "8Gi"},
    },
}
GPU_PROFILES = {"transcode"}


def gpu_nodes() -> bool:
    """Whether the deployment's cluster has GPU nodes (`NETFLIX_ASSETS_K8S_GPU_NODES=1`)."""
    return os.environ.get("NETFLIX_ASSETS_K8S_GPU_NODES", "0").lower() in {"1", "true", "yes"}


def k8s_config(profile: str, gpu: bool = False) -> dict[str, object]:
    """The user-defined Kubernetes config of one run profile (container and pod spec parts)."""
    if profile not in PROFILES:
        raise KeyError(f"unknown run profile {profile!r}; known: {', '.join(sorted(PROFILES))}")
    if gpu and profile not in GPU_PROFILES:
        raise ValueError(f"run profile {profile!r} has no GPU variant ({sorted(GPU_PROFILES)})")
    resources = {part: dict(values) for part, values in PROFILES[profile].items()}
    config: dict[str, object] = {"container_config": {"resources": resources}}
    if gpu:
        resources["limits"]["nvidia.com/gpu"] = "1"
        config["pod_spec_config"] = {
            "node_selector": dict(GPU_NODE_SELECTOR),
            "tolerations": [dict(GPU_TOLERATION)],
        }
    return config


def k8s_run_tags(profile: str, gpu: bool | None = None) -> dict[str, str]:
    """Run tags for a job of this profile; `gpu=None` follows the deployment's GPU nodes."""
    use_gpu = (profile in GPU_PROFILES and gpu_nodes()) if gpu is None else gpu
    return {K8S_CONFIG_TAG: json.dumps(k8s_config(profile, use_gpu), sort_keys=True)}
