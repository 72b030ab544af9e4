//! The verifier's rules, each on a fake key source and clock.

use super::*;
use crate::clock::MockClock;
use chrono::TimeZone;

const ISSUER: &str = "https://auth.example.com";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

/// A token whose signature is the bytes `good` (the fake key accepts only those).
fn token(header: serde_json::Value, claims: serde_json::Value) -> String {
    format!("{}.{}.{}", b64(&header), b64(&claims), URL_SAFE_NO_PAD.encode(b"good"))
}

fn claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "user-1", "iss": ISSUER, "aud": ISSUER, "exp": now().timestamp() + 900,
        "email": "ada@example.com", "name": "Ada", "emailVerified": true, "image": null,
        "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-02-01T00:00:00.000Z", "id": "user-1"
    })
}

fn header(kid: &str) -> serde_json::Value {
    serde_json::json!({"alg": "EdDSA", "kid": kid})
}

fn fake_key() -> Arc<dyn JwsKey> {
    let mut key = MockJwsKey::new();
    let good = URL_SAFE_NO_PAD.encode(b"good");
    key.expect_verify().returning(move |_, signature| signature == good);
    Arc::new(key)
}

fn key(kid: &str, alg: JwsAlgorithm, expires_at: Option<DateTime<Utc>>) -> VerificationKey {
    VerificationKey {
        kid: kid.into(),
        alg,
        expires_at,
        key: fake_key(),
    }
}

fn clock_at(at: DateTime<Utc>) -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().returning(move || at);
    Arc::new(clock)
}

/// Remembers every token for ever (expiry is the verifier's own re-check;
/// production uses infra's bounded TTL cache).
#[derive(Default)]
struct Remembered(std::sync::Mutex<HashMap<String, VerifiedJwt>>);

impl RememberedTokens for Remembered {
    fn recall(&self, token: &TokenHash) -> Option<VerifiedJwt> {
        self.0.lock().unwrap().get(token.as_str()).cloned()
    }

    fn remember(&self, token: &TokenHash, verified: &VerifiedJwt, _ttl: Duration) {
        self.0
            .lock()
            .unwrap()
            .insert(token.as_str().to_owned(), verified.clone());
    }
}

fn verifier(source: MockKeySource) -> JwtVerifier {
    verifier_at(source, now())
}

fn verifier_at(source: MockKeySource, at: DateTime<Utc>) -> JwtVerifier {
    JwtVerifier::new(
        Arc::new(source),
        clock_at(at),
        JwtSettings {
            issuer: ISSUER.into(),
            audience: ISSUER.into(),
            key_grace: Duration::from_secs(30 * 86_400),
        },
        Arc::new(Remembered::default()),
    )
}

fn source_with(keys: Vec<VerificationKey>) -> MockKeySource {
    let mut source = MockKeySource::new();
    source.expect_fetch().returning(move || Ok(keys.clone()));
    source
}

fn reason(result: Result<VerifiedJwt, Error>) -> AuthFailure {
    match result {
        Err(Error::Unauthenticated(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_good_token_gives_the_user_from_its_claims() {
    let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)]));
    let verified = verifier.verify(&token(header("k1"), claims())).await.unwrap();
    assert_eq!(verified.user.id, "user-1");
    assert_eq!(verified.user.email, "ada@example.com");
    assert!(verified.user.email_verified);
    assert_eq!(verified.expires_at.timestamp(), now().timestamp() + 900);
    let mut listed = claims();
    listed["aud"] = serde_json::json!(["other", ISSUER]);
    listed["image"] = serde_json::Value::Null;
    listed.as_object_mut().unwrap().remove("name");
    let verified = verifier.verify(&token(header("k1"), listed)).await.unwrap();
    assert_eq!(verified.user.name, "", "a missing optional claim is empty");
}

