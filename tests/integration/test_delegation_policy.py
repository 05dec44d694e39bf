"""The organisation's signed policy limits aides (``[aides]``): refused by the client, by the
server for a client that skips its check, and the refusal is on the record."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from harness import CUSTODIAN, connect, start_server
from test_policy import ORG, enrol

from hotline.client.delegation import grant_aide
from hotline.client.device import HotlineClient
from hotline.policy.document import parse_toml, sign_policy
from hotline.policy.grants import sign_grant
from hotline.policy.keys import public_bytes
from hotline.records.sealing import open_record
from hotline.wire.delegation import DelegationGrant, GrantUpload
from hotline.wire.encoding import b64e
from hotline.wire.errors import ForbiddenByPolicy

POLICY = """
organisation = "Government of Testland"
version = 3
issued_at = 1800000000

[aides]
allowed = {allowed}
max_aides = 1
max_grant_days = 2
"""


def refusals(db: Path) -> list[dict[str, str]]:
    with sqlite3.connect(db) as conn:
        leaves = [bytes(r[0]) for r in conn.execute("SELECT leaf FROM log_entries ORDER BY idx")]
    opened = (open_record(CUSTODIAN, leaf) for leaf in leaves)
    return [r.detail for r in opened if r.kind == "policy" and r.detail.get("event") == "refused"]


def test_policy_without_aides_section_still_parses() -> None:
    old = parse_toml('organisation = "X"\nversion = 1\nissued_at = 0\n')
    assert old.aides.allowed and old.aides.max_aides == 2
    new = parse_toml(POLICY.format(allowed="false"))
    assert not new.aides.allowed and new.aides.max_grant_days == 2


@pytest.mark.parametrize("allowed", ["false", "true"])
async def test_policy_limits_grants(tmp_path: Path, allowed: str) -> None:
    policy = sign_policy(parse_toml(POLICY.format(allowed=allowed)), ORG)
    server, stop = await start_server(tmp_path / "s.db", policy=policy, org_key=public_bytes(ORG))
    clients: list[HotlineClient] = []
    try:
        potus, chief = [await enrol(server, tmp_path, n) for n in ("potus", "chief")]
        clients += [potus, chief]
        await connect(potus, chief)
        days = 1 if allowed == "false" else 5  # allowed: too long a grant
        with pytest.raises(ForbiddenByPolicy):  # the client does not offer it
            await grant_aide(potus, chief.handle, days=days)
        now = int(time.time())
        grant = DelegationGrant(  # a modified client signs it anyway: the server refuses
            v=1,
            grant_id="g1",
            principal=potus.handle,
            principal_identity_key=b64e(potus.identity().public.to_bytes()),
            aide=chief.handle,
            aide_identity_key=b64e(chief.identity().public.to_bytes()),
            rights=["read", "answer"],
            issued_at=now,
            expires_at=now + days * 86400,
        )
        with pytest.raises(ForbiddenByPolicy):
            await potus.server.call(
                "POST", "/v1/delegations", GrantUpload(grant=sign_grant(potus.identity(), grant))
            )
        rule = "aides.allowed" if allowed == "false" else "aides.max_grant_days"
        assert rule in {d["rule"] for d in refusals(server.db_path)}
        if allowed == "true":
            await grant_aide(potus, chief.handle, days=1)  # within the limits: fine
    finally:
        for client in clients:
            await client.close()
        await stop()
