"""The audit chain's key: a keyed MAC on every entry and a signature on every anchor.

The hash chain proves the entries agree with each other; it cannot prove who
wrote them, since anyone who can write the table can recompute every hash.
The MAC can: it is HMAC-SHA256 (the ``cryptography`` library's) of the entry's
hash under a key the database never holds (``AUDIT_KEY`` / ``AUDIT_KEY_FILE``,
or in the embedded default a key file generated in the instance folder on
first run). A database administrator who rewrites, forges or appends entries
without the key leaves entries whose MAC does not check.

Each use has its own label inside the MAC input (entries and anchors can never
be swapped for each other). The key is loaded once per process
(``use_key``); computing a MAC is one HMAC over 64 bytes.
"""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from config.settings import ConfigurationError, load_settings
from workflows.audit import canonical_json

#: The embedded default's key file, in the instance folder (created on first run, mode 0600).
DEFAULT_KEY_FILE = "audit-mac.key"
#: Labels of the two things the key signs.
ENTRY_LABEL = b"rems-audit-entry-v1\n"
ANCHOR_LABEL = b"rems-audit-anchor-v1\n"
CHECKPOINT_LABEL = b"rems-audit-checkpoint-v1\n"
#: Shortest key accepted (bytes): HMAC-SHA256 wants at least its output size.
MIN_KEY_BYTES = 32


class AuditKeyError(ConfigurationError):
    """No usable audit key: the message names the setting to fix."""


@dataclass(frozen=True)
class AuditKey:
    """A secret HMAC-SHA256 key and its public id (the first 16 hex digits of SHA-256 of
    the key: names which key signed an anchor without revealing it)."""

    secret: bytes = field(repr=False)
    #: The HMAC context keyed once; each MAC copies it (a third of the cost of keying anew).
    _keyed: crypto_hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keyed", crypto_hmac.HMAC(self.secret, hashes.SHA256()))

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"rems-audit-key-id\n" + self.secret).hexdigest()[:16]

    def _mac(self, label: bytes, message: bytes) -> str:
        h = self._keyed.copy()
        h.update(label + message)
        return h.finalize().hex()

    def entry_mac(self, entry_hash: str) -> str:
        """The MAC of an entry: over its hash, which covers its content and its predecessor's hash."""
        return self._mac(ENTRY_LABEL, entry_hash.encode("ascii"))

    def entry_mac_matches(self, entry_hash: str, mac: str | None) -> bool:
        return mac is not None and std_hmac.compare_digest(self.entry_mac(entry_hash), mac)

    def entry_checker(self) -> Callable[[str, str], bool]:
        """``entry_mac_matches`` for a run of entries (verification): the same MAC, without
        the method calls per entry."""
        keyed, label, same = self._keyed, ENTRY_LABEL, std_hmac.compare_digest

        def matches(entry_hash: str, mac: str) -> bool:
            h = keyed.copy()
            h.update(label + entry_hash.encode("ascii"))
            return same(h.finalize().hex(), mac)

        return matches

    def checkpoint_mac(self, seq: int, entry_hash: str) -> str:
        """The MAC of a checkpoint: the seq and hash up to which the chain verified."""
        return self._mac(CHECKPOINT_LABEL, f"{seq}:{entry_hash}".encode("ascii"))

    def checkpoint_mac_matches(self, seq: int, entry_hash: str, mac: str | None) -> bool:
        return mac is not None and std_hmac.compare_digest(self.checkpoint_mac(seq, entry_hash), mac)

    def sign_anchor(self, fields: Mapping[str, Any]) -> str:
        """The signature of an anchor: over the canonical JSON of its fields (signature left out)."""
        return self._mac(ANCHOR_LABEL, canonical_json(dict(fields)).encode("utf-8"))

    def anchor_signature_matches(self, fields: Mapping[str, Any], signature: Any) -> bool:
        return isinstance(signature, str) and std_hmac.compare_digest(self.sign_anchor(fields), signature)


def parse_key(text: str, where: str) -> AuditKey:
    """A key written as hex (64 or more digits)."""
    value = text.strip()
    try:
        secret = bytes.fromhex(value)
    except ValueError:
        raise AuditKeyError(
            f"{where} must be hex digits (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        ) from None
    if len(secret) < MIN_KEY_BYTES:
        raise AuditKeyError(f"{where} must hold at least {MIN_KEY_BYTES} bytes ({2 * MIN_KEY_BYTES} hex digits)")
    return AuditKey(secret)


def _read_or_create(path: Path) -> AuditKey:
    """Read the key file; create it (random, mode 0600) when missing. Two processes starting
    at once both end up with the file the first one wrote (exclusive create)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    return parse_key(path.read_text(), f"the audit key file {path.name}")


def load_key(settings: Mapping[str, Any], instance_path: str | None) -> AuditKey:
    """The key the settings name: ``AUDIT_KEY`` (hex), else ``AUDIT_KEY_FILE`` (must exist),
    else the instance folder's ``audit-mac.key`` (generated on first run)."""
    if settings.get("AUDIT_KEY"):
        return parse_key(str(settings["AUDIT_KEY"]), "REMS_AUDIT_KEY")
    if settings.get("AUDIT_KEY_FILE"):
        path = Path(str(settings["AUDIT_KEY_FILE"])).expanduser()
        if not path.is_file():
            raise AuditKeyError(f"REMS_AUDIT_KEY_FILE names no file ({path.name})")
        return parse_key(path.read_text(), "the file REMS_AUDIT_KEY_FILE names")
    if instance_path is None or settings.get("ENV_NAME") == "production":
        # Production names its key: a key generated on one host would differ on the next
        # and be lost with the instance folder, and nothing signed with it would verify.
        raise AuditKeyError("no audit key: set REMS_AUDIT_KEY or REMS_AUDIT_KEY_FILE")
    return _read_or_create(Path(instance_path) / DEFAULT_KEY_FILE)


_current: AuditKey | None = None


def use_key(key: AuditKey) -> None:
    """Make ``key`` the one this process signs with (the runtime calls this once at start)."""
    global _current
    _current = key


def current_key() -> AuditKey:
    """The process's key; before a runtime was built, the one the environment's settings name
    (``REMS_AUDIT_KEY`` / ``REMS_AUDIT_KEY_FILE``, or the test settings' fixed key)."""
    global _current
    if _current is None:
        _current = load_key(load_settings(), None)
    return _current
