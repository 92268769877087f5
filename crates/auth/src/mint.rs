//! Minting a token from the configured key, for development and tests:
//! the HMAC secret, or the private half of the configured public key.

use crate::claims::{Claims, now_secs};
use crate::config::AuthConfig;
use anyhow::{Context, Result, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use std::time::Duration;

/// What a minted token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The person the token stands for.
    pub sub: String,
    /// The name shown, when it is not `sub`.
    pub name: Option<String>,
    /// The rooms the holder may join (`None`: any).
    pub rooms: Option<Vec<String>>,
    /// The symbols the holder may watch (`None`: any).
    pub symbols: Option<Vec<String>>,
    /// How long the token is valid from now.
    pub ttl: Duration,
}

/// A signed token for `request`, valid from now for its `ttl`, naming the
/// configured issuer and audience. A public-key setting needs the private
/// key's PEM.
pub fn mint(
    config: &AuthConfig,
    private_pem: Option<&[u8]>,
    request: &TokenRequest,
) -> Result<String> {
    let key = signing_key(config, private_pem)?;
    let now = now_secs();
    let claims = Claims {
        sub: request.sub.clone(),
        name: request.name.clone(),
        exp: now + request.ttl.as_secs(),
        nbf: Some(now),
        iat: Some(now),
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        rooms: request.rooms.clone(),
        symbols: request.symbols.clone(),
    };
    encode(&Header::new(config.algorithm), &claims, &key).context("cannot sign the token")
}

fn signing_key(config: &AuthConfig, private_pem: Option<&[u8]>) -> Result<EncodingKey> {
    match (config.algorithm, &config.secret, private_pem) {
        (Algorithm::HS256, Some(secret), _) => Ok(EncodingKey::from_secret(secret)),
        (_, _, None) => {
            bail!("the public key cannot sign: pass the private key with --key <PEM file>")
        }
        (Algorithm::RS256, _, Some(pem)) => {
            EncodingKey::from_rsa_pem(pem).context("not an RSA private key")
        }
        (Algorithm::ES256, _, Some(pem)) => {
            EncodingKey::from_ec_pem(pem).context("not an EC private key")
        }
        (Algorithm::EdDSA, _, Some(pem)) => {
            EncodingKey::from_ed_pem(pem).context("not an Ed25519 private key")
        }
        (algorithm, _, Some(_)) => bail!("cannot sign {algorithm:?} tokens"),
    }
}

/// A duration as `90s`, `30m`, `1h`, `2d`, or plain seconds.
pub(crate) fn parse_ttl(raw: &str) -> Result<Duration> {
    let raw = raw.trim();
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => raw.split_at(at),
        None => (raw, "s"),
    };
    let count: u64 = digits
        .parse()
        .with_context(|| format!("{raw:?} is not a duration like 90s, 30m, 1h or 2d"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("{raw:?} is not a duration like 90s, 30m, 1h or 2d"),
    };
    Ok(Duration::from_secs(count.saturating_mul(unit_secs)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Refusal, Verifier};

    fn ada(ttl: Duration) -> TokenRequest {
        TokenRequest {
            sub: "42".into(),
            name: Some("Ada".into()),
            rooms: Some(vec!["team-*".into()]),
            symbols: None,
            ttl,
        }
    }

    #[test]
    fn a_minted_token_verifies_under_its_name() {
        let config = AuthConfig::from_secret(b"a secret long enough for HS256 tokens");
        let token = mint(&config, None, &ada(Duration::from_secs(60))).unwrap();
        let identity = Verifier::new(config).verify(Some(&token)).unwrap();
        assert_eq!(identity.sub, "42");
        assert_eq!(identity.name, "Ada");
        assert!(identity.may_join("team-x"));
        assert!(!identity.may_join("general"));
    }

    #[test]
    fn another_secret_or_issuer_refuses_it() {
        let config = AuthConfig::from_secret(b"one secret");
        let token = mint(&config, None, &ada(Duration::from_secs(60))).unwrap();
        let other = Verifier::new(AuthConfig::from_secret(b"another secret"));
        assert_eq!(other.verify(Some(&token)), Err(Refusal::Invalid));
        let issuer = Verifier::new(config.with_issuer("https://id.example"));
        assert_eq!(issuer.verify(Some(&token)), Err(Refusal::WrongParty));
        assert_eq!(issuer.verify(None), Err(Refusal::Missing));
    }

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
