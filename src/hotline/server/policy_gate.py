"""Server-side enforcement of the organisation's signed policy.

A modified client gains nothing by skipping its own checks: the server refuses what policy
forbids with ``forbidden_by_policy``, and records each refusal (sealed to the custodian) so the
archive shows the attempt. Content is end-to-end encrypted, so for messages the server enforces
on the *declared* content class; the recipient's device checks the declaration against the
decrypted envelope and drops a message that lied (see ``client.inbox``).
"""

from __future__ import annotations

from typing import NoReturn

from hotline.policy.document import open_policy
from hotline.server.context import Caller, ServerState
from hotline.wire.errors import ForbiddenByPolicy, MalformedInput
from hotline.wire.policy import ContentClass, Policy


def load_policy(state: ServerState) -> Policy | None:
    """Verify the configured policy at start-up.

    Raises:
        BadSignature: not signed by the configured organisation key.
        MalformedInput: disappearing messages switched on while a records archive runs.
    """
    config = state.config
    if config.policy is None or config.org_key is None:
        return None
    policy = open_policy(config.policy, config.org_key)
    if policy.features.disappearing_messages and config.archive is not None:
        raise MalformedInput("disappearing messages cannot be on where a records law applies")
    return policy


async def record_policy(state: ServerState) -> None:
    """Put the policy in force on the record (once per version)."""
    policy = state.policy
    if policy is None or state.records is None:
        return
    detail = {
        "event": "in_force",
        "version": str(policy.version),
        "organisation": policy.organisation,
    }
    await state.records.server_record(state.store, "policy", "", detail, state.now())


async def refuse(state: ServerState, caller: Caller, rule: str, detail: str) -> NoReturn:
    """Record the refusal, then raise it. Raises: ForbiddenByPolicy."""
    if state.records is not None:
        await state.records.server_record(
            state.store,
            "policy",
            caller.handle,
            {"event": "refused", "rule": rule, "detail": detail, "device": caller.device_id},
            state.now(),
        )
    raise ForbiddenByPolicy(f"the organisation's policy forbids this: {detail}", rule=rule)


async def check_contacts(state: ServerState, caller: Caller, count: int) -> None:
    if state.policy is not None and count > state.policy.max_contacts:
        await refuse(
            state, caller, "max_contacts", f"{count} contacts; at most {state.policy.max_contacts}"
        )


async def check_devices(state: ServerState, caller: Caller, count: int) -> None:
    if state.policy is not None and count > state.policy.max_devices:
        await refuse(
            state, caller, "max_devices", f"{count} devices; at most {state.policy.max_devices}"
        )


async def check_card_validity(state: ServerState, caller: Caller, expires_at: float) -> None:
    if state.policy is None:
        return
    days = (expires_at - state.now()) / 86400
    if days > state.policy.card_validity_days + 1 / 24:
        await refuse(
            state,
            caller,
            "card_validity_days",
            f"a card valid {days:.0f} days; at most {state.policy.card_validity_days}",
        )


async def check_content(state: ServerState, caller: Caller, content: ContentClass) -> None:
    if state.policy is not None and content == "call" and not state.policy.features.voice_calls:
        await refuse(state, caller, "voice_calls", "voice calls are off")
