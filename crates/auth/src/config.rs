//! The token settings from the environment: which key checks a signature
//! (and so which one algorithm is accepted), and the issuer and audience a
//! token must name when they are set.

use anyhow::{Context, Result, bail};
use jsonwebtoken::{Algorithm, DecodingKey};

/// HMAC secret: tokens are HS256.
pub(crate) const SECRET_VAR: &str = "AUTH_JWT_SECRET";
/// Path of a PEM public key: tokens are RS256, ES256 or EdDSA by its kind.
pub(crate) const PUBLIC_KEY_VAR: &str = "AUTH_JWT_PUBLIC_KEY";
/// The issuer a token must name, when set.
const ISSUER_VAR: &str = "AUTH_JWT_ISSUER";
/// The audience a token must name, when set.
const AUDIENCE_VAR: &str = "AUTH_JWT_AUDIENCE";

/// How a token's signature is checked.
#[derive(Clone)]
pub struct AuthConfig {
    /// The one algorithm accepted: pinned to the key's kind, so that a
    /// token can never choose `none`, nor HMAC keyed with a public key.
    pub algorithm: Algorithm,
    /// What the signature is checked with.
    pub(crate) key: DecodingKey,
    /// The HMAC secret itself, which the `token` subcommand signs with.
    pub(crate) secret: Option<Vec<u8>>,
    /// The issuer a token must name, when one is set.
    pub(crate) issuer: Option<String>,
    /// The audience a token must name, when one is set.
    pub(crate) audience: Option<String>,
}

impl AuthConfig {
    /// The settings, or `None` when token authentication is off.
    pub fn from_env() -> Result<Option<AuthConfig>> {
        let config = match (env_opt(SECRET_VAR), env_opt(PUBLIC_KEY_VAR)) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                bail!("set either {SECRET_VAR} or {PUBLIC_KEY_VAR}, not both")
            }
            (Some(secret), None) => AuthConfig::from_secret(secret.as_bytes()),
            (None, Some(path)) => {
                let pem = std::fs::read(&path)
                    .with_context(|| format!("cannot read {PUBLIC_KEY_VAR}={path:?}"))?;
                AuthConfig::from_public_pem(&pem)
                    .with_context(|| format!("{PUBLIC_KEY_VAR}={path:?}"))?
            }
        };
        Ok(Some(AuthConfig {
            issuer: env_opt(ISSUER_VAR),
            audience: env_opt(AUDIENCE_VAR),
            ..config
        }))
    }

    /// HS256 with a shared secret.
    pub fn from_secret(secret: &[u8]) -> AuthConfig {
        AuthConfig {
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
            secret: Some(secret.to_vec()),
            issuer: None,
            audience: None,
        }
    }

    /// RS256, ES256 or EdDSA, by the kind of the PEM public key.
    pub fn from_public_pem(pem: &[u8]) -> Result<AuthConfig> {
        let (algorithm, key) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            (Algorithm::RS256, key)
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            (Algorithm::ES256, key)
        } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            (Algorithm::EdDSA, key)
        } else {
            bail!("not a PEM public key of RSA, EC (P-256) or Ed25519");
        };
        Ok(AuthConfig {
            algorithm,
            key,
            secret: None,
            issuer: None,
            audience: None,
        })
    }

    /// The same settings, with tokens that must name `issuer`.
    #[cfg(test)]
    pub(crate) fn with_issuer(self, issuer: &str) -> AuthConfig {
        AuthConfig {
            issuer: Some(issuer.to_owned()),
            ..self
        }
    }
}

fn env_opt(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|raw| raw.trim().to_owned())
        .filter(|raw| !raw.is_empty())
}

/// Names the algorithm and the checked parties, never the key.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}
