"""Vault: stored credentials encrypted under SECRET_KEY, and unreadable under any other key."""

from __future__ import annotations

import pytest

from app.core.vault import Vault, VaultError

SECRET_KEY = "test-secret-key-0123456789abcdef"
OTHER_SECRET_KEY = "rotated-secret-key-fedcba9876543210"
CREDENTIAL = "ctp-access-token-eyJhbGciOiJIUzI1NiJ9.é✓"


def test_vault_round_trips_a_credential():
    vault = Vault(SECRET_KEY)

    assert vault.decrypt(vault.encrypt(CREDENTIAL)) == CREDENTIAL


def test_vault_round_trips_across_instances_with_same_key():
    assert Vault(SECRET_KEY).decrypt(Vault(SECRET_KEY).encrypt(CREDENTIAL)) == CREDENTIAL


def test_vault_ciphertext_does_not_hold_the_plaintext():
    assert CREDENTIAL not in Vault(SECRET_KEY).encrypt(CREDENTIAL)


def test_vault_other_secret_key_cannot_decrypt():
    token = Vault(SECRET_KEY).encrypt(CREDENTIAL)

    with pytest.raises(VaultError):
        Vault(OTHER_SECRET_KEY).decrypt(token)


def test_vault_error_message_holds_no_key_or_credential():
    token = Vault(SECRET_KEY).encrypt(CREDENTIAL)

    with pytest.raises(VaultError) as caught:
        Vault(OTHER_SECRET_KEY).decrypt(token)

    message = str(caught.value)
    assert SECRET_KEY not in message and OTHER_SECRET_KEY not in message and CREDENTIAL not in message


@pytest.mark.parametrize(
    "token",
    ["not-a-fernet-token", "", "gAAAAAB" + "A" * 80, "ünïcödé"],
    ids=["garbage", "empty", "truncated", "non-ascii"],
)
def test_vault_malformed_token_is_a_vault_error(token):
    with pytest.raises(VaultError):
        Vault(SECRET_KEY).decrypt(token)


def test_vault_tampered_token_is_a_vault_error():
    token = Vault(SECRET_KEY).encrypt(CREDENTIAL)
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]

    with pytest.raises(VaultError):
        Vault(SECRET_KEY).decrypt(tampered)


def test_vault_empty_secret_key_is_rejected():
    with pytest.raises(ValueError):
        Vault("")


def test_vault_opens_what_a_fallback_key_sealed_and_seals_with_the_current_key():
    old = Vault(OTHER_SECRET_KEY).encrypt(CREDENTIAL)
    rotated = Vault(SECRET_KEY, fallbacks=[OTHER_SECRET_KEY])

    assert rotated.decrypt(old) == CREDENTIAL
    assert Vault(SECRET_KEY).decrypt(rotated.encrypt(CREDENTIAL)) == CREDENTIAL


def test_vault_reseal_moves_a_value_to_the_current_key():
    old = Vault(OTHER_SECRET_KEY).encrypt(CREDENTIAL)

    resealed = Vault(SECRET_KEY, fallbacks=[OTHER_SECRET_KEY]).reseal(old)

    assert Vault(SECRET_KEY).decrypt(resealed) == CREDENTIAL
    with pytest.raises(VaultError):
        Vault(OTHER_SECRET_KEY).decrypt(resealed)


def test_vault_reseal_of_a_value_no_key_opens_is_a_vault_error_without_the_value():
    sealed = Vault("a-third-key-nobody-kept-0123456").encrypt(CREDENTIAL)

    with pytest.raises(VaultError) as caught:
        Vault(SECRET_KEY, fallbacks=[OTHER_SECRET_KEY]).reseal(sealed)
    assert CREDENTIAL not in str(caught.value) and "SECRET_KEY_FALLBACKS" in str(caught.value)
