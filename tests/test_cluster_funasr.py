"""The production engine on Ray Serve: FunASR's finals replica calls punctuation on a deployment of
its own; its partials advance streaming caches held on the online replica. Random-weight, shape-true
models of FunASR's own classes (as tests/test_funasr_engine.py), the shared local Ray cluster (2 CPUs;
tests/conftest.py), real WebSockets through Serve's proxy; the same stream through the in-process
server is the reference."""
import asyncio

import httpx
import pytest

from courtscribe.clients import stream_file
from courtscribe.cluster import app as cluster_app
from tests.conftest import ZH

CLIP = ZH / "market_25s.wav"
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def model_dir(funasr_models):
    return funasr_models


def finals(url: str) -> list[tuple[int, int, str]]:
    result = asyncio.run(stream_file(url.replace("http", "ws") + "/v1/stream", CLIP, speed=0))
    return [(u["start_ms"], u["end_ms"], u["text"]) for u in (f["utterance"] for f in result.finals)]


@pytest.mark.slow
def test_funasr_finals_on_ray_are_punctuated_by_their_own_deployment(model_dir, tmp_path_factory, ray_cluster,
                                                                     request):
    from ray import serve

    home = tmp_path_factory.mktemp("funasr-ray")
    port = ray_cluster.serve_port()  # tests/test_cluster.py's cluster and Serve instance, when they ran just before
    try:
        config = cluster_app.load_config(cluster_app.CONFIGS / "serve-cpu.yaml", port=port, settings={
            "engine": "funasr", "model_dir": str(model_dir), "insecure_no_auth": True,
            "data_dir": str(home / "ray-data"), "max_streams": 4})
        deployments = config["applications"][0]["deployments"]
        for d in deployments:
            if d["name"] in ("OfflineASR", "OnlineASR"):
                d.pop("autoscaling_config")
            if d["name"] in ("OfflineASR", "OnlineASR", "Gateway"):  # one gateway: tests/test_cluster.py has two
                d["num_replicas"] = 1
        deployments.append({"name": "Punctuation", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1},
                            "user_config": {"max_batch_size": 16, "batch_wait_timeout_s": 0.005}})
        cluster_app.deploy(config, wait=False)
        # the in-process reference (its server started here if no test did yet) while the replicas start
        alone = finals(request.getfixturevalue("funasr_server"))
        cluster_app.wait_running()
        url = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{url}/healthz").json()
        assert health["engine"] == "funasr" and health["model"].endswith("+ct-punc")  # named by the deployment
        on_ray = finals(url)
        stats = serve.get_deployment_handle("Punctuation", app_name=cluster_app.APP_NAME).batch_stats.remote().result()
        online = serve.get_deployment_handle("OnlineASR", app_name=cluster_app.APP_NAME)
        held = online.describe.remote().result()
        partials = online.batch_stats.remote().result()
    finally:
        ray_cluster.undeploy()
    # the same utterances and spans as in-process, each punctuated; the words themselves may differ
    # where finals were batched differently (a replayed long utterance's pieces queue together, and
    # random weights are not invariant to a batch's padding)
    assert alone and [(s, e) for s, e, _ in on_ray] == [(s, e) for s, e, _ in alone]
    assert all(text and text[-1] in "。？！，、" for _, _, text in on_ray)
    assert stats["requests"] >= len({(s, e) for s, e, _ in alone}) // 2  # the finals were punctuated there
    # partials: each utterance's streaming cache held on the online replica, advanced there in batches
    assert held["stateful"] and partials["requests"] > 0
