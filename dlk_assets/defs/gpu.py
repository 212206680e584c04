"""How embedding steps ask for a GPU: the `gpu` pool and Kubernetes op tags.

The pool's limit lives in the instance (Dagster has no per-pool setting in dagster.yaml, and a
`default_limit` there would cap every other pool too). `ensure_gpu_pool`, called on every source
sensor tick and by the `dlk` commands, sets it to `DLK_GPU_SLOTS` (default 1, one step per GPU) when
nobody has set it; a limit set by hand (`dagster instance concurrency set gpu 2`, or the UI) is left
alone. Every step that runs an encoder (embeddings, index previews, the gate, the cutover, slices,
calibration) holds the pool and asks Kubernetes for a GPU.
"""

import os

import dagster as dg

GPU_POOL = "gpu"

GPU_OP_TAGS = {
    # Picked up by the k8s run launcher / job executor: the embedding step lands on a GPU node.
    "dagster-k8s/config": {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}},
        "pod_spec_config": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    },
}


def gpu_slots() -> int:
    """`DLK_GPU_SLOTS`: how many steps may hold the `gpu` pool at once (default 1)."""
    text = os.environ.get("DLK_GPU_SLOTS", "1")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"DLK_GPU_SLOTS={text!r} must be a positive number of concurrent GPU steps")
    return int(text)


def ensure_gpu_pool(instance: dg.DagsterInstance) -> int | None:
    """Give the `gpu` pool its limit if it has none; returns the limit set now, or None if one existed."""
    storage = instance.event_log_storage
    if GPU_POOL in storage.get_concurrency_keys():
        return None
    slots = gpu_slots()
    storage.set_concurrency_slots(GPU_POOL, slots)
    return slots


# What a step that runs an encoder passes to @dg.asset / @dg.asset_check.
GPU_STEP = {"pool": GPU_POOL, "op_tags": GPU_OP_TAGS}
