"""The deployment profile: the one place that reads environment settings and picks implementations.

DLK_PROFILE      local (default): local Deep Lake + local file store under $DAGSTER_HOME
                 object-storage: the same engine, with the lake at DLK_LAKE_URL and the files at DLK_FILES_URL
                 (s3://bucket/prefix; credentials and endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
                 AWS_ENDPOINT_URL, AWS_REGION, passed to the resources as dg.EnvVar)
                 deeplake-pg: tables in Deep Lake PG (SHARED_DLPG_HOST, _PORT, _USER, _PASSWORD, _DATABASE, _SSLMODE;
                 schema ACTIVELOOP_WORKSPACE_ID) and files through its HTTP /files API (BASE_URL,
                 TEST_PG_MANAGED_TOKEN, ACTIVELOOP_ORG_ID); secrets passed as dg.EnvVar
DLK_EXECUTOR     multiprocess (default: each step in a process of the run) or k8s (dagster-k8s' k8s_job_executor:
                 each step in its own pod; encoder steps ask for nvidia.com/gpu). With k8s:
                 DLK_K8S_ENV_SECRETS  Secrets whose keys every step pod gets as env (comma-separated, default dlk-assets-env)
                 DLK_K8S_NAMESPACE    namespace for step jobs (default: the run's)
                 DLK_K8S_MAX_CONCURRENT  step pods one run may have at once (default: no limit)
DLK_DEVICE       auto (default), cpu, cuda, cuda:N
DLK_MODEL_PATH   colqwen3 only: a snapshot folder instead of the Hugging Face cache
VIDEO_CHUNK_DURATION_S seconds per video chunk (default 4, sized for the generated sample); 0 disables chunking
DLK_LAKE_TENANT      the tenant that owns the lake's sources: document chunks' tenant_id, and who `dlk serve` shows sources and files to (default local)
Encoders are chosen by the model registry (`dlk_assets.models.settings`: DLK_MODELS_FILE, DLK_IMAGE_ENCODER,
DLK_TEXT_ENCODER).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

PROFILES = ("local", "object-storage", "deeplake-pg")
EXECUTORS = ("multiprocess", "k8s")
# Object-storage settings handed to the resources as `dg.EnvVar`s (resource field -> variable).
# Deep Lake PG settings: variables that must be set, and the secrets handed over as `dg.EnvVar`s.
DEEPLAKE_PG_REQUIRED = ("SHARED_DLPG_HOST", "SHARED_DLPG_PASSWORD", "ACTIVELOOP_WORKSPACE_ID", "BASE_URL",
                        "TEST_PG_MANAGED_TOKEN", "ACTIVELOOP_ORG_ID")
OBJECT_STORAGE_ENV = {"aws_access_key_id": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
                      "endpoint_url": "AWS_ENDPOINT_URL", "aws_region": "AWS_REGION"}


@dataclass(frozen=True)
class Profile:
    name: str
    device: str
    model_path: str
    chunk_duration_s: float
    lake_url: str = ""
    files_url: str = ""
    executor: str = "multiprocess"
    k8s_executor_config: dict | None = None
    documents_tenant: str = "local"


def current_profile() -> Profile:
    """Settings from the environment, validated."""
    name = os.environ.get("DLK_PROFILE", "local")
    if name not in PROFILES:
        raise ValueError(f"DLK_PROFILE={name!r} is not a known profile; choose one of {PROFILES}")
    lake_url, files_url = os.environ.get("DLK_LAKE_URL", ""), os.environ.get("DLK_FILES_URL", "")
    if name == "object-storage":
        missing = [var for var, value in (("DLK_LAKE_URL", lake_url), ("DLK_FILES_URL", files_url)) if not value]
        if missing:
            raise ValueError(f"DLK_PROFILE=object-storage needs {' and '.join(missing)} (e.g. s3://bucket/lake, s3://bucket/files)")
        if not files_url.startswith("s3://"):
            raise ValueError(f"DLK_FILES_URL={files_url!r}: the object-storage file store needs an s3:// URL")
    if name == "deeplake-pg":
        missing = [var for var in DEEPLAKE_PG_REQUIRED if not os.environ.get(var)]
        if missing:
            raise ValueError(f"DLK_PROFILE=deeplake-pg needs {', '.join(missing)} (see infra/.env.example)")
    return Profile(
        name=name,
        device=os.environ.get("DLK_DEVICE", "auto"),
        model_path=os.environ.get("DLK_MODEL_PATH", ""),
        chunk_duration_s=_chunk_duration(os.environ.get("VIDEO_CHUNK_DURATION_S", "4")),
        lake_url=lake_url,
        files_url=files_url,
        executor=_executor_name(),
        k8s_executor_config=_k8s_executor_config() if _executor_name() == "k8s" else None,
        documents_tenant=os.environ.get("DLK_LAKE_TENANT") or "local",
    )


def _executor_name() -> str:
    name = os.environ.get("DLK_EXECUTOR", "multiprocess")
    if name not in EXECUTORS:
        raise ValueError(f"DLK_EXECUTOR={name!r} is not a known executor; choose one of {EXECUTORS}")
    return name


def _k8s_executor_config() -> dict:
    """`k8s_job_executor` config from DLK_K8S_*: the Secrets that carry the profile's settings into
    every step pod, and optionally a namespace and a per-run pod limit."""
    secrets = [name.strip() for name in os.environ.get("DLK_K8S_ENV_SECRETS", "dlk-assets-env").split(",") if name.strip()]
    config: dict = {"env_secrets": secrets, "env_vars": ["DLK_PROFILE", "DLK_EXECUTOR"]}
    if os.environ.get("DLK_K8S_NAMESPACE"):
        config["job_namespace"] = os.environ["DLK_K8S_NAMESPACE"]
    limit = os.environ.get("DLK_K8S_MAX_CONCURRENT", "")
    if limit:
        if not limit.isdigit() or int(limit) < 1:
            raise ValueError(f"DLK_K8S_MAX_CONCURRENT={limit!r} must be a positive number of step pods")
        config["max_concurrent"] = int(limit)
    return config


def step_executor(profile: Profile):
    """The executor the profile runs steps with; None keeps Dagster's default (a process per step)."""
    if profile.executor != "k8s":
        return None
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError:
        raise ValueError("DLK_EXECUTOR=k8s needs dagster-k8s: pip install 'dlk-assets[kubernetes]'") from None
    return k8s_job_executor.configured(profile.k8s_executor_config, name="dlk_k8s_steps")


