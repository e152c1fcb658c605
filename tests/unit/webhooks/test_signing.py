"""Standard Webhooks signatures: checked against the specification's own published example, and
a change to any signed part changes the signature."""

from __future__ import annotations

import base64

from gpucloud.webhooks.signing import SECRET_PREFIX, headers, new_secret, signature

# The example of the Standard Webhooks specification (standardwebhooks.com, "Signature scheme").
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specification_example_signs_as_published() -> None:
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_every_signed_part_changes_the_signature() -> None:
    reference = signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert signature(SPEC_SECRET, SPEC_ID + "x", SPEC_TIMESTAMP, SPEC_BODY) != reference
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_BODY) != reference
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY + b" ") != reference
    assert signature(new_secret(), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) != reference


def test_a_new_secret_is_32_random_bytes_in_the_format() -> None:
    secret = new_secret()
    assert secret.startswith(SECRET_PREFIX)
    assert len(base64.b64decode(secret.removeprefix(SECRET_PREFIX))) == 32
    assert new_secret() != secret


def test_the_headers_carry_id_timestamp_and_signature() -> None:
    sent = headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert sent == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
        "content-type": "application/json",
    }
