//! Checking a token: signature with the one pinned algorithm, time bounds
//! with a small leeway, issuer and audience when set, then the claims the
//! apps rely on. Every failure is a [`Refusal`] whose message a page may
//! show; none of them quotes the token.

use crate::claims::{Claims, Identity};
use crate::config::AuthConfig;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode};
use std::time::{Duration, UNIX_EPOCH};

/// Clock skew forgiven between the token's issuer and this server.
const LEEWAY_SECS: u64 = 5;

/// Longest `sub` accepted; it is kept per member and crosses Redis.
const SUB_MAX_CHARS: usize = 128;

/// Why a token was not accepted; all of them are `unauthorized` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No token came with the connection.
    #[error("a token is required")]
    Missing,
    /// Its `exp` is past, leeway included.
    #[error("the token has expired")]
    Expired,
    /// Its `nbf` is still ahead.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// It names another issuer or audience than the settings.
    #[error("the token's issuer or audience is wrong")]
    WrongParty,
    /// The signature holds, but a claim the apps need is missing or
    /// unusable (a `sub`, a `name` by the contract's rules).
    #[error("the token's claims are not usable")]
    BadClaims,
    /// Anything else: a bad signature, another algorithm, not a token.
    #[error("the token is not valid")]
    Invalid,
}

/// Checks tokens against one [`AuthConfig`].
#[derive(Clone, Debug)]
pub struct Verifier {
    config: AuthConfig,
    validation: Validation,
}

impl Verifier {
    /// A verifier for `config`, built once: every token is then checked
    /// with the same rules.
    pub fn new(config: AuthConfig) -> Verifier {
        let mut validation = Validation::new(config.algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Verifier { config, validation }
    }

    /// The identity a token proves, or why it proves none. `None` or an
    /// empty string is [`Refusal::Missing`].
    pub fn verify(&self, token: Option<&str>) -> Result<Identity, Refusal> {
        let token = token.map(str::trim).filter(|token| !token.is_empty());
        let Some(token) = token else {
            return Err(Refusal::Missing);
        };
        let claims = decode::<Claims>(token, &self.config.key, &self.validation)
            .map_err(|error| refusal(error.kind()))?
            .claims;
        identity(claims)
    }
}

fn refusal(kind: &ErrorKind) -> Refusal {
    match kind {
        ErrorKind::ExpiredSignature => Refusal::Expired,
        ErrorKind::ImmatureSignature => Refusal::NotYetValid,
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => Refusal::WrongParty,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" || claim == "aud" => {
            Refusal::WrongParty
        }
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => Refusal::BadClaims,
        _ => Refusal::Invalid,
    }
}

/// The claims an app relies on: a `sub`, a name by the contract's rules.
fn identity(claims: Claims) -> Result<Identity, Refusal> {
    let sub = claims.sub.trim();
    if sub.is_empty() || sub.chars().count() > SUB_MAX_CHARS || sub.chars().any(char::is_control) {
        return Err(Refusal::BadClaims);
    }
    let name = protocol::validate::name(claims.name.as_deref().unwrap_or(sub))
        .map_err(|_| Refusal::BadClaims)?;
    Ok(Identity {
        sub: sub.to_owned(),
        name,
        rooms: claims.rooms,
        symbols: claims.symbols,
        // The leeway that let the token in also lets the connection live.
        expires_at: UNIX_EPOCH + Duration::from_secs(claims.exp.saturating_add(LEEWAY_SECS)),
    })
}
