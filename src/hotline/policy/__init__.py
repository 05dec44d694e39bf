"""The organisation's signed device policy: parsing, signing, verifying (no I/O but key files)."""
