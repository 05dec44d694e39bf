"""Binding the DTLS certificate to the end-to-end signalling (RFC 8122 ``a=fingerprint``).

The SDP travels inside Olm, so the fingerprints it carries come from the contact's device and
no server or network can change them. After the DTLS handshake (RFC 5763 §5) the certificate
the peer actually presented must hash to those fingerprints; otherwise someone else terminated
the media and the call must fail. aiortc runs the same comparison against the SDP it was given;
this module re-checks against the SDP *as received over the end-to-end channel*, independently
of how the SDP reached the media stack, and produces the evidence for the error.
"""

from __future__ import annotations

import hmac
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from hotline.calls.errors import DtlsFingerprintMismatch

#: the hash functions RFC 8122 §5 names that we accept (weaker ones are ignored)
HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha-256": hashes.SHA256(),
    "sha-384": hashes.SHA384(),
    "sha-512": hashes.SHA512(),
}
_LINE = re.compile(r"^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$", re.MULTILINE)


def sdp_fingerprints(sdp: str) -> list[tuple[str, str]]:
    """The ``(algorithm, VALUE)`` pairs of every ``a=fingerprint`` line, normalised."""
    return [(alg.lower(), value.upper()) for alg, value in _LINE.findall(sdp)]


def certificate_fingerprint(certificate: x509.Certificate, algorithm: str) -> str:
    """``AB:CD:...`` of the certificate's DER under ``algorithm`` (e.g. ``sha-256``)."""
    digest = certificate.fingerprint(HASHES[algorithm])
    return ":".join(f"{b:02X}" for b in digest)


def check_certificate(certificate: x509.Certificate | None, e2e_sdp: str) -> None:
    """Check that ``certificate`` matches every supported fingerprint of ``e2e_sdp``.

    Raises:
        DtlsFingerprintMismatch: no certificate, no usable fingerprint, or a mismatch.
    """
    usable = [(alg, value) for alg, value in sdp_fingerprints(e2e_sdp) if alg in HASHES]
    if not usable:
        raise DtlsFingerprintMismatch(
            "the end-to-end SDP carries no usable DTLS fingerprint", algorithm="", expected=""
        )
    for algorithm, expected in usable:
        presented = certificate_fingerprint(certificate, algorithm) if certificate else ""
        if not hmac.compare_digest(presented, expected):
            raise DtlsFingerprintMismatch(
                f"the media peer presented a DTLS certificate with {algorithm} "
                f"{presented or '(none)'}, but the contact's end-to-end signalling says "
                f"{expected}: a man in the middle, or SDP altered outside the end-to-end "
                "channel; the call is refused",
                algorithm=algorithm,
                expected=expected,
                presented=presented,
            )


__all__ = ["HASHES", "certificate_fingerprint", "check_certificate", "sdp_fingerprints"]
