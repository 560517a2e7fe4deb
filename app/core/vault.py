"""Encryption of credentials we store (platform tokens), with Fernet keyed by SECRET_KEY.

SECRET_KEY may be any string of 16+ characters; HKDF stretches it into a Fernet key, so
operators need not produce base64 themselves. Rotation: the new key becomes SECRET_KEY and the old
one moves to SECRET_KEY_FALLBACKS; stored values still open (MultiFernet tries every key) and new
ones are sealed with SECRET_KEY; `reviewbridge accounts rotate-keys` re-seals the old ones, after
which the fallback can go.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["Vault", "VaultError"]


class VaultError(Exception):
    """A stored value could not be decrypted (tampered with, or sealed with a key we no longer hold)."""


class Vault:
    def __init__(self, secret_key: str, fallbacks: Sequence[str] = ()):
        if not secret_key:
            raise ValueError("SECRET_KEY is required to store credentials")
        self._fernet = MultiFernet([_fernet(key) for key in (secret_key, *fallbacks)])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise VaultError(_UNREADABLE) from None

    def reseal(self, token: str) -> str:
        """The same value sealed with SECRET_KEY (a value sealed with it already comes back anew)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise VaultError(_UNREADABLE) from None


_UNREADABLE = "stored credential cannot be decrypted with SECRET_KEY or any of SECRET_KEY_FALLBACKS"


def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"reviewbridge-vault-v1")
    return Fernet(base64.urlsafe_b64encode(derived.derive(secret_key.encode())))
