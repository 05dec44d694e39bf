"""Hotline's cryptographic *hazmat* layer: thin typed wrappers over vodozemac and cryptography.

Modules, one concept each (DESIGN.md "Cryptography"): :mod:`.identity` (Ed25519 identity keys,
domain-separated signatures), :mod:`.olm` (device accounts, Olm sessions), :mod:`.megolm`
(group sessions), :mod:`.pickles` (their state encrypted at rest), :mod:`.sas`
(interactive SAS verification), :mod:`.safety_number` (Signal numeric fingerprints),
:mod:`.passphrase` (keystore at rest), :mod:`.hpke` (RFC 9180 records sealing). No I/O, no clock.
"""
