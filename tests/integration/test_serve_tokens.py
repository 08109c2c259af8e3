"""Token files as ``receiver serve`` reads them: one shared by webhook and admin is refused with a
one-line error; one readable by others is accepted with a warning (issue 14, part 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.serve_process import REPO, start_serve


def test_the_same_token_for_webhook_and_admin_is_refused(tmp_path: Path) -> None:
    for name in ("hook", "admin"):
        (tmp_path / name).write_text("one-token-for-both\n")
        (tmp_path / name).chmod(0o600)
    result = subprocess.run(
        [
            sys.executable, "-m", "receiver.cli", "serve", "--port", "0",
            "--data-dir", str(tmp_path / "data"), "--runbooks", str(REPO / "runbooks"),
            "--webhook-token-file", str(tmp_path / "hook"), "--admin-token-file", str(tmp_path / "admin"),
        ],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "error: admin_token: the same value as the webhook credential" in output
    assert "Traceback" not in output and "one-token-for-both" not in output


def test_a_token_file_readable_by_others_is_warned_about(tmp_path: Path) -> None:
    tight = start_serve(tmp_path / "tight")
    assert "readable or writable by others" not in tight.stop()
    loose = start_serve(tmp_path / "loose", token_mode=0o644)
    assert loose.post(b"{}").status_code == 400  # accepted: it still runs
    output = loose.stop()
    assert "readable or writable by others (mode 644); chmod 600 it" in output
    assert "hook-token-for-serve-tests" not in output
