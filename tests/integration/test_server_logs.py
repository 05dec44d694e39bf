"""A breached server's *logs* yield no secrets either (threat model row 10).

A real ``hotline server`` process logs at debug level (everything it would ever log) to a file
while two principals enrol, exchange cards and messages, and a hostile caller sends bad tokens
and malformed bodies full of marker strings. The file is then searched for every secret.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from harness import FAST_SCRYPT, PASSPHRASE, connect
from processes import ServerProcess

from hotline.client.device import HotlineClient
from hotline.records.custodian_keys import CustodianKeys, write_keys
from hotline.server.admin import issue_enrolment
from hotline.server.config import default_database_url
from hotline.store import open_store
from hotline.wire.encoding import b64d, b64e

pytestmark = pytest.mark.slow
DOMAIN = "logs.test"
TEXTS = ["Eyes only: the envoy lands at 0600", "Confirmed, 0600 at the east gate"]


async def enrol(server: ServerProcess, name: str, home: Path) -> tuple[HotlineClient, str]:
    store = await open_store(default_database_url(server.data_dir))
    try:
        token = await issue_enrolment(store, f"{name}@{DOMAIN}", time.time())
    finally:
        await store.close()
    client = await HotlineClient.register(
        home,
        PASSPHRASE,
        server_url=server.url,
        enrolment_token=token,
        handle=f"{name}@{DOMAIN}",
        display_name=name,
        scrypt=FAST_SCRYPT,
    )
    return client, token


def hostile_requests(url: str, markers: dict[str, str]) -> None:
    with httpx.Client(base_url=url, timeout=5) as http:
        bad_auth = {"authorization": f"Bearer {markers['forged bearer token']}"}
        assert http.get("/v1/inbox", headers=bad_auth).status_code == 401
        body = f'{{"to": "x@{DOMAIN}", "text": "{markers["plaintext in a bad body"]}"'
        assert http.post("/v1/messages", content=body, headers=bad_auth).status_code == 401
        assert http.post("/v1/auth/token", content=body).status_code == 400
        register = {
            "enrolment_token": markers["guessed enrolment token"],
            "handle": f"mallory@{DOMAIN}",
        }
        assert http.post("/v1/register", json=register).status_code == 400


async def test_server_logs_hold_no_secrets(tmp_path: Path) -> None:
    custodian = CustodianKeys.generate()
    write_keys(tmp_path / "custodian", custodian, "custodian pass", scrypt=FAST_SCRYPT)
    log = tmp_path / "server.log"
    server = ServerProcess(
        tmp_path / "server", DOMAIN, tmp_path / "custodian" / "custodian.pub", log_path=log
    )
    server.start()
    clients: list[HotlineClient] = []
    markers = {
        "forged bearer token": "forgedtoken" + b64e(b"\x07" * 24),
        "plaintext in a bad body": "Top secret marker in a malformed body",
        "guessed enrolment token": "guessedtoken" + b64e(b"\x09" * 24),
    }
    try:
        (washington, w_token), (ottawa, o_token) = [
            await enrol(server, name, tmp_path / name) for name in ("potus", "pm")
        ]
        clients += [washington, ottawa]
        await connect(washington, ottawa)
        await washington.send_text(ottawa.handle, TEXTS[0])
        await ottawa.sync()
        await ottawa.send_text(washington.handle, TEXTS[1])
        await washington.sync()
        hostile_requests(server.url, markers)
        secrets = dict(markers)
        secrets |= {"enrolment token potus": w_token, "enrolment token pm": o_token}
        secrets |= {f"message {i}": text for i, text in enumerate(TEXTS)}
        secrets["keystore passphrase"] = PASSPHRASE
        for client in clients:
            state = client.keystore.load()
            assert client.server.token is not None
            secrets[f"session token {client.handle}"] = client.server.token
            secrets[f"identity private key {client.handle}"] = state.identity_key
            secrets[f"pickle key {client.handle}"] = b64e(client.keystore.pickle_key)
            for invite in state.invites.values():
                secrets[f"invite secret {invite.invite_id}"] = invite.secret
    finally:
        for client in clients:
            await client.close()
        server.kill()
    text = log.read_bytes()
    # The log is not empty: the server really logged at debug level while all this happened.
    assert b"/v1/messages" in text and b"401" in text, text[:2000]
    leaked = [name for name, value in secrets.items() if value.encode() in text]
    raw = {n: b64d(v) for n, v in secrets.items() if n.startswith(("identity", "pickle"))}
    leaked += [name for name, value in raw.items() if value in text]
    leaked += ["custodian private key"] if custodian.hpke.to_bytes() in text else []
    assert leaked == []