#[tokio::test]
async fn none_hmac_a_mismatched_alg_and_a_missing_kid_are_refused() {
    let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)]));
    for alg in ["none", "HS256", "HS512", "ES256"] {
        let t = token(serde_json::json!({"alg": alg, "kid": "k1"}), claims());
        assert_eq!(
            reason(verifier.verify(&t).await),
            AuthFailure::UnsupportedAlgorithm,
            "{alg}"
        );
    }
    let t = token(serde_json::json!({"alg": "EdDSA"}), claims());
    assert_eq!(reason(verifier.verify(&t).await), AuthFailure::UnknownKey);
    let forged = format!(
        "{}.{}",
        token(header("k1"), claims()).rsplit_once('.').unwrap().0,
        "YmFk"
    );
    assert_eq!(reason(verifier.verify(&forged).await), AuthFailure::BadSignature);
}

#[tokio::test]
async fn claims_are_checked_with_leeway() {
    let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)]));
    let with = |field: &str, value: serde_json::Value| {
        let mut c = claims();
        if value.is_null() {
            c.as_object_mut().unwrap().remove(field);
        } else {
            c[field] = value;
        }
        token(header("k1"), c)
    };
    let t = now().timestamp();
    for (field, value, why) in [
        ("exp", serde_json::Value::Null, AuthFailure::Expired),
        ("exp", serde_json::json!(t - 31), AuthFailure::Expired),
        ("nbf", serde_json::json!(t + 31), AuthFailure::NotYetValid),
        (
            "iss",
            serde_json::json!("https://evil.example"),
            AuthFailure::WrongIssuer,
        ),
        (
            "aud",
            serde_json::json!("https://other.example"),
            AuthFailure::WrongAudience,
        ),
        ("aud", serde_json::Value::Null, AuthFailure::WrongAudience),
    ] {
        assert_eq!(
            reason(verifier.verify(&with(field, value.clone())).await),
            why,
            "{field}={value}"
        );
    }
    assert!(
        verifier.verify(&with("exp", serde_json::json!(t - 29))).await.is_ok(),
        "within leeway"
    );
    assert!(verifier.verify(&with("nbf", serde_json::json!(t + 29))).await.is_ok());
    assert!(
        verifier.verify(&with("sub", serde_json::json!(42))).await.is_err(),
        "wrong claim type"
    );
}

#[tokio::test]
async fn a_retired_key_works_through_its_grace_period_only() {
    let day = chrono::Duration::days(1);
    let keys = vec![
        key("recent", JwsAlgorithm::EdDsa, Some(now() - day * 29)),
        key("old", JwsAlgorithm::EdDsa, Some(now() - day * 31)),
    ];
    let verifier = verifier(source_with(keys));
    assert!(verifier.verify(&token(header("recent"), claims())).await.is_ok());
    assert_eq!(
        reason(verifier.verify(&token(header("old"), claims())).await),
        AuthFailure::RetiredKey
    );
}

#[tokio::test]
async fn unknown_kids_refresh_at_most_once_per_ten_seconds_and_outages_keep_known_keys() {
    let mut source = MockKeySource::new();
    let mut calls = 0;
    source.expect_fetch().times(2).returning(move || {
        calls += 1;
        if calls == 1 {
            Ok(vec![key("k1", JwsAlgorithm::EdDsa, None)])
        } else {
            Err(Error::Unavailable(anyhow::anyhow!("jwks down")))
        }
    });
    let verifier = verifier(source);
    assert!(
        verifier.verify(&token(header("k1"), claims())).await.is_ok(),
        "first use loads"
    );
    for i in 0..50 {
        let t = token(header(&format!("random-{i}")), claims());
        assert_eq!(reason(verifier.verify(&t).await), AuthFailure::UnknownKey);
    }
    // Ten seconds later one more fetch is allowed; it fails; k1 still works.
    verifier.write().last_attempt = Some(now() - chrono::Duration::seconds(11));
    assert_eq!(
        reason(verifier.verify(&token(header("new"), claims())).await),
        AuthFailure::UnknownKey
    );
    assert!(verifier.verify(&token(header("k1"), claims())).await.is_ok());
}

