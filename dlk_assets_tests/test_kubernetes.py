"""Kubernetes with GPU steps, without a cluster: the pod spec dagster-k8s builds for an embedding step.

`DLK_EXECUTOR=k8s` puts dagster-k8s' `k8s_job_executor` on every job, so each step is its own pod.
The step pod is rendered the way `K8sStepHandler.launch_step` renders it: the executor's container
context, merged with the step's `dagster-k8s/config` op tags, turned into a Job by
`construct_dagster_k8s_job` — the library's own functions, nothing sent anywhere.
"""

import dagster as dg
import pytest
from dagster._config import (
    process_config,  # validates executor config as Dagster does at launch
)
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import construct_dagster_k8s_job, get_user_defined_k8s_config

from dlk_assets.defs.gpu import GPU_POOL
from dlk_assets.profile import current_profile, load_definitions

IMAGE = "registry.example/dlk-assets:1.0"
# A kubeconfig naming a loopback API server: the run launcher reads it, and nothing ever connects.
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


@pytest.fixture
def k8s_profile(dagster_home, monkeypatch):
    for name, value in {"DLK_EXECUTOR": "k8s", "DLK_PROFILE": "object-storage", "DLK_LAKE_URL": "s3://lake-bucket/lake",
                        "DLK_FILES_URL": "s3://lake-bucket/files", "DLK_K8S_NAMESPACE": "dlk-steps",
                        "DLK_K8S_MAX_CONCURRENT": "8"}.items():
        monkeypatch.setenv(name, value)
    return current_profile()


@pytest.fixture
def run_launcher(tmp_path):
    """The run launcher as the official Helm chart configures it (its instance ConfigMap, DAGSTER_HOME)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    return K8sRunLauncher(service_account_name="dagster", instance_config_map="dagster-instance",
                          postgres_password_secret="dagster-postgresql-secret", dagster_home="/opt/dagster/dagster_home",
                          load_incluster_config=False, kubeconfig_file=str(kubeconfig))


def step_job(defs: dg.Definitions, profile, asset: str, run_launcher: K8sRunLauncher):
    """The Kubernetes Job the k8s executor would create for `asset`'s step."""
    config = process_config(k8s_job_executor.config_schema.config_type, profile.k8s_executor_config)
    assert config.success, config.errors
    executor_context = K8sContainerContext(env_secrets=config.value["env_secrets"], env_vars=config.value["env_vars"],
                                           namespace=config.value["job_namespace"])
    tags = defs.resolve_assets_def(dg.AssetKey(asset)).op.tags
    context = executor_context.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags)))
    job = construct_dagster_k8s_job(context.get_k8s_job_config(IMAGE, run_launcher), ["dagster", "api", "execute_step"],
                                    f"dagster-step-{asset}", user_defined_k8s_config=context.run_k8s_config,
                                    component="step_worker")
    return job, context


def test_every_job_runs_its_steps_with_the_k8s_job_executor(k8s_profile):
    defs = load_definitions(k8s_profile)
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "dlk_k8s_steps"
    assert k8s_profile.k8s_executor_config["max_concurrent"] == 8


def test_an_embedding_step_pod_asks_for_a_gpu_and_gets_the_object_storage_env(k8s_profile, run_launcher):
    defs = load_definitions(k8s_profile)
    job, context = step_job(defs, k8s_profile, "coco_image_embeddings", run_launcher)
    pod = job.spec.template.spec
    container = pod.containers[0]
    assert container.image == IMAGE
    assert container.resources.limits == {"nvidia.com/gpu": "1"}
    assert any(t.key == "nvidia.com/gpu" for t in pod.tolerations)
    # The profile's settings reach the pod from the Secret (DLK_LAKE_URL, credentials) and the run's env.
    assert [source.secret_ref.name for source in container.env_from] == ["dlk-assets-env"]
    assert {var.name for var in container.env} >= {"DLK_PROFILE", "DLK_EXECUTOR", "DAGSTER_HOME"}
    assert context.namespace == "dlk-steps"
    assert defs.resolve_assets_def(dg.AssetKey("coco_image_embeddings")).op.pool == GPU_POOL


def test_a_step_without_an_encoder_asks_for_no_gpu(k8s_profile, run_launcher):
    defs = load_definitions(k8s_profile)
    job, _ = step_job(defs, k8s_profile, "coco_files", run_launcher)
    container = job.spec.template.spec.containers[0]
    assert not (container.resources and container.resources.limits and "nvidia.com/gpu" in container.resources.limits)
    assert [source.secret_ref.name for source in container.env_from] == ["dlk-assets-env"]


def test_the_default_executor_is_dagsters_and_a_bad_one_is_named(dagster_home, monkeypatch):
    monkeypatch.delenv("DLK_EXECUTOR", raising=False)
    assert load_definitions(current_profile()).resolve_implicit_global_asset_job_def().executor_def.name == "multi_or_in_process_executor"
    monkeypatch.setenv("DLK_EXECUTOR", "celery")
    with pytest.raises(ValueError, match="DLK_EXECUTOR='celery'"):
        current_profile()
