"""Encryption of credentials we store (platform tokens), with Fernet keyed by SECRET_KEY.

SECRET_KEY may be any string of 16+ characters; HKDF stretches it into a Fernet key, so
operators need not produce base64 themselves. Rotating SECRET_KEY makes stored tokens
unreadable: they are fetched again from the platform.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["Vault", "VaultError"]


class VaultError(Exception):
    """A stored value could not be decrypted (tampered with, or SECRET_KEY changed)."""


class Vault:
    def __init__(self, secret_key: str):
        if not secret_key:
            raise ValueError("SECRET_KEY is required to store credentials")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"reviewbridge-vault-v1")
        self._fernet = Fernet(base64.urlsafe_b64encode(derived.derive(secret_key.encode())))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise VaultError("stored credential cannot be decrypted with the current SECRET_KEY") from None
