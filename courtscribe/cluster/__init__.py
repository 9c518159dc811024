"""Scale-out on Ray Serve: VAD, engine, punctuation and speaker deployments that batch across streams
(deployments.py), the gateway's remote engine, VAD and punctuator (remote.py), the gateways' event
bus (bus.py), the Serve application and ``serve --cluster`` (app.py). Ray is imported only by
deployments.py, bus.py, app.py and remote calls: the in-process server never needs it."""
