"""Scale-out on Ray Serve: engine deployments that batch across streams (deployments.py), the
gateway's remote engine (remote.py), the Serve application and ``serve --cluster`` (app.py), and the
Prometheus metrics every courtscribe process exposes (metrics.py). Ray is imported only by
deployments.py, app.py and remote calls: the in-process server never needs it."""
