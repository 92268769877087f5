//! Each kind of public key pins its own algorithm: a token signed with the
//! matching private key verifies, and nothing else does (another kind's
//! token, HS256 keyed with the public key, `alg: none`).
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use auth::mint::{TokenRequest, mint};
use auth::{AuthConfig, Refusal, Verifier};
use jsonwebtoken::Algorithm;
use std::time::Duration;

const KINDS: [(&str, Algorithm); 3] = [
    ("rsa", Algorithm::RS256),
    ("ec", Algorithm::ES256),
    ("ed25519", Algorithm::EdDSA),
];

fn key(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/keys/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn ada() -> TokenRequest {
    TokenRequest {
        sub: "42".into(),
        name: Some("Ada".into()),
        rooms: None,
        symbols: None,
        ttl: Duration::from_secs(60),
    }
}

#[test]
fn each_public_key_accepts_its_own_algorithm_only() {
    for (kind, algorithm) in KINDS {
        let config = AuthConfig::from_public_pem(&key(&format!("{kind}-public"))).unwrap();
        assert_eq!(config.algorithm, algorithm, "{kind}");
        let verifier = Verifier::new(config.clone());
        let token = mint(&config, Some(&key(&format!("{kind}-private"))), &ada()).unwrap();
        assert_eq!(verifier.verify(Some(&token)).unwrap().name, "Ada", "{kind}");
        // HS256 keyed with the public key's own bytes: the classic confusion.
        let hmac = AuthConfig::from_secret(&key(&format!("{kind}-public")));
        let confused = mint(&hmac, None, &ada()).unwrap();
        assert_eq!(
            verifier.verify(Some(&confused)),
            Err(Refusal::Invalid),
            "{kind}"
        );
        for (other, _) in KINDS.iter().filter(|(other, _)| *other != kind) {
            let other_config =
                AuthConfig::from_public_pem(&key(&format!("{other}-public"))).unwrap();
            let foreign = mint(
                &other_config,
                Some(&key(&format!("{other}-private"))),
                &ada(),
            )
            .unwrap();
            assert_eq!(
                verifier.verify(Some(&foreign)),
                Err(Refusal::Invalid),
                "{other} on {kind}"
            );
        }
    }
}

#[test]
fn a_public_key_cannot_mint_without_its_private_half() {
    let config = AuthConfig::from_public_pem(&key("ec-public")).unwrap();
    assert!(mint(&config, None, &ada()).is_err());
    assert!(AuthConfig::from_public_pem(b"not a key").is_err());
}
