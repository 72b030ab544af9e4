//! Verification keys of better-auth's jwt plugin: read from its `jwks` table
//! or from its JWKS endpoint, and checked with well-kept JOSE crates —
//! `jsonwebtoken` (rust_crypto backend) for EdDSA, ES256, RS256 and PS256,
//! RustCrypto's `p521` for ES512, which `jsonwebtoken` does not support.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::auth::jwt::{JwsAlgorithm, JwsKey, KeySource, VerificationKey};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use sea_orm::{ConnectionTrait, Statement};
use serde::Deserialize;

use super::schema::BetterAuthSchema;
use crate::db::{Db, translate};

/// A key `jsonwebtoken` verifies with.
struct JoseKey {
    key: DecodingKey,
    alg: Algorithm,
}

impl std::fmt::Debug for JoseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoseKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl JwsKey for JoseKey {
    fn verify(&self, message: &[u8], signature: &str) -> bool {
        jsonwebtoken::crypto::verify(signature, message, &self.key, self.alg).unwrap_or(false)
    }
}

/// An ES512 (P-521) key.
#[derive(Debug)]
struct P521Key(p521::ecdsa::VerifyingKey);

impl JwsKey for P521Key {
    fn verify(&self, message: &[u8], signature: &str) -> bool {
        use p521::ecdsa::signature::Verifier as _;
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let Ok(signature) = p521::ecdsa::Signature::from_slice(&bytes) else {
            return false;
        };
        self.0.verify(message, &signature).is_ok()
    }
}

#[derive(Deserialize)]
struct Coordinates {
    x: String,
    y: String,
}

fn p521_key(jwk_json: &str) -> Result<Arc<dyn JwsKey>, String> {
    let point: Coordinates = serde_json::from_str(jwk_json).map_err(|e| e.to_string())?;
    let x = URL_SAFE_NO_PAD.decode(point.x).map_err(|e| e.to_string())?;
    let y = URL_SAFE_NO_PAD.decode(point.y).map_err(|e| e.to_string())?;
    let mut sec1 = Vec::with_capacity(1 + x.len() + y.len());
    sec1.push(0x04);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|e| e.to_string())?;
    Ok(Arc::new(P521Key(key)))
}

fn jose_algorithm(alg: JwsAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        JwsAlgorithm::EdDsa => Algorithm::EdDSA,
        JwsAlgorithm::Es256 => Algorithm::ES256,
        JwsAlgorithm::Rs256 => Algorithm::RS256,
        JwsAlgorithm::Ps256 => Algorithm::PS256,
        JwsAlgorithm::Es512 => return None,
    })
}

/// The key a public JWK (JSON) describes, for `alg`.
///
/// # Errors
/// A message when the JWK cannot be read as a key for `alg`.
pub fn key_from_jwk(jwk_json: &str, alg: JwsAlgorithm) -> Result<Arc<dyn JwsKey>, String> {
    let Some(jose) = jose_algorithm(alg) else {
        return p521_key(jwk_json);
    };
    let jwk: Jwk = serde_json::from_str(jwk_json).map_err(|e| e.to_string())?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    Ok(Arc::new(JoseKey { key, alg: jose }))
}

/// The algorithm of a key: its own `alg`, else what its curve implies, else
/// better-auth's default (EdDSA).
fn algorithm(alg: Option<&str>, crv: Option<&str>) -> Option<JwsAlgorithm> {
    match (alg, crv) {
        (Some(alg), _) => JwsAlgorithm::parse(alg),
        (None, Some("P-256")) => Some(JwsAlgorithm::Es256),
        (None, Some("P-521")) => Some(JwsAlgorithm::Es512),
        (None, _) => Some(JwsAlgorithm::EdDsa),
    }
}

