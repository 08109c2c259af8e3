"""A small client for the MLflow tracking server's REST API (``/api/2.0/mlflow/...``) and its artifacts.

Why not the ``mlflow`` package: the receiver changes aliases and tags only, and must install without the
ML stack; ``requests`` is already a dependency. Every failure says that it was MLflow and which URL:

* connection refused, timeout, or a 5xx answer -> :class:`RegistryUnavailableError` (retry later);
* ``RESOURCE_DOES_NOT_EXIST`` -> :class:`MLflowNotFound` (callers turn it into None or UnknownModel);
* ``RESOURCE_ALREADY_EXISTS`` -> :class:`MLflowExists` (the one atomic compare-and-set MLflow offers);
* any other 4xx -> :class:`RegistryError` with MLflow's own message.

The token (``Authorization: Bearer``) comes from a file or ``MLFLOW_TRACKING_TOKEN``; it is never logged
and never part of an error message. Artifacts: a run's artifact URI is either a local path (a server
started with ``--default-artifact-root DIR``, same host) or ``mlflow-artifacts:/...`` (the server proxies
uploads and downloads); other stores (s3, gs, ...) go through the ``mlflow`` package when installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import requests

from incident_common.errors import RegistryError, RegistryUnavailableError

__all__ = ["MLflowExists", "MLflowNotFound", "MLflowRest", "read_token"]

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


class MLflowNotFound(RegistryError):
    http_status = 404


class MLflowExists(RegistryError):
    http_status = 409


def read_token(token_file: str | Path | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token: from ``token_file`` if given (must be non-empty), else ``MLFLOW_TRACKING_TOKEN``."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise RegistryError(f"cannot read the MLflow token file {token_file}: {exc.strerror}") from None
        if not token:
            raise RegistryError(f"the MLflow token file {token_file} is empty")
        return token
    env = os.environ if environ is None else environ
    return env.get("MLFLOW_TRACKING_TOKEN") or None


class MLflowRest:
    """JSON calls against one tracking server. ``url`` is plain ``http(s)://host:port`` (no ``mlflow+``)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise RegistryError(f"MLflow URL must be http(s)://host:port, got {url!r}")
        self.url = url.rstrip("/")
        self._token = token
        self.session = session or requests.Session()
        self.timeout = timeout
        #: the server's clock (HTTP ``Date``) at the last answer, epoch seconds; lock leases use it
        self.server_time: float | None = None

    def __repr__(self) -> str:  # never the token
        return f"MLflowRest({self.url!r})"

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    def token_for_mlflow_client(self) -> str:
        """The token, for handing to the ``mlflow`` client (which reads ``MLFLOW_TRACKING_TOKEN``)."""
        return self._token or ""

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``GET`` sends ``body`` as query parameters, other methods as JSON."""
        where = f"MLflow at {self.url}"
        kwargs: dict[str, Any] = {"headers": self._headers(), "timeout": self.timeout}
        if method == "GET":
            kwargs["params"] = dict(body or {})
        else:
            kwargs["json"] = dict(body or {})
        try:
            resp = self.session.request(method, self.url + API + path, **kwargs)
        except requests.Timeout:
            raise RegistryUnavailableError(
                f"{where} did not answer {path} within {self.timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise RegistryUnavailableError(f"{where} is unreachable ({reason} on {path})") from None
        self._note_date(resp)
        if resp.status_code >= 500:
            raise RegistryUnavailableError(f"{where} answered {resp.status_code} to {path}: {_message(resp)}")
        if resp.status_code in (401, 403):
            raise RegistryError(
                f"{where} refused the credentials ({resp.status_code}) for {path}; check "
                "the token file or MLFLOW_TRACKING_TOKEN"
            )
        if resp.status_code >= 400:
            code = _error_code(resp)
            if code == "RESOURCE_DOES_NOT_EXIST" or resp.status_code == 404:
                raise MLflowNotFound(f"{where}: {_message(resp)}")
            if code == "RESOURCE_ALREADY_EXISTS":
                raise MLflowExists(f"{where}: {_message(resp)}")
            raise RegistryError(f"{where} rejected {path} ({resp.status_code}): {_message(resp)}")
        try:
            data = resp.json() if resp.content else {}
        except ValueError:
            raise RegistryUnavailableError(f"{where} answered {path} with invalid JSON") from None
        return data if isinstance(data, dict) else {}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.call("GET", path, params)

    def post(self, path: str, **body: Any) -> dict[str, Any]:
        return self.call("POST", path, body)

    def _note_date(self, resp: requests.Response) -> None:
        date = resp.headers.get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                self.server_time = parsedate_to_datetime(date).timestamp()

    # -- artifacts ---------------------------------------------------------------------------------

    def upload(self, local: Path, artifact_uri: str, dest: str) -> None:
        """Copy a local file or directory to ``artifact_uri/dest``."""
        if artifact_uri.startswith("mlflow-artifacts:"):
            base = artifact_uri.removeprefix("mlflow-artifacts:").lstrip("/")
            files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
            for path in files:
                rel = dest if local.is_file() else f"{dest}/{path.relative_to(local).as_posix()}"
                with path.open("rb") as handle:
                    self._artifact("PUT", f"{base}/{rel}", data=handle)
            return
        root = _local_root(artifact_uri)
        if root is not None:
            target = root / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if local.is_dir():
                shutil.copytree(local, target, dirs_exist_ok=True)
            else:
                shutil.copyfile(local, target)
            return
        self._with_mlflow().log_artifacts_to(local, artifact_uri, dest)

    def read_bytes(self, artifact_uri: str) -> bytes:
        """The content of one artifact file."""
        if artifact_uri.startswith("mlflow-artifacts:"):
            path = artifact_uri.removeprefix("mlflow-artifacts:").lstrip("/")
            return self._artifact("GET", path).content
        root = _local_root(artifact_uri)
        if root is not None:
            try:
                return root.read_bytes()
            except OSError as exc:
                raise RegistryUnavailableError(f"cannot read MLflow artifact {artifact_uri}: {exc}") from None
        return self._with_mlflow().read(artifact_uri)

    def _artifact(self, method: str, path: str, data: Any = None) -> requests.Response:
        url = f"{self.url}{ARTIFACTS_API}/{quote(path)}"
        try:
            resp = self.session.request(method, url, data=data, headers=self._headers(), timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryUnavailableError(
                f"MLflow at {self.url} is unreachable ({type(exc).__name__} on artifact {path})"
            ) from None
        if resp.status_code >= 500:
            raise RegistryUnavailableError(
                f"MLflow at {self.url} answered {resp.status_code} for artifact {path}"
            )
        if resp.status_code >= 400:
            raise RegistryError(f"MLflow at {self.url} refused artifact {path} ({resp.status_code})")
        return resp

    def _with_mlflow(self) -> _MlflowArtifacts:
        return _MlflowArtifacts(self.url)


class _MlflowArtifacts:
    """Artifact stores other than a local path or the server's proxy, through the ``mlflow`` package."""

    def __init__(self, url: str) -> None:
        try:
            import mlflow.artifacts  # noqa: F401
        except ImportError:
            raise RegistryError(
                "this MLflow server stores artifacts remotely (s3, gs, ...); install the 'mlflow' extra "
                "(pip install 'ml-incident-runbooks[mlflow]') to read and write them"
            ) from None
        self.url = url

    def read(self, artifact_uri: str) -> bytes:
        import mlflow.artifacts

        return Path(
            mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, tracking_uri=self.url)
        ).read_bytes()

    def log_artifacts_to(self, local: Path, artifact_uri: str, dest: str) -> None:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(artifact_uri)
        if local.is_dir():
            repo.log_artifacts(str(local), dest)
        else:
            parent = str(Path(dest).parent) if "/" in dest else None
            repo.log_artifact(str(local), parent)


def _local_root(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None


def _error_code(resp: requests.Response) -> str:
    try:
        return str(resp.json().get("error_code", ""))
    except ValueError:
        return ""


def _message(resp: requests.Response) -> str:
    try:
        message = str(resp.json().get("message", ""))
    except ValueError:
        message = resp.text
    return (message or resp.reason or "").strip().splitlines()[0][:300] if (message or resp.reason) else ""
