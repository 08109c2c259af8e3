"""The review Markdown of the real ``receiver serve`` process, rendered by a real CommonMark parser: a
title or model holding backticks, HTML or link syntax shows literally and adds no markup (issue 14)."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt

from tests.support.payloads import alert, notification, write_runbooks
from tests.support.realparts import wait_until
from tests.support.serve_process import start_serve

HOSTILE = "fraud` <img src=x onerror=alert(1)> [click](http://evil) **bold** ``` | x"


def test_review_shows_title_and_model_literally(tmp_path: Path) -> None:
    runbooks = write_runbooks(tmp_path / "runbooks")
    drift = runbooks / "drift.yml"
    drift.write_text(
        drift.read_text().replace("title: Feature drift", "title: 'Drift `on` <b>{x}</b> *now*'")
    )
    serve = start_serve(tmp_path, runbooks_dir=runbooks, responses=False)
    try:
        assert serve.post(notification(alert(model=HOSTILE))).status_code == 200
        listed = wait_until(lambda: serve.get("/api/v1/incidents").json()["incidents"], timeout=10)
        review = serve.get(f"/api/v1/incidents/{listed[0]['id']}/review")
        assert review.status_code == 200, review.text
        markdown = review.text
    finally:
        serve.stop()
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert not re.search(r"<(img|b|a)\b", html), html[:2000]  # no tag, link or bold from the data
    heading = re.search(r"<h1>(.*?)</h1>", html)
    assert heading is not None and "Drift `on` &lt;b&gt;{x}&lt;/b&gt; *now*" in heading.group(1)
    assert "[click](http://evil) **bold** ``` | x" in heading.group(1)
    model_line = next(line for line in html.splitlines() if "<strong>Model:</strong>" in line)
    code = re.search(r"<code>(.*?)</code>", model_line)
    assert code is not None
    shown = (
        code.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    )
    assert shown == HOSTILE