def _chunk_duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"VIDEO_CHUNK_DURATION_S={text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"VIDEO_CHUNK_DURATION_S={text!r} must be a finite number >= 0 (0 disables chunking)")
    return value


def profile_resources(profile: Profile | None = None) -> dict:
    """The resources for a profile, keyed as the assets expect them."""
    from dlk_assets.resources import (
        CocoSourceResource,
        DocumentSourceResource,
        ModelsResource,
        SmartSpacesSourceResource,
        SweTraceSourceResource,
    )

    profile = profile or current_profile()
    return {
        **_storage_resources(profile),
        "models": ModelsResource(device=profile.device, model_path=profile.model_path),
        "coco_source": CocoSourceResource(),
        "smartspaces_source": SmartSpacesSourceResource(chunk_duration_s=profile.chunk_duration_s),
        "swe_source": SweTraceSourceResource(),
        "documents_source": DocumentSourceResource(tenant_id=profile.documents_tenant),
    }


# Resources resolved outside a run stay open for the process (a resource holding another, like the
# /files store holding the PG lake of its file records, can only be resolved as a context).
_RESOLVED = contextlib.ExitStack()


def resolved_resources(profile: Profile | None = None) -> dict:
    """The profile's resources with their `dg.EnvVar`s read, for code that uses them outside a run
    (the CLI); inside a run Dagster does this itself."""
    return {key: _RESOLVED.enter_context(resource.process_config_and_initialize_cm())
            for key, resource in profile_resources(profile).items()}


def _storage_resources(profile: Profile) -> dict:
    """The lake and the file store: where the profile keeps tables and bytes."""
    import dagster as dg

    from dlk_assets.resources import (
        DeepLakePgLakeResource,
        HttpFileStoreResource,
        LocalFileStoreResource,
        LocalLakeResource,
        ObjectStoreLakeResource,
        S3FileStoreResource,
    )

    if profile.name == "object-storage":
        # Only variables that are set become EnvVars: an unset one would fail the resource, and an
        # empty field lets the SDK find credentials itself (instance roles, ~/.aws).
        access = {field: dg.EnvVar(var) for field, var in OBJECT_STORAGE_ENV.items() if os.environ.get(var)}
        return {"lake": ObjectStoreLakeResource(url=profile.lake_url, **access),
                "files": S3FileStoreResource(url=profile.files_url, **access)}
    if profile.name == "deeplake-pg":
        env = os.environ
        lake = DeepLakePgLakeResource(host=env["SHARED_DLPG_HOST"], port=int(env.get("SHARED_DLPG_PORT") or 5432),
                                      user=env.get("SHARED_DLPG_USER") or "postgres", password=dg.EnvVar("SHARED_DLPG_PASSWORD"),
                                      database=env.get("SHARED_DLPG_DATABASE") or "postgres",
                                      sslmode=env.get("SHARED_DLPG_SSLMODE") or "require", workspace=env["ACTIVELOOP_WORKSPACE_ID"])
        files = HttpFileStoreResource(base_url=env["BASE_URL"], workspace=env["ACTIVELOOP_WORKSPACE_ID"],
                                      org_id=env["ACTIVELOOP_ORG_ID"], token=dg.EnvVar("TEST_PG_MANAGED_TOKEN"),
                                      index_lake=lake)  # file records beside the tables: shared by every pod
        return {"lake": lake, "files": files}
    return {"lake": LocalLakeResource(), "files": LocalFileStoreResource()}


def load_definitions(profile: Profile | None = None):
    """The whole project's Dagster definitions for a profile (every source, then training on its slices);
    code versions follow the registry's targets."""
    import dagster as dg

    from dlk_assets.defs.pipeline.build import build_definitions
    from dlk_assets.defs.sources import SOURCES
    from dlk_assets.defs.training.assets import training_definitions

    profile = profile or current_profile()
    resources = profile_resources(profile)
    sources = build_definitions(list(SOURCES.values()), resources["models"].registry(), resources, step_executor(profile))
    return dg.Definitions.merge(sources, training_definitions())
