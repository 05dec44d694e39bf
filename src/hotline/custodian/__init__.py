"""The records custodian's tools: they run offline, against a copy of the home server's log.

Modules, one per custodian task:

* :mod:`~hotline.custodian.source` — opening the log (store URL or server data dir), the log's
  public key, streaming entries and opening sealed records with the custodian key.
* :mod:`~hotline.custodian.verify_log` — recompute the whole Merkle log and check every signed
  tree head (RFC 9162 §2.1, §4.10).
* :mod:`~hotline.custodian.search` — decrypt and filter records.
* :mod:`~hotline.custodian.export` / :mod:`~hotline.custodian.verify_export` — BagIt bags
  (RFC 8493) that verify offline; :mod:`~hotline.custodian.rendering` renders transcripts and
  RFC 5322 mail.
* :mod:`~hotline.custodian.completeness` — per-stream hash chains: gaps, breaks, one-sided
  captures, and the transcript digest clients compute.
* :mod:`~hotline.custodian.attestation` — signed, content-free transcript digests exchanged
  between two governments' custodians.
* :mod:`~hotline.custodian.pending` — the 20-day capture deadline of 44 U.S.C. 2209.
* :mod:`~hotline.custodian.actions` — the custodian's own append-only, signed, hash-chained
  action log (exports, searches, attestations, legal holds, retention).

Records are never deleted by any of these tools.
"""