fn build(
    kid: String,
    alg: Option<&str>,
    crv: Option<&str>,
    jwk: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Option<VerificationKey> {
    let Some(alg) = algorithm(alg, crv) else {
        tracing::warn!(kid = %kid, alg = ?alg, "JWT key with an unsupported algorithm skipped");
        return None;
    };
    match key_from_jwk(jwk, alg) {
        Ok(key) => Some(VerificationKey {
            kid,
            alg,
            expires_at,
            key,
        }),
        Err(error) => {
            tracing::warn!(kid = %kid, error = %error, "unreadable JWT key skipped");
            None
        }
    }
}

/// Keys from better-auth's `jwks` table (either naming style).
#[derive(Debug, Clone)]
pub struct SqlKeySource {
    db: Db,
    sql: String,
}

impl SqlKeySource {
    /// A source over `db`; `None` when there is no `jwks` table.
    pub fn new(db: Db, schema: &BetterAuthSchema) -> Option<Self> {
        let jwks = schema.jwks.as_ref()?;
        let optional = |present: bool, expr: String, name: &str| {
            if present {
                format!("{expr} AS {name}")
            } else {
                format!("NULL AS {name}")
            }
        };
        let sql = format!(
            "SELECT {id} AS kid, {pk} AS public_key, {alg}, {crv}, {exp} FROM \"jwks\" k",
            id = schema.id_text("k", "id"),
            pk = schema.col("k", "publicKey"),
            alg = optional(jwks.has_alg, schema.col("k", "alg"), "alg"),
            crv = optional(jwks.has_crv, schema.col("k", "crv"), "crv"),
            exp = optional(
                jwks.has_expires_at,
                schema.timestamp("jwks", "k", "expiresAt"),
                "expires_at"
            ),
        );
        Some(Self { db, sql })
    }
}

#[async_trait]
impl KeySource for SqlKeySource {
    async fn fetch(&self) -> Result<Vec<VerificationKey>, Error> {
        let stmt = Statement::from_string(self.db.backend(), self.sql.as_str());
        let rows = self.db.conn().query_all_raw(stmt).await.map_err(translate)?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let read = || -> Result<_, sea_orm::DbErr> {
                Ok((
                    row.try_get::<String>("", "kid")?,
                    row.try_get::<String>("", "public_key")?,
                    row.try_get::<Option<String>>("", "alg")?,
                    row.try_get::<Option<String>>("", "crv")?,
                    row.try_get::<Option<DateTime<Utc>>>("", "expires_at")?,
                ))
            };
            match read() {
                Ok((kid, jwk, alg, crv, expires_at)) => {
                    keys.extend(build(kid, alg.as_deref(), crv.as_deref(), &jwk, expires_at));
                }
                Err(error) => tracing::warn!(error = %error, "unreadable jwks row skipped"),
            }
        }
        Ok(keys)
    }
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

/// Keys from a JWKS endpoint (`JWKS_URL`: better-auth serves it at
/// `/api/auth/jwks`). A JWKS carries no expiry: rotated keys are simply
/// dropped from it by better-auth once their grace period is over.
#[derive(Debug, Clone)]
pub struct HttpKeySource {
    client: reqwest::Client,
    url: String,
}

impl HttpKeySource {
    /// A source fetching `url` with a `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }
}

#[async_trait]
impl KeySource for HttpKeySource {
    async fn fetch(&self) -> Result<Vec<VerificationKey>, Error> {
        let unavailable = |e: reqwest::Error| Error::Unavailable(anyhow::Error::new(e).context("JWKS_URL unreachable"));
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        Ok(set
            .keys
            .into_iter()
            .filter_map(|jwk| {
                let kid = jwk.get("kid")?.as_str()?.to_owned();
                let alg = jwk.get("alg").and_then(|a| a.as_str()).map(str::to_owned);
                let crv = jwk.get("crv").and_then(|c| c.as_str()).map(str::to_owned);
                build(kid, alg.as_deref(), crv.as_deref(), &jwk.to_string(), None)
            })
            .collect())
    }
}