#[tokio::test]
async fn malformed_tokens_are_refused_without_touching_the_keys() {
    let mut source = MockKeySource::new();
    source.expect_fetch().never();
    let verifier = verifier(source);
    let long = format!("{}.{}.{}", "a".repeat(5000), "b".repeat(5000), "c");
    for bad in [
        "",
        "a.b",
        "a.b.c.d",
        "a..c",
        "a.b.c!",
        "@@.b.c",
        "e30.e30",
        &long,
        "e30.e30.e30",
    ] {
        let why = reason(verifier.verify(bad).await);
        assert!(
            matches!(why, AuthFailure::Malformed | AuthFailure::UnsupportedAlgorithm),
            "{bad}: {why:?}"
        );
    }
    assert!(!looks_like_jwt("abc.def"));
    assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
    assert!(!looks_like_jwt("token.c2ln+/="));
}

/// Fuzzing by mutation (no extra crate: a fixed-seed xorshift): 20,000
/// truncations, byte flips, inserted and removed dots, swapped segments
/// and random base64url of a valid token. Never a panic, never accepted
/// unless the token is byte for byte the signed one.
#[tokio::test]
async fn mutated_tokens_are_refused_and_never_panic() {
    let good = token(header("k1"), claims());
    // A key that, like a real one, signs exactly one message.
    let (signed, signature) = good
        .rsplit_once('.')
        .map(|(m, s)| (m.to_owned(), s.to_owned()))
        .unwrap();
    let mut strict = MockJwsKey::new();
    strict
        .expect_verify()
        .returning(move |message, sig| message == signed.as_bytes() && sig == signature);
    let verifier = verifier(source_with(vec![VerificationKey {
        kid: "k1".into(),
        alg: JwsAlgorithm::EdDsa,
        expires_at: None,
        key: Arc::new(strict),
    }]));
    assert!(verifier.verify(&good).await.is_ok());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % (bound.max(1) as u64)).unwrap_or(0)
    };
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \0";
    for _ in 0..20_000 {
        let mut bytes = good.clone().into_bytes();
        match next(6) {
            0 => bytes.truncate(next(bytes.len())),
            1 => {
                let at = next(bytes.len());
                bytes[at] = alphabet[next(alphabet.len())];
            }
            2 => bytes.insert(next(bytes.len()), b'.'),
            3 => {
                if let Some(at) = bytes.iter().position(|b| *b == b'.') {
                    bytes.remove(at);
                }
            }
            4 => {
                let parts: Vec<&str> = good.split('.').collect();
                bytes = format!("{}.{}.{}", parts[next(3)], parts[next(3)], parts[next(3)]).into_bytes();
            }
            _ => bytes = (0..next(300)).map(|_| alphabet[next(alphabet.len())]).collect(),
        }
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        let result = verifier.verify(&mutated).await;
        if mutated != good {
            assert!(
                matches!(result, Err(Error::Unauthenticated(_))),
                "{mutated:?} gave {result:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_arriving_during_the_first_fetch_wait_for_it_instead_of_being_refused() {
    let mut source = MockKeySource::new();
    source.expect_fetch().times(1).returning(|| {
        // A slow source: every other request arrives while this runs.
        std::thread::sleep(std::time::Duration::from_millis(50));
        Ok(vec![key("k1", JwsAlgorithm::EdDsa, None)])
    });
    let verifier = Arc::new(verifier(source));
    let good = token(header("k1"), claims());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), good.clone());
            tokio::spawn(async move { verifier.verify(&token).await.is_ok() })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap(), "no request refused while the keys loaded");
    }
}

fn user_record(banned: bool, ban_expires: Option<DateTime<Utc>>) -> UserRecord {
    UserRecord {
        user: User::ada(now()),
        banned,
        ban_expires,
    }
}

#[tokio::test]
async fn a_header_with_extensions_to_understand_is_refused() {
    let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)]));
    for header in [
        serde_json::json!({"alg": "EdDSA", "kid": "k1", "crit": ["exp"]}),
        serde_json::json!({"alg": "EdDSA", "kid": "k1", "crit": ["b64"], "b64": false}),
        serde_json::json!({"alg": "EdDSA", "kid": "k1", "b64": false}),
    ] {
        let refused = verifier.verify(&token(header.clone(), claims())).await;
        assert_eq!(reason(refused), AuthFailure::UnsupportedHeader, "{header}");
    }
    let plain = serde_json::json!({"alg": "EdDSA", "kid": "k1", "typ": "JWT", "b64": true});
    assert!(verifier.verify(&token(plain, claims())).await.is_ok());
}

