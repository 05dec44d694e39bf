"""The OpenAPI 3.1 document served at ``/openapi.json``, built from the msgspec structs."""

from __future__ import annotations

from typing import Any

import msgspec

from hotline import __version__
from hotline.wire import api, groups
from hotline.wire import delegation as deleg
from hotline.wire import device_link as link
from hotline.wire.codec import Signed
from hotline.wire.records import ConsistencyResponse, RecordsResponse, RecordsUpload, SignedHead

# (method, path, request struct or None, response struct or None, summary)
ROUTES: list[tuple[str, str, type | None, type | None, str]] = [
    ("post", "/v1/register", api.RegisterRequest, None, "Register a principal and first device"),
    ("post", "/v1/auth/challenge", api.ChallengeRequest, api.ChallengeResponse, "Get a challenge"),
    ("post", "/v1/auth/token", api.TokenRequest, api.TokenResponse, "Trade a signed challenge"),
    ("post", "/v1/keys", api.KeysUpload, api.KeysUploadResponse, "Publish one-time keys"),
    ("post", "/v1/keys/claim", api.ClaimRequest, api.ClaimResponse, "Claim a contact's keys"),
    ("get", "/v1/principals/{handle}/devices", None, api.DevicesResponse, "Signed device list"),
    ("put", "/v1/device-list", api.SignedListUpload, None, "Replace own signed device list"),
    ("put", "/v1/allowlist", api.SignedListUpload, None, "Replace own signed allowlist"),
    ("post", "/v1/delegations", deleg.GrantUpload, None, "Publish a signed grant to an aide"),
    ("post", "/v1/delegations/revoke", deleg.RevocationUpload, None, "Revoke a grant"),
    (
        "get",
        "/v1/principals/{handle}/delegations",
        None,
        deleg.DelegationsResponse,
        "A principal's active grants with their aides' signed device lists",
    ),
    ("post", "/v1/device-links", link.LinkCreate, link.LinkCreated, "New device waits to link"),
    ("post", "/v1/device-links/{link_id}/open", link.LinkProof, link.LinkOffer, "Read a link"),
    ("post", "/v1/device-links/{link_id}/approve", link.LinkApprove, None, "Approve a link"),
    ("post", "/v1/device-links/{link_id}/collect", link.LinkProof, link.LinkCollected, "Poll"),
    ("post", "/v1/invites", api.InviteCreate, None, "Register a card's invite"),
    ("delete", "/v1/invites/{invite_id}", None, None, "Revoke an invite"),
    ("post", "/v1/contact-requests", api.ContactRequest, None, "Ask a card owner to connect"),
    ("post", "/v1/messages", api.SendRequest, api.SendResponse, "Relay a ciphertext message"),
    ("get", "/v1/inbox", None, api.InboxResponse, "Read the device mailbox"),
    ("post", "/v1/inbox/ack", api.AckRequest, api.AckResponse, "Delete acknowledged items"),
    ("get", "/v1/records/policy", None, Signed, "Signed records banner and custodian key"),
    ("post", "/v1/records", RecordsUpload, RecordsResponse, "Append sealed records"),
    ("get", "/v1/records/tree-head", None, SignedHead, "Latest signed tree head"),
    ("get", "/v1/records/consistency", None, ConsistencyResponse, "Consistency proof"),
    ("put", "/v1/groups", groups.GroupMembershipUpload, None, "Store my copy of a group roster"),
    ("delete", "/v1/groups/{group_id}", None, None, "Forget a group (left or removed)"),
    ("post", "/v1/groups/messages", groups.GroupSendRequest, api.SendResponse, "Group message"),
    ("get", "/v1/server", None, api.ServerInfo, "Server identity"),
    ("get", "/health", None, api.Health, "Liveness"),
]


def build_openapi() -> dict[str, Any]:
    types = [t for _, _, req, resp, _ in ROUTES for t in (req, resp) if t is not None]
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    by_type = dict(zip(types, schemas, strict=True))
    problem = {"description": "Error", "content": {"application/problem+json": {}}}
    paths: dict[str, dict[str, Any]] = {}
    for method, path, req, resp, summary in ROUTES:
        op: dict[str, Any] = {"summary": summary, "responses": {"default": problem}}
        if req is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": by_type[req]}},
            }
        ok_body: dict[str, Any] = {"description": "OK"}
        if resp is not None:
            ok_body["content"] = {"application/json": {"schema": by_type[resp]}}
        op["responses"]["200"] = ok_body
        params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hotline home server", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"device": {"type": "http", "scheme": "bearer"}},
        },
    }
