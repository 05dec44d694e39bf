"""Typed errors of the custodian's tools, each with a stable ``code`` and its evidence.

They extend :class:`~hotline.wire.errors.HotlineError`, so the CLI shows them as
``[code] detail`` like every other Hotline error. Verification collects them in its report
rather than stopping at the first one, so a custodian sees every problem at once.
"""

from __future__ import annotations

from hotline.wire.errors import HotlineError


class CustodianError(HotlineError):
    """Base of the custodian tools' errors."""

    code = "custodian_error"
    status = 500
    title = "Custodian tool error"


class LogKeyUnavailable(CustodianError):
    """No public key of the log was given or found (``--log-key`` or the data dir)."""

    code = "log_key_missing"
    title = "The log's public key is needed"


class LeafHashMismatch(CustodianError):
    """An entry's bytes do not hash to its leaf hash (``index``, ``stored``, ``calculated``)."""

    code = "leaf_hash_mismatch"
    title = "Entry bytes changed"


class EntryMalformed(CustodianError):
    """An entry is not a sealed record, or names another record id than its row (``index``)."""

    code = "entry_malformed"
    title = "Entry is not a sealed record"


class LogIndexGap(CustodianError):
    """Entry indices are not sequential (``expected``, ``got``): entries were deleted."""

    code = "log_index_gap"
    title = "Entries missing from the log"


class EntryBeyondLog(CustodianError):
    """An entry sits at or beyond the recorded log size (``index``, ``size``): inserted."""

    code = "entry_beyond_log"
    title = "Entry beyond the log's size"


class TreeHeadInvalid(CustodianError):
    """A stored tree head whose signature or bytes do not verify (``size``)."""

    code = "tree_head_invalid"
    title = "Tree head does not verify"


class TreeHeadRootMismatch(CustodianError):
    """A signed head's root is not the root recomputed from storage at its size.

    Evidence: ``size``, ``expected`` (signed root), ``calculated``, and the leaves it
    implicates, ``[first_leaf, end_leaf)`` (between the last good head and this one).
    """

    code = "tree_head_root_mismatch"
    title = "Log does not match a signed tree head"


class TreeHeadBeyondLog(CustodianError):
    """A signed head covers more entries than storage holds (``size``, ``log_size``)."""

    code = "tree_head_beyond_log"
    title = "Log shorter than a signed tree head"


class BagInvalid(CustodianError):
    """An exported bag fails validation; ``detail`` names the file, line and field."""

    code = "bag_invalid"
    title = "Export bag does not verify"


class RecordsGap(CustodianError):
    """Completeness found missing or broken records (``problems`` counts them)."""

    code = "records_gap"
    title = "Records missing from the archive"


class AttestationMismatch(CustodianError):
    """Another custodian's attested transcript differs from ours (``streams`` names them)."""

    code = "attestation_mismatch"
    title = "Transcripts differ"


class ActionLogBroken(CustodianError):
    """The custodian action log was changed (``line`` names the first bad line)."""

    code = "action_log_broken"
    title = "Custodian action log altered"
