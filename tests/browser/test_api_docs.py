"""The interactive API docs in Chromium with no internet (issue 13: they were a blank page
when Swagger UI could not be fetched from its CDN): every asset comes from the service,
the CSP refuses nothing, and the operations are listed."""

from __future__ import annotations

from playwright.sync_api import expect


def test_api_docs_render_offline_under_the_csp(portal, page):
    elsewhere: list[str] = []

    def only_here(route):
        if route.request.url.startswith(portal.url):
            route.continue_()
        else:  # no internet: anything else fails, as it would on a machine without a network
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto("/api/v1/docs")
    expect(page.get_by_role("heading", name="Lenalidomide REMS")).to_be_visible(timeout=15_000)
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/dispenses").first).to_be_visible()
    page.locator(".opblock-summary", has_text="/api/v1/audit/verify").first.click()
    expect(page.get_by_role("button", name="Try it out")).to_be_visible()
    assert "Content-Security-Policy" not in " ".join(problems)
    assert not problems, problems
    assert not elsewhere, elsewhere
