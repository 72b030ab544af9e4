//! `cargo bench -p infra --bench jwt_verify`: verification of one EdDSA JWT
//! not seen before (signature, header and claims), as the jwt plugin's
//! default key signs it. Every iteration verifies a distinct token, so the
//! verifier's memory of verified tokens never answers.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::Error;
use domain::auth::jwt::{JwsAlgorithm, JwtSettings, JwtVerifier, KeySource, VerificationKey};
use domain::clock::SystemClock;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const SEED: [u8; 32] = [7; 32];
const ISSUER: &str = "http://localhost:3000";
const TOKENS: usize = 200_000;

struct OneKey(VerificationKey);

#[async_trait]
impl KeySource for OneKey {
    async fn fetch(&self) -> Result<Vec<VerificationKey>, Error> {
        Ok(vec![self.0.clone()])
    }
}

fn main() {
    divan::main();
}

/// A PKCS#8 v1 document holding an Ed25519 seed (RFC 8410).
fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    der.extend_from_slice(seed);
    der
}

fn setup() -> (JwtVerifier, Vec<String>) {
    let public = ed25519_dalek::SigningKey::from_bytes(&SEED).verifying_key();
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public.as_bytes())});
    let key = infra::better_auth::jwks::key_from_jwk(&jwk.to_string(), JwsAlgorithm::EdDsa).unwrap();
    let verifier = JwtVerifier::new(
        Arc::new(OneKey(VerificationKey {
            kid: "k".into(),
            alg: JwsAlgorithm::EdDsa,
            expires_at: None,
            key,
        })),
        Arc::new(SystemClock),
        JwtSettings {
            issuer: ISSUER.into(),
            audience: ISSUER.into(),
            key_grace: std::time::Duration::from_secs(86_400),
        },
        Arc::new(infra::cache::MemoryJwtCache::new(domain::auth::jwt::REMEMBERED_MAX)),
    );
    let signing = EncodingKey::from_ed_der(&pkcs8(&SEED));
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k".into());
    let exp = chrono::Utc::now().timestamp() + 3600;
    let tokens = (0..TOKENS)
        .map(|i| {
            let claims = serde_json::json!({
                "sub": format!("user-{i}"), "iss": ISSUER, "aud": ISSUER, "exp": exp, "email": "u@example.com",
                "name": "U", "emailVerified": true, "image": null,
                "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z"
            });
            jsonwebtoken::encode(&header, &claims, &signing).unwrap()
        })
        .collect();
    (verifier, tokens)
}

#[divan::bench(sample_count = 200, sample_size = 50)]
fn verify_an_unseen_eddsa_jwt(bencher: divan::Bencher) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (verifier, tokens) = setup();
    let next = AtomicUsize::new(0);
    // Load the key once, as a running server has.
    runtime.block_on(verifier.verify(&tokens[TOKENS - 1])).unwrap();
    bencher.bench_local(|| {
        let token = &tokens[next.fetch_add(1, Ordering::Relaxed) % (TOKENS - 1)];
        runtime.block_on(verifier.verify(token)).unwrap()
    });
}
