"""A tiny ASGI app for the gunicorn --preload test: a module-level ConfigManager started at
import, in the gunicorn master, before the workers are forked.

GET / answers {"pid", "version", "model", "callback_version"}: callback_version is the last
version an on_change callback saw IN THIS PROCESS (only the worker's own callback thread can
move it past what the master had seen at fork time). The lifespan shutdown stops the manager,
as an app does on exit: it must not hang in a worker.
"""

import json
import os

import confcast

config_manager = confcast.ConfigManager(segment=os.environ["CONFCAST_SEGMENT"], wait_timeout=10,
                                        apply_log_level=False)
config_manager.start()
callback_seen = {"pid": os.getpid(), "version": 0}


def _record(snap):
    callback_seen["pid"] = os.getpid()
    callback_seen["version"] = snap.version


config_manager.subscriber.on_change(_record)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                config_manager.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    own = callback_seen["version"] if callback_seen["pid"] == os.getpid() else 0
    body = json.dumps({"pid": os.getpid(), "version": config_manager.version,
                       "model": config_manager.get_llm_model(), "callback_version": own}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"x-worker-pid", str(os.getpid()).encode())]})
    await send({"type": "http.response.body", "body": body})
