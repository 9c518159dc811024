"""The shipped Ray Serve configs and the KubeRay manifest, validated by Ray Serve's own schema (no
cluster needed: tests/test_cluster.py runs them)."""
import pytest

from courtscribe.cluster import app as cluster_app


@pytest.mark.parametrize("variant", ["serve-cpu.yaml", "serve-gpu.yaml"])
def test_the_shipped_serve_configs_are_valid_and_take_the_command_line(variant):
    from ray.serve.schema import ServeDeploySchema

    config = cluster_app.load_config(cluster_app.CONFIGS / variant, host="10.0.0.5", port=9000,
                                     settings={"engine": "whisper"})
    schema = ServeDeploySchema.model_validate(config)
    assert (schema.http_options.host, schema.http_options.port) == ("10.0.0.5", 9000)
    [app] = schema.applications
    assert app.import_path == "courtscribe.cluster.app:build" and app.args["settings"]["engine"] == "whisper"
    assert (app.args["settings"]["host"], app.args["settings"]["port"]) == ("10.0.0.5", 9000)  # the gateways know
    import yaml

    own = yaml.safe_load((cluster_app.CONFIGS / variant).read_text())["http_options"]
    kept = cluster_app.load_config(cluster_app.CONFIGS / variant)  # nothing named: the file's address stands
    assert kept["http_options"]["host"] == own["host"] == kept["applications"][0]["args"]["settings"]["host"]
    assert app.runtime_env["env_vars"]["RAY_USAGE_STATS_ENABLED"] == "0"  # no telemetry from any worker
    engines = {"OfflineASR", "OnlineASR"} | ({"Punctuation"} if variant == "serve-gpu.yaml" else set())  # FunASR's
    vad = {"VAD"} if variant == "serve-gpu.yaml" else set()  # live VAD: a deployment, or in the gateways
    assert app.args["settings"]["stream_vad"] == ("deployment" if vad else "gateway")
    assert {d.name for d in app.deployments} == engines | vad | {"Gateway", "SpeakerEmbedding", "Events"}
    by_name = {d.name: d for d in app.deployments}
    assert by_name["Gateway"].num_replicas >= 2 and by_name["Events"].num_replicas == 1
    batched = {d.name: d.user_config for d in app.deployments if isinstance(d.user_config, dict)}
    assert set(batched) == engines and all(c["max_batch_size"] >= 8 for c in batched.values())
    scaled = {d["name"]: d["autoscaling_config"] for d in config["applications"][0]["deployments"]
              if "autoscaling_config" in d}
    assert engines <= set(scaled)  # the GPU variant also scales its VAD
    assert all(c["max_replicas"] > c["min_replicas"] and c["upscale_delay_s"] <= 30 for c in scaled.values())


def test_the_kuberay_manifest_carries_a_valid_serve_config():
    import yaml
    from ray.serve.schema import ServeDeploySchema

    docs = yaml.safe_load_all((cluster_app.CONFIGS.parents[2] / "deploy" / "kuberay-rayservice.yaml").read_text())
    manifest = next(d for d in docs if d["kind"] == "RayService")  # beside its Service and NetworkPolicy
    schema = ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    assert schema.applications[0].import_path == "courtscribe.cluster.app:build"
    assert manifest["spec"]["rayClusterConfig"]["rayVersion"] == __import__("ray").__version__


def test_the_kuberay_service_and_network_policy_select_the_pods_kuberay_makes():
    """KubeRay names a RayService's cluster <name>-raycluster-<random> and labels its pods so:
    the Service and the NetworkPolicy select a label of the pod templates' own (and KubeRay's node
    type), and every node's Serve proxy keeps courtscribe's rules."""
    import yaml

    docs = list(yaml.safe_load_all((cluster_app.CONFIGS.parents[2] / "deploy" / "kuberay-rayservice.yaml").read_text()))
    ray_cluster = next(d for d in docs if d["kind"] == "RayService")["spec"]["rayClusterConfig"]
    templates = [ray_cluster["headGroupSpec"]["template"], *(g["template"] for g in ray_cluster["workerGroupSpecs"])]
    own = [t["metadata"]["labels"] for t in templates]
    service = next(d for d in docs if d["kind"] == "Service")["spec"]["selector"]
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy")["spec"]["podSelector"]["matchLabels"]
    assert {k: v for k, v in service.items() if not k.startswith("ray.io/")}.items() <= own[0].items()
    assert all(policy.items() <= labels.items() for labels in own)
    assert not any(k == "ray.io/cluster" for k in [*service, *policy])
    for t in templates:
        env = {e["name"]: e.get("value") for c in t["spec"]["containers"] for e in c.get("env", [])}
        assert env["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"] == "courtscribe.cluster.proxy:middlewares"
        assert "COURTSCRIBE_FORWARDED_ALLOW_IPS" in env and "COURTSCRIBE_ALLOWED_HOSTS" in env


def test_a_local_cluster_that_misses_its_start_is_stopped_and_started_again(tmp_path, monkeypatch):
    """Ray gives its raylet a fixed 30 s to register; on a busy machine it can miss them ("timed out
    during startup"), leaving the half-started GCS and monitor running. The start is tried again,
    with those stopped first (they name their session directory); any other failure is raised."""
    import subprocess
    import sys

    import ray

    session = tmp_path / "session_2026-11-26_00-00-00_000000_1"
    session.mkdir()
    (tmp_path / "session_latest").symlink_to(session)
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", f"--log_dir={session}/logs"])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    calls = []

    def init(**kw):
        calls.append(kw)
        if len(calls) == 1:
            raise Exception("The current node timed out during startup. This could happen because ...")

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    try:
        cluster_app._start_local(2, {"_temp_dir": str(tmp_path), "namespace": "serve"})
        assert len(calls) == 2 and calls[1]["num_cpus"] == 2
        assert leftover.wait(timeout=60) != 0  # killed
        assert bystander.poll() is None  # another process is left alone

        def broken(**kw):
            calls.append(kw)
            raise OSError("no space left on /dev/shm")

        calls.clear()
        monkeypatch.setattr(ray, "init", broken)
        with pytest.raises(OSError):
            cluster_app._start_local(2, {"_temp_dir": str(tmp_path)})
        assert len(calls) == 1  # not a start-up timeout: not retried
    finally:
        for p in (leftover, bystander):
            p.kill()
            p.wait()


def test_the_kuberay_manifest_moves_a_box_s_seal_key_rather_than_making_a_new_one():
    """A fresh random key on the cluster makes every record sealed on the old box read as forged."""
    manifest = (cluster_app.CONFIGS.parents[2] / "deploy" / "kuberay-rayservice.yaml").read_text()
    told = manifest.split("apiVersion:")[0]  # the instructions above the first document
    moved = told.index("courtscribe-seal --from-file=key=$DATA_DIR/keys/seal.key")
    assert moved < told.index("courtscribe-seal --from-literal=key=$(openssl rand -hex 32)")
    assert "Only a new installation" in told