#[tokio::test]
async fn a_token_whose_claims_say_banned_is_refused_until_the_ban_expires() {
    let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)]));
    let mut banned = claims();
    banned["banned"] = serde_json::json!(true);
    banned["banExpires"] = serde_json::Value::Null;
    assert_eq!(
        reason(verifier.verify(&token(header("k1"), banned.clone())).await),
        AuthFailure::Banned
    );
    banned["banExpires"] = serde_json::json!("2026-05-01T00:00:00.000Z");
    assert!(
        verifier.verify(&token(header("k1"), banned)).await.is_ok(),
        "an expired ban"
    );
}

#[tokio::test]
async fn a_deleted_or_banned_user_is_refused_the_first_time_a_token_is_seen() {
    for (found, expected) in [
        (None, AuthFailure::UnknownUser),
        (Some(user_record(true, None)), AuthFailure::Banned),
    ] {
        let mut users = crate::auth::port::MockSessionStore::new();
        users.expect_find_user().returning(move |_| Ok(found.clone()));
        let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)])).with_users(Arc::new(users));
        assert_eq!(reason(verifier.verify(&token(header("k1"), claims())).await), expected);
    }
}

#[tokio::test]
async fn a_known_user_is_looked_up_once_per_token_and_an_outage_is_not_remembered() {
    let mut users = crate::auth::port::MockSessionStore::new();
    users
        .expect_find_user()
        .times(1)
        .returning(|_| Ok(Some(user_record(false, None))));
    let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)])).with_users(Arc::new(users));
    let token = token(header("k1"), claims());
    for _ in 0..3 {
        assert!(verifier.verify(&token).await.is_ok());
    }

    let mut down = crate::auth::port::MockSessionStore::new();
    down.expect_find_user()
        .times(2)
        .returning(|_| Err(Error::Unavailable(anyhow::anyhow!("database down"))));
    let verifier = verifier_with_users(down);
    for _ in 0..2 {
        assert!(
            verifier.verify(&token).await.is_ok(),
            "the claims are trusted while it is down"
        );
    }
}

fn verifier_with_users(users: crate::auth::port::MockSessionStore) -> JwtVerifier {
    verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)])).with_users(Arc::new(users))
}

#[tokio::test]
async fn the_key_set_is_re_read_after_ten_minutes_and_a_removed_key_stops_its_remembered_tokens() {
    let at = Arc::new(std::sync::Mutex::new(now()));
    let mut clock = MockClock::new();
    let read = at.clone();
    clock.expect_now().returning(move || *read.lock().unwrap());
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut source = MockKeySource::new();
    let counted = fetches.clone();
    source.expect_fetch().returning(move || {
        // The first read has the key; every later one does not (rotated away).
        if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Ok(vec![key("k1", JwsAlgorithm::EdDsa, None)])
        } else {
            Ok(Vec::new())
        }
    });
    let verifier = JwtVerifier::new(
        Arc::new(source),
        Arc::new(clock),
        JwtSettings {
            issuer: ISSUER.into(),
            audience: ISSUER.into(),
            key_grace: Duration::from_secs(30 * 86_400),
        },
        Arc::new(Remembered::default()),
    );
    let token = token(header("k1"), claims());
    assert!(verifier.verify(&token).await.is_ok());
    *at.lock().unwrap() = now() + chrono::Duration::seconds(599);
    assert!(
        verifier.verify(&token).await.is_ok(),
        "within ten minutes the set is trusted"
    );
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
    *at.lock().unwrap() = now() + chrono::Duration::seconds(601);
    assert_eq!(reason(verifier.verify(&token).await), AuthFailure::UnknownKey);
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2, "re-read once");
}
