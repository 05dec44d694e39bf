"""The error tree: stable, unique codes that survive a round trip through problem+json."""

from __future__ import annotations

import inspect

from hotline.wire import errors


def test_every_error_class_is_listed_with_a_unique_code() -> None:
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.HotlineError)
    ]
    assert set(classes) == set(errors.ALL_ERRORS)
    codes = [c.code for c in errors.ALL_ERRORS]
    assert len(codes) == len(set(codes)), "two error classes share a code"


def test_problem_round_trip_keeps_type_and_evidence() -> None:
    for cls in errors.ALL_ERRORS:
        error = cls("what happened", evidence=1)
        back = errors.error_from_problem(error.to_problem())
        assert type(back) is cls
        assert back.detail == "what happened"
        assert back.extra == {"evidence": 1}
        assert 400 <= error.status <= 599


def test_delegation_and_admin_codes_are_stable() -> None:
    """Clients and peers match on these codes: they must never change."""
    assert (errors.NotDelegated.code, errors.NotDelegated.status) == ("not_delegated", 403)
    assert (errors.DeviceBlocked.code, errors.DeviceBlocked.status) == ("device_blocked", 403)
