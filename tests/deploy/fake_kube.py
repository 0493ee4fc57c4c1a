"""A loopback HTTP server that speaks enough of the Kubernetes REST API for the apply logic.

Objects live in memory by (resource, namespace, name). GET reads (404 with a
Status body when absent), POST creates (409 when present), PATCH merges
(strategic-merge-patch for maps, lists replaced), PUT replaces. Deployments get
``metadata.generation`` bumped on spec changes and a status computed on read:
rolled out, unless a container image is in ``bad_images`` (then the new
replicas never become available, as with an image that cannot start).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_PATH = re.compile(r"^/(?:api/v1|apis/[^/]+/[^/]+)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?(?:/(status))?$")


def _merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.bad_images: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self._rv = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict:
                n = int(self.headers.get("Content-Length", 0))
                return json.loads(self.rfile.read(n)) if n else {}

            def _handle(self, method: str) -> None:
                fake.requests.append((method, self.path.split("?")[0]))
                m = _PATH.match(self.path.split("?")[0])
                if not m:
                    return self._send(404, _status(404, f"unknown path {self.path}"))
                ns, resource, name, _sub = m.groups()
                with fake._lock:
                    code, body = fake.handle(method, resource, ns, name, self._body() if method != "GET" else {})
                self._send(code, body)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

            def do_PUT(self):
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKube:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def api_client(self):
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        return client.ApiClient(cfg)

    # ---- the API ------------------------------------------------------------------------
    def handle(self, method: str, resource: str, ns: str, name: str | None, body: dict) -> tuple[int, dict]:
        key = (resource, ns, name or body.get("metadata", {}).get("name", ""))
        current = self.objects.get(key)
        if method == "GET":
            if current is None:
                return 404, _status(404, f'{resource} "{key[2]}" not found')
            return 200, self._with_status(resource, current)
        if method == "POST":
            if current is not None:
                return 409, _status(409, f'{resource} "{key[2]}" already exists')
            obj = copy.deepcopy(body)
            obj["metadata"].update(generation=1, uid=f"uid-{key[2]}", namespace=ns)
            if resource == "deployments":
                obj["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
            return 201, self._store(key, obj)
        if current is None:
            return 404, _status(404, f'{resource} "{key[2]}" not found')
        new = _merge(current, body) if method == "PATCH" else copy.deepcopy(body)
        new["metadata"] = _merge(
            current["metadata"],
            {k: v for k, v in new["metadata"].items() if k not in ("generation", "uid", "resourceVersion")},
        )
        if new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = current["metadata"]["generation"] + 1
            if resource == "deployments":
                rev = int(current["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) + 1
                new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(rev)
        return 200, self._store(key, new)

    def _store(self, key, obj: dict) -> dict:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self.objects[key] = obj
        return self._with_status(key[0], obj)

    def _with_status(self, resource: str, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        if resource != "deployments":
            return obj
        replicas = obj["spec"].get("replicas", 1)
        images = {c["image"] for c in obj["spec"]["template"]["spec"]["containers"]}
        healthy = not (images & self.bad_images)
        obj["status"] = {
            "observedGeneration": obj["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas if healthy else 1,
            "availableReplicas": replicas if healthy else replicas - 1,
            "readyReplicas": replicas if healthy else replicas - 1,
            "unavailableReplicas": None if healthy else 1,
        }
        return obj


def _status(code: int, message: str) -> dict:
    reason = {404: "NotFound", 409: "AlreadyExists"}.get(code, "Unknown")
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
