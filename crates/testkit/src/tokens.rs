//! Tokens for the authentication tests: the environment that turns token
//! checking on with the test key pair (`keys/`), a valid ES256 token, and
//! every token such a server must refuse, each named for what is wrong.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// The issuer the test servers expect (`AUTH_JWT_ISSUER`).
pub const ISSUER: &str = "https://id.test";
/// The audience the test servers expect (`AUTH_JWT_AUDIENCE`).
pub const AUDIENCE: &str = "chat-tests";

const PRIVATE_PEM: &[u8] = include_bytes!("../keys/ec-private.pem");
const PUBLIC_PEM: &[u8] = include_bytes!("../keys/ec-public.pem");

/// The path of the test public key, for `AUTH_JWT_PUBLIC_KEY`.
pub fn public_key_path() -> String {
    format!("{}/keys/ec-public.pem", env!("CARGO_MANIFEST_DIR"))
}

/// What a server needs to check the test tokens: the public key, issuer
/// and audience.
pub fn public_key_env() -> Vec<(&'static str, String)> {
    vec![
        ("AUTH_JWT_PUBLIC_KEY", public_key_path()),
        ("AUTH_JWT_ISSUER", ISSUER.to_owned()),
        ("AUTH_JWT_AUDIENCE", AUDIENCE.to_owned()),
    ]
}

/// Now, in seconds since the Unix epoch: the unit of `exp` and `nbf`.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Claims valid for an hour, for `sub` shown as `name`.
pub fn claims(sub: &str, name: &str) -> Value {
    let now = now_secs();
    json!({
        "sub": sub,
        "name": name,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    })
}

/// `claims` with `extra`'s fields set over them.
pub fn with(mut claims: Value, extra: Value) -> Value {
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        claims.extend(extra);
    }
    claims
}

/// `claims` signed with the test private key (ES256): valid.
pub fn signed(claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(PRIVATE_PEM).expect("test private key");
    encode(&Header::new(Algorithm::ES256), claims, &key).expect("sign")
}

/// `claims` signed HS256 with `secret`.
pub fn hs256(secret: &[u8], claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret);
    encode(&Header::new(Algorithm::HS256), claims, &key).expect("sign")
}

/// An unsigned token (`alg: none`).
pub fn alg_none(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// A valid token whose payload was swapped for other claims: the signature
/// no longer matches.
pub fn forged(claims: &Value, forged_claims: &Value) -> String {
    let token = signed(claims);
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// Every token a server with [`public_key_env`] must refuse, named for
/// what is wrong with it (`None`: no token at all).
pub fn refused(sub: &str, name: &str) -> Vec<(&'static str, Option<String>)> {
    let good = claims(sub, name);
    let now = now_secs();
    vec![
        ("no token", None),
        (
            "a forged signature",
            Some(forged(
                &good,
                &with(good.clone(), json!({"name": "Mallory"})),
            )),
        ),
        ("alg none", Some(alg_none(&good))),
        (
            "an HS256 token keyed with the public key",
            Some(hs256(PUBLIC_PEM, &good)),
        ),
        (
            "an expired token",
            Some(signed(&with(good.clone(), json!({"exp": now - 120})))),
        ),
        (
            "a token not yet valid",
            Some(signed(&with(good.clone(), json!({"nbf": now + 120})))),
        ),
        (
            "a wrong issuer",
            Some(signed(&with(
                good.clone(),
                json!({"iss": "https://other.test"}),
            ))),
        ),
        (
            "a wrong audience",
            Some(signed(&with(good.clone(), json!({"aud": "another-app"})))),
        ),
    ]
}
