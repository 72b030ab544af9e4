//! A JWT for the demo user, as better-auth's jwt plugin would issue it: a
//! new Ed25519 key in `jwks` (the plugin's default algorithm, `kid` = the
//! row's id) and a token whose payload is the user object plus `sub`, `iss`,
//! `aud`, `iat` and `exp`. Development only: the private key is not kept, so
//! the key signs this one token and is then only good for verifying it.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signer as _, SigningKey};

use super::{DevBetterAuth, DevUser, generate_token};

impl DevBetterAuth {
    /// Creates the jwt plugin's `jwks` table if it does not exist, as
    /// better-auth's migration (or Drizzle, in snake_case) makes it.
    ///
    /// # Errors
    /// Any database error.
    pub async fn create_jwks_table(&self) -> anyhow::Result<()> {
        let ts = self.timestamp_type();
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS \"jwks\" (\"id\" text NOT NULL PRIMARY KEY, {} text NOT NULL, \
             {} text NOT NULL, {} {ts} NOT NULL, {} {ts}, \"alg\" text, \"crv\" text)",
            self.c("publicKey"),
            self.c("privateKey"),
            self.c("createdAt"),
            self.c("expiresAt"),
        );
        self.db
            .execute_unprepared(&sql)
            .await
            .with_context(|| format!("could not run: {sql}"))?;
        Ok(())
    }

    /// Stores a new Ed25519 public key in `jwks` and returns a JWT for `user`
    /// signed with it, valid from `now` for `ttl`, issued by `issuer` for
    /// `audience`.
    ///
    /// # Errors
    /// Any database error.
    pub async fn mint_jwt(
        &self,
        user: &DevUser,
        issuer: &str,
        audience: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let kid = generate_token();
        let jwk = serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        });
        let sql = format!(
            "INSERT INTO \"jwks\" (\"id\", {}, {}, {}, \"alg\", \"crv\") VALUES ({})",
            self.c("publicKey"),
            self.c("privateKey"),
            self.c("createdAt"),
            self.placeholders(6)
        );
        let values = vec![
            kid.clone().into(),
            jwk.to_string().into(),
            "not kept (saas-api dev seed)".into(),
            self.ts(now),
            "EdDSA".into(),
            "Ed25519".into(),
        ];
        self.exec(sql, values).await.context("could not store the JWT key")?;
        let header = serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": "JWT"});
        let payload = serde_json::json!({
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "emailVerified": user.email_verified,
            "image": null,
            "sub": user.id,
            "iss": issuer,
            "aud": audience,
            "iat": now.timestamp(),
            "exp": (now + ttl).timestamp(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let signature = key.sign(signing_input.as_bytes());
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}
