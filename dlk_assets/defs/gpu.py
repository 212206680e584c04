"""How embedding steps ask for a GPU: the `gpu` pool (limit 1 in dagster.yaml) and Kubernetes op tags."""

GPU_POOL = "gpu"

GPU_OP_TAGS = {
    # Picked up by the k8s run launcher / job executor: the embedding step lands on a GPU node.
    "dagster-k8s/config": {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}},
        "pod_spec_config": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    },
}
