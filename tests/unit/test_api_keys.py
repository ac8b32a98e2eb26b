"""API keys: their shape, parsing, the constant-time check, the KeyStore, and the 401s of required mode."""

import base64
import io
import logging

import pytest

from api import create_app
from api.services import Services
from shared import api_keys, keys
from shared.api_keys import KeyStore, check_tenant, generate, parse, secret_digest, verify
from shared.config import Settings
from shared.errors import ConfigError, InvalidInput, NotFound, Unauthorized
from tests.fakes import FakeJobStore, FakeObjectStore, RecordingQueue
from tests.fixtures.badimages import noise_png

pytestmark = pytest.mark.unit

GOOD_ID, GOOD_SECRET = "0123456789ab", "A" * 21 + "-_" + "z" * 20


class HashRedis:
    """The few Redis commands KeyStore uses, over dicts (hashes and sets)."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.sets: dict[str, set[str]] = {}

    def pipeline(self, transaction: bool = True) -> "HashRedis.Pipe":
        return HashRedis.Pipe(self)

    def hset(self, name, key=None, value=None, mapping=None):
        self.hashes.setdefault(name, {}).update(mapping or {key: value})

    def hget(self, name, key):
        return self.hashes.get(name, {}).get(key)

    def hgetall(self, name):
        return dict(self.hashes.get(name, {}))

    def exists(self, name):
        return int(name in self.hashes)

    def sadd(self, name, *values):
        self.sets.setdefault(name, set()).update(values)

    def smembers(self, name):
        return set(self.sets.get(name, set()))

    class Pipe:
        def __init__(self, redis: "HashRedis") -> None:
            self._redis, self._calls = redis, []

        def __getattr__(self, name):
            return lambda *args, **kwargs: self._calls.append((name, args, kwargs))

        def execute(self):
            return [getattr(self._redis, name)(*args, **kwargs) for name, args, kwargs in self._calls]


def test_a_generated_key_is_sf_id_secret_with_32_random_bytes_of_secret():
    key, key_id, secret = generate()

    assert key == f"sf_{key_id}_{secret}"
    assert len(key_id) == 12 and int(key_id, 16) >= 0
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert parse(key) == (key_id, secret)
    assert len({generate()[0] for _ in range(50)}) == 50


MALFORMED = [
    "",
    "sf_",
    "sf__",
    f"sf_{GOOD_ID}",
    f"sf_{GOOD_ID}_",
    f"sk_{GOOD_ID}_{GOOD_SECRET}",
    f"SF_{GOOD_ID}_{GOOD_SECRET}",
    f"sf_{GOOD_ID.upper()}_{GOOD_SECRET}",
    f"sf_{GOOD_ID[:-1]}_{GOOD_SECRET}",
    f"sf_{GOOD_ID}0_{GOOD_SECRET}",
    f"sf_{GOOD_ID[:-1]}g_{GOOD_SECRET}",
    f"sf_{GOOD_ID}_{GOOD_SECRET[:-1]}",
    f"sf_{GOOD_ID}_{GOOD_SECRET}A",
    f"sf_{GOOD_ID}_{GOOD_SECRET[:-1]}=",
    f"sf_{GOOD_ID}_{GOOD_SECRET[:-1]}+",
    f"sf_{GOOD_ID}_{GOOD_SECRET[:-1]}/",
    f" sf_{GOOD_ID}_{GOOD_SECRET}",
    f"sf_{GOOD_ID}_{GOOD_SECRET}\n",
    f"sf-{GOOD_ID}-{GOOD_SECRET}",
    f"Bearer sf_{GOOD_ID}_{GOOD_SECRET}",
    f"sf_{GOOD_ID}_{GOOD_SECRET[:-1]}é",
    f"sf_٠١٢٣٤٥٦٧٨٩ab_{GOOD_SECRET}",
    "sf_" + "a" * 12 + "_" + "b" * 4000,
    None,
    b"sf_0123456789ab_" + GOOD_SECRET.encode(),
]


@pytest.mark.parametrize("key", MALFORMED, ids=range(len(MALFORMED)))
def test_a_malformed_key_is_refused_naming_the_authorization_field(key):
    with pytest.raises(Unauthorized) as refused:
        parse(key)

    assert refused.value.field == "authorization"


def test_a_well_formed_key_parses_even_with_dashes_and_underscores_in_its_secret():
    assert parse(f"sf_{GOOD_ID}_{GOOD_SECRET}") == (GOOD_ID, GOOD_SECRET)


def test_verify_compares_the_digests_with_hmac_compare_digest(monkeypatch):
    calls = []
    real = api_keys.hmac.compare_digest
    monkeypatch.setattr(api_keys.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    stored = secret_digest(GOOD_SECRET)

    assert verify(GOOD_SECRET, stored) is True
    assert verify(GOOD_SECRET[:-1] + "B", stored) is False
    assert calls == [(stored, stored), (secret_digest(GOOD_SECRET[:-1] + "B"), stored)]


@pytest.mark.parametrize("tenant", ["a", "studio-7", "0", "a" * 63])
def test_tenant_names_of_lowercase_letters_digits_and_dashes_are_accepted(tenant):
    assert check_tenant(tenant) == tenant


@pytest.mark.parametrize("tenant", ["", "-a", "A", "a_b", "a b", "a/b", "a" * 64, "é", "a\n"])
def test_other_tenant_names_are_refused_naming_the_rule(tenant):
    with pytest.raises(InvalidInput, match="a-z, 0-9 and '-'"):
        check_tenant(tenant)


def test_the_store_keeps_only_the_secret_s_digest_and_authenticates_until_revoked():
    redis = HashRedis()
    store = KeyStore(client=redis)
    made = store.create("studio-a")
    _, secret = parse(made.key)

    stored = redis.hashes[keys.api_key_key(made.record.id)]
    assert stored["secret_sha256"] == secret_digest(secret)
    assert secret not in repr(redis.hashes) + repr(redis.sets)
    assert store.authenticate(made.key).tenant == "studio-a"
    with pytest.raises(Unauthorized, match="not valid"):
        store.authenticate(made.key[:-1] + ("A" if made.key[-1] != "A" else "B"))
    with pytest.raises(Unauthorized, match="not valid"):
        store.authenticate(f"sf_{'f' * 12}_{secret}")
    assert store.revoke(made.record.id).revoked
    with pytest.raises(Unauthorized, match="revoked"):
        store.authenticate(made.key)
    assert [(k.id, k.tenant, k.revoked) for k in store.list()] == [(made.record.id, "studio-a", True)]


def test_revoking_twice_keeps_the_first_time_and_an_unknown_id_is_not_found():
    store = KeyStore(client=HashRedis())
    made = store.create("studio-a")
    first = store.revoke(made.record.id).revoked_at

    assert store.revoke(made.record.id).revoked_at == first
    with pytest.raises(NotFound):
        store.revoke("ffffffffffff")


def test_a_key_for_an_invalid_tenant_is_never_made():
    redis = HashRedis()
    with pytest.raises(InvalidInput):
        KeyStore(client=redis).create("Bad Name")
    assert redis.hashes == {}


def make_client(auth: str, api_keys_store: KeyStore | None):
    services = Services(
        settings=Settings(auth=auth),
        store=FakeJobStore(),
        objects=FakeObjectStore(),
        queue=RecordingQueue(),
        api_keys=api_keys_store,
    )
    return create_app(services=services).test_client(), services


def post_job(client, headers=None):
    data = {"content": (io.BytesIO(noise_png(40, 30, seed=1)), "c.png")}
    data["style"] = (io.BytesIO(noise_png(32, 32, seed=2)), "s.png")
    data.update(steps="3", max_dim="32")
    return client.post("/v1/jobs", data=data, content_type="multipart/form-data", headers=headers or {})


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-key"},
        bearer(f"sf_{GOOD_ID}_{GOOD_SECRET}"),
    ],
    ids=["none", "empty", "no-token", "basic", "malformed", "unknown"],
)
def test_required_mode_answers_401_with_the_error_shape_and_a_bearer_challenge(headers):
    client, services = make_client("required", KeyStore(client=HashRedis()))

    for response in (post_job(client, headers), client.get("/v1/jobs", headers=headers)):
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert response.get_json()["error"]["field"] == "authorization"
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="styleforge"')
    assert services.store.records == {}


def test_a_valid_key_creates_a_job_owned_by_its_tenant_and_a_revoked_one_is_refused_at_once():
    store = KeyStore(client=HashRedis())
    made = store.create("studio-a")
    client, services = make_client("required", store)

    response = post_job(client, bearer(made.key))
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["owner"] == "studio-a"
    assert client.get(f"/v1/jobs/{response.get_json()['id']}", headers=bearer(made.key)).status_code == 200
    store.revoke(made.record.id)
    refused = client.get(f"/v1/jobs/{response.get_json()['id']}", headers=bearer(made.key))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/", "/web/app.js", "/web/presets"])
def test_health_the_document_and_the_page_s_own_files_need_no_key(path):
    client, _ = make_client("required", KeyStore(client=HashRedis()))

    with client.get(path) as response:
        assert response.status_code == 200


def test_open_mode_warns_at_start_and_records_every_job_as_anonymous(caplog):
    with caplog.at_level(logging.WARNING, logger="styleforge.api"):
        client, _ = make_client("open", None)
    assert any("STYLEFORGE_AUTH=open" in record.message for record in caplog.records)

    response = post_job(client)
    assert response.status_code == 202
    assert response.get_json()["owner"] == "anonymous"


def test_required_mode_without_a_key_store_refuses_to_start():
    with pytest.raises(ConfigError, match="key store"):
        make_client("required", None)


def test_the_auth_setting_defaults_to_required_and_refuses_other_values():
    assert Settings().auth == "required"
    assert Settings.from_env({"STYLEFORGE_AUTH": "open"}).auth == "open"
    with pytest.raises(ConfigError, match="STYLEFORGE_AUTH"):
        Settings(auth="none")


def test_the_document_declares_the_bearer_scheme_and_a_401_on_every_v1_operation_in_required_mode():
    client, _ = make_client("required", KeyStore(client=HashRedis()))
    document = client.get("/openapi.json").get_json()

    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for operation in item.values():
            if path == "/metrics":  # its own scrape token, not an API key (tests/unit/test_metrics.py)
                continue
            guarded = path.startswith("/v1/")
            assert ("401" in operation["responses"]) is guarded, path
            assert (operation.get("security") == [{"apiKey": []}]) is guarded, path
    open_document = make_client("open", None)[0].get("/openapi.json").get_json()
    assert "securitySchemes" not in open_document["components"]
