"""The interactive API docs (/api/v1/docs) are served with every asset from this service,
under a CSP without inline script (issue 13: "a blank page with no internet")."""

from __future__ import annotations

import re

from rems_service.api.openapi import SWAGGER_LOGO_STYLE, _csp_hash


def test_docs_page_loads_every_asset_from_this_service(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, html
    for url in urls:
        assert url.startswith("/"), url  # nothing from another host
        assert client.get(url).status_code == 200, url
    assert "<script>" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script
    assert re.search(r'src="/api/v1/docs/assets/swagger-ui-bundle\.js"', html)
    assert 'data-spec-url="/api/v1/openapi.json"' in html


def test_docs_page_csp_refuses_inline_script_and_allows_only_the_logo_style(client):
    csp = client.get("/api/v1/docs").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == f"'self' {_csp_hash(SWAGGER_LOGO_STYLE)}"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_assets_are_swagger_ui_and_nothing_else(client):
    bundle = client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and bundle.mimetype in ("text/javascript", "application/javascript")
    assert b"SwaggerUIBundle" in bundle.get_data()
    assert client.get("/api/v1/docs/assets/swagger-ui.css").mimetype == "text/css"
    assert client.get("/api/v1/docs/assets/../../../../etc/passwd").status_code == 404
    assert client.get("/api/v1/docs/assets/nothing.js").status_code == 404
    init = client.get("/api/v1/docs/init.js")
    assert init.mimetype == "text/javascript" and b"SwaggerUIBundle(" in init.get_data()
