"""The thin interface between meshctl and a Kubernetes API server (read-only).

Everything meshctl needs from a cluster goes through `KubeAPI`: list pods, services and CRDs, and
stream a container's log. Objects come back as plain dicts in the API's JSON shape, which keeps the
callers independent of the client library and lets tests serve recorded API responses from a
loopback HTTP server (tests/kubeapi.py).

The implementation uses the official `kubernetes` client (imported lazily: it costs ~0.4 s) for
kubeconfig handling (contexts, auth plugins, TLS), and its raw `call_api` for requests so that
responses stay JSON and logs can be streamed in chunks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

from meshctl.errors import KubeError


class KubeAPI(Protocol):
    """Read-only cluster access used by meshctl. Implementations must not write."""

    def list_pods(self, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]: ...

    def list_services(self, namespace: str | None = None) -> list[dict[str, Any]]: ...

    def list_crds(self) -> list[dict[str, Any]]: ...

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def stream_pod_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        since_seconds: int | None = None,
        timestamps: bool = False,
        timeout: float = 60.0,
    ) -> Iterator[bytes]: ...


class ApiStatusError(KubeError):
    """A non-2xx answer from the API server; `status` is the HTTP status (429, 500, ...)."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"Kubernetes API returned {status}: {message}")
        self.status = status
        self.retry_after = retry_after


class ApiConnectionError(KubeError):
    """The API server could not be reached, timed out, or dropped a stream (worth a retry)."""


class KubernetesClient:
    """`KubeAPI` over the official client. Construct with the kubectl-like global options."""

    def __init__(self, *, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        try:
            api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        except (ConfigException, FileNotFoundError, TypeError) as exc:
            try:
                if kubeconfig or context:
                    raise
                config.load_incluster_config()
                api_client = client.ApiClient()
            except Exception:
                raise KubeError(
                    f"cannot load Kubernetes configuration: {exc}",
                    hint="pass --kubeconfig FILE / --context NAME, or set KUBECONFIG",
                ) from exc
        self._api = api_client

    @property
    def host(self) -> str:
        return self._api.configuration.host

    def _get(self, path: str, query: dict[str, Any] | None = None, *, timeout: float = 30.0):
        """GET `path`; returns the un-read urllib3 response (callers stream or read it, then release)."""
        import urllib3

        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        method, url, headers, _body, _post = self._api.param_serialize(
            "GET", path, query_params=params, header_params={"Accept": "application/json, */*"},
            auth_settings=["BearerToken"],
        )
        try:
            resp = self._api.call_api(method, url, header_params=headers, _request_timeout=timeout).response
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiConnectionError(f"cannot reach the Kubernetes API at {self.host}: {exc}") from exc
        if resp.status >= 300:
            body = resp.data.decode("utf-8", "replace")
            resp.release_conn()
            try:
                message = json.loads(body).get("message", body)
            except (ValueError, AttributeError):
                message = body
            retry_after = resp.headers.get("Retry-After")
            raise ApiStatusError(resp.status, (message or resp.reason or "").strip()[:500],
                                 retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None)
        return resp

    def _list(self, path: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """GET a list, following `metadata.continue` pages."""
        items: list[dict[str, Any]] = []
        query = dict(query or {})
        query.setdefault("limit", 500)
        while True:
            resp = self._get(path, query)
            try:
                body = json.loads(resp.data)
            except ValueError as exc:
                raise KubeError(f"unreadable answer from the Kubernetes API for {path}: {exc}") from exc
            finally:
                resp.release_conn()
            items.extend(body.get("items") or [])
            cont = (body.get("metadata") or {}).get("continue")
            if not cont:
                return items
            query["continue"] = cont

    def list_pods(self, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        return self._list(path, {"labelSelector": label_selector})

    def list_services(self, namespace: str | None = None) -> list[dict[str, Any]]:
        path = f"/api/v1/namespaces/{namespace}/services" if namespace else "/api/v1/services"
        return self._list(path)

    def list_crds(self) -> list[dict[str, Any]]:
        return self._list("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One ConfigMap, or None when it does not exist (e.g. the `istio` mesh config of a cluster without Istio)."""
        try:
            resp = self._get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        except ApiStatusError as exc:
            if exc.status == 404:
                return None
            raise
        try:
            return json.loads(resp.data)
        except ValueError as exc:
            raise KubeError(f"unreadable ConfigMap {namespace}/{name} from the Kubernetes API: {exc}") from exc
        finally:
            resp.release_conn()

    def stream_pod_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        since_seconds: int | None = None,
        timestamps: bool = False,
        timeout: float = 60.0,
    ) -> Iterator[bytes]:
        resp = self._get(
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
            {"container": container, "sinceSeconds": since_seconds, "timestamps": str(timestamps).lower()},
            timeout=timeout,
        )
        import urllib3

        try:
            yield from resp.stream(64 * 1024, decode_content=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiConnectionError(f"log stream of {namespace}/{pod}/{container} broke: {exc}") from exc
        finally:
            resp.release_conn()


def connect(kubeconfig: str | None = None, context: str | None = None) -> KubeAPI:
    """The default `KubeAPI` for the global options."""
    return KubernetesClient(kubeconfig=kubeconfig, context=context)
