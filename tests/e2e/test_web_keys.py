"""The web page against an API in required mode: without a key it says so; with one (kept in localStorage)
its job runs to the result, followed by polling (EventSource cannot send the key), owned by its tenant; the
House styles section lists that tenant's styles once the key is entered."""

import uuid

import pytest
import requests
from playwright.sync_api import expect

from devstack.processes import ApiServer
from shared.api_keys import KeyStore
from shared.store import connect_redis
from tests.integration.helpers import CONTENT, STYLE

pytestmark = pytest.mark.e2e

JOB_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def keyed_api(stack_settings, worker):
    """The API in required mode in front of the real worker, and a key of the tenant `studio-web`."""
    from api import create_app

    settings = stack_settings.override(auth="required")
    server = ApiServer(create_app(settings))
    made = KeyStore(client=connect_redis(settings.redis_url)).create("studio-web")
    yield server, made.key
    server.stop()


def fill_job(page) -> None:
    page.set_input_files("#content", CONTENT / "chelsea.png")
    page.set_input_files("#style", STYLE / "hubble_deep_field.jpg")
    page.locator("#steps").fill("6")
    page.locator("#max_dim").fill("32")


def test_without_a_key_the_page_names_the_authorization_field(keyed_api, page):
    server, _ = keyed_api
    page.goto(server.url)
    fill_job(page)
    page.click("#submit")

    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("authorization: an API key is required")


def test_with_a_key_the_page_runs_a_job_to_its_result_owned_by_the_key_s_tenant(keyed_api, page):
    server, key = keyed_api
    page.goto(server.url)
    page.locator("#authorization").fill(key)
    page.locator("#authorization").dispatch_event("change")
    page.reload()  # kept in localStorage: the field comes back filled
    expect(page.locator("#authorization")).to_have_value(key)
    fill_job(page)
    page.click("#submit")

    expect(page.locator("#result-img")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("succeeded")
    job_id = page.locator("#job-id").text_content()
    expect(page.locator("#recent-list li").first).to_have_attribute("data-id", job_id)
    job = requests.get(
        f"{server.url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert job.json()["owner"] == "studio-web"


def test_the_house_styles_section_asks_for_a_key_then_lists_that_key_s_tenant_s_styles(keyed_api, page):
    server, key = keyed_api
    name = f"studio look {uuid.uuid4().hex[:6]}"
    made = requests.post(
        f"{server.url}/v1/styles",
        headers={"Authorization": f"Bearer {key}"},
        files={"style": ("s.jpg", (STYLE / "hubble_deep_field.jpg").read_bytes())},
        data={"name": name},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    page.goto(server.url)
    expect(page.locator("#styles-empty")).to_contain_text("Enter your API key", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#styles-error")).to_be_hidden()  # a missing key is no error of the section

    page.locator("#authorization").fill(key)
    page.locator("#authorization").dispatch_event("change")
    card = page.locator(f'#styles-list li[data-id="{made.json()["id"]}"]')
    expect(card).to_contain_text(name, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#styles-empty")).to_be_hidden()
