//! JSON bodies of a known set of fields, read and parsed with bounded cost.
//!
//! - The body is read within `min(MAX_REQUEST_SIZE, T::MAX_BYTES)`, counting
//!   the bytes actually read (a chunked body too): 413 beyond. A resource
//!   whose valid bodies are small (an item is at most ~790 KB of JSON) says so
//!   with `MAX_BYTES`, so a hostile body never costs more memory than a real one.
//! - Reading the whole body must finish within `REQUEST_BODY_TIMEOUT`: a
//!   client that announces more than it sends (or stops mid-chunk) gets 408
//!   and the connection is closed, instead of holding a socket forever. For
//!   a `Content-Length` body actix closes a connection whose body was left
//!   unread; a chunked one it would keep draining, so the read side of the
//!   socket is shut down ([`ConnectionSocket`], recorded per connection by
//!   [`remember_socket`]) and the 408 is the connection's last answer.
//! - The content type must be `application/json` or `application/<x>+json`.
//! - The body is parsed in one streaming pass: the allowed fields keep their
//!   value (arrays and objects are never built, only recognized as such), an
//!   unknown or repeated key becomes a field error, and once
//!   [`domain::validation::MAX_FIELD_ERRORS`] errors are recorded the parse
//!   stops — a million unknown keys cost fifty errors, not a million.
//!   Duplicate keys are refused (422): `{"name":"a","name":"b"}` is ambiguous.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use domain::validation::FieldErrors;
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use validator::Validate;

use crate::error::ApiError;

/// Fields a client can never set: their errors say so.
const SERVER_SET: [&str; 5] = ["id", "owner_id", "organization_id", "created_at", "updated_at"];

/// How bodies are read: set once from the settings, as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyConfig {
    /// `MAX_REQUEST_SIZE`: the most bytes any body may have.
    pub max_bytes: usize,
    /// `REQUEST_BODY_TIMEOUT`: the longest the whole body may take to arrive.
    pub timeout: Duration,
}

impl Default for BodyConfig {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A second handle on a connection's socket, kept in the connection's data,
/// so a request that stalls can end its connection.
#[derive(Debug)]
pub struct ConnectionSocket(socket2::Socket);

/// `HttpServer::on_connect` hook: records a [`ConnectionSocket`] for each
/// accepted TCP connection (one `dup` of the descriptor, closed with it).
pub fn remember_socket(connection: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Ok(socket) = socket2::SockRef::from(stream).try_clone()
    {
        data.insert(ConnectionSocket(socket));
    }
}

/// The value of an allowed field, as far as a converter needs it. Arrays and
/// objects are skipped over, not built.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// Any number.
    Number,
    /// A string.
    String(String),
    /// An array (its content is not kept).
    Array,
    /// An object (its content is not kept).
    Object,
}

/// The allowed fields a body held, each at most once, in body order.
#[derive(Debug, Default)]
pub struct Fields(Vec<(&'static str, FieldValue)>);

impl Fields {
    /// The value of `name`, if the body had it.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Takes the value of `name` out, if the body had it.
    pub fn take(&mut self, name: &str) -> Option<FieldValue> {
        let at = self.0.iter().position(|(n, _)| *n == name)?;
        Some(self.0.swap_remove(at).1)
    }

    /// Takes string `name`: `None` when absent, or when it is not a string
    /// (then a `null` or `type_error` is in `errors`).
    pub fn string(&mut self, errors: &mut FieldErrors, name: &str) -> Option<String> {
        match self.take(name)? {
            FieldValue::String(s) => Some(s),
            other => {
                type_error(errors, name, &other, "a string");
                None
            }
        }
    }

    /// Takes boolean `name`, as [`Fields::string`] does.
    pub fn boolean(&mut self, errors: &mut FieldErrors, name: &str) -> Option<bool> {
        match self.take(name)? {
            FieldValue::Bool(b) => Some(b),
            other => {
                type_error(errors, name, &other, "a boolean");
                None
            }
        }
    }

    /// Takes `name`, a string or null: `Some(None)` for null, `Some(Some(s))`
    /// for a string, `None` when absent or of another type (a `type_error`).
    pub fn nullable_string(&mut self, errors: &mut FieldErrors, name: &str) -> Option<Option<String>> {
        match self.take(name)? {
            FieldValue::String(s) => Some(Some(s)),
            FieldValue::Null => Some(None),
            _ => {
                errors.push(name, "type_error", "must be a string or null");
                None
            }
        }
    }

    /// A `missing` error on `name` unless the body has it (a required field).
    pub fn require(&self, errors: &mut FieldErrors, name: &str) {
        if self.get(name).is_none() {
            errors.push(name, "missing", "is required");
        }
    }
}

/// `null` (`must not be null`) or `type_error` (`must be <expected>`).
fn type_error(errors: &mut FieldErrors, field: &str, value: &FieldValue, expected: &str) {
    if *value == FieldValue::Null {
        errors.push(field, "null", "must not be null");
    } else {
        errors.push(field, "type_error", format!("must be {expected}"));
    }
}

/// A request body type made from a JSON object's fields, then checked with
/// its `validator` rules.
pub trait FromFields: Sized + Validate {
    /// The keys a client may send; any other is an `unknown_field` error.
    const FIELDS: &'static [&'static str];
    /// The largest body any valid value can need (JSON escapes included).
    const MAX_BYTES: usize = usize::MAX;

    /// Builds the value from the fields present. A field that is missing or
    /// of the wrong type gets an error in `errors` and a placeholder value
    /// (its rules are then not reported: one error per field).
    fn from_fields(fields: Fields, errors: &mut FieldErrors) -> Self;
}

/// Parses, converts and validates a body, reporting every problem at once.
///
/// # Errors
/// As [`parse_fields`], plus 422 for type and rule errors.
pub fn parse_body<T: FromFields>(bytes: &[u8]) -> Result<T, ApiError> {
    let (fields, mut errors) = parse_fields(bytes, T::FIELDS)?;
    let value = T::from_fields(fields, &mut errors);
    if let Err(invalid) = value.validate() {
        let mut broken: Vec<_> = invalid.field_errors().into_iter().collect();
        broken.sort_by(|a, b| a.0.cmp(&b.0));
        for (field, rules) in broken {
            if errors.as_slice().iter().any(|e| e.field == field) {
                continue;
            }
            for rule in rules {
                errors.push(&field, &rule.code, rule.message.as_deref().unwrap_or("is invalid"));
            }
        }
    }
    errors.into_result().map_err(ApiError::validation)?;
    Ok(value)
}

/// A body of type `T` (see the module docs).
#[derive(Debug)]
pub struct JsonBody<T>(pub T, pub BodyFingerprint);

/// A fingerprint of the body's exact bytes (XXH3-128, hex): what an
/// `Idempotency-Key` is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyFingerprint(pub String);

/// Parses `bytes` as a JSON object of `allowed` fields.
///
/// # Errors
/// 400 for malformed JSON, 422 for JSON that is not an object or has unknown
/// or repeated keys (at most [`domain::validation::MAX_FIELD_ERRORS`] reported).
pub fn parse_fields(bytes: &[u8], allowed: &'static [&'static str]) -> Result<(Fields, FieldErrors), ApiError> {
    let mut fields = Fields::default();
    let mut errors = FieldErrors::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let outcome = ObjectSeed {
        allowed,
        fields: &mut fields,
        errors: &mut errors,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match outcome {
        Ok(()) => Ok((fields, errors)),
        // The visitor stopped on purpose: the report is full.
        Err(_) if errors.is_truncated() => Err(ApiError::validation(errors)),
        Err(error) if error.to_string().starts_with(NOT_AN_OBJECT) => Err(ApiError::validation(FieldErrors::single(
            "body",
            "type_error",
            "must be a JSON object",
        ))),
        Err(error) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Malformed JSON: {error}"),
        )),
    }
}

const NOT_AN_OBJECT: &str = "body is not a JSON object";
const REPORT_FULL: &str = "error report full";

struct ObjectSeed<'a> {
    allowed: &'static [&'static str],
    fields: &'a mut Fields,
    errors: &'a mut FieldErrors,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.allowed.iter().find(|f| **f == key) {
                Some(&name) if self.fields.get(name).is_some() => {
                    map.next_value::<IgnoredAny>()?;
                    self.errors
                        .push(name, "duplicate_field", "appears more than once in the body");
                }
                Some(&name) => {
                    let value = map.next_value::<FieldValue>()?;
                    self.fields.0.push((name, value));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    let message = if SERVER_SET.contains(&key.as_ref()) {
                        "is set by the server and cannot be given"
                    } else {
                        "unknown field"
                    };
                    self.errors.push(&key, "unknown_field", message);
                }
            }
            if self.errors.is_truncated() {
                return Err(de::Error::custom(REPORT_FULL));
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(NOT_AN_OBJECT))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(NOT_AN_OBJECT))
    }
}

/// A key, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> de::Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = FieldValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_unit<E: de::Error>(self) -> Result<FieldValue, E> {
                Ok(FieldValue::Null)
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<FieldValue, E> {
                Ok(FieldValue::Bool(v))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldValue, E> {
                Ok(FieldValue::String(v.to_owned()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<FieldValue, E> {
                Ok(FieldValue::String(v))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FieldValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldValue::Array)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldValue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FieldValue::Object)
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// `application/json`, or `application/<subtype>+json` with a non-empty
/// subtype (`application/merge-patch+json`); parameters are ignored.
fn is_json(req: &HttpRequest) -> bool {
    let Some(Ok(content_type)) = req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some(subtype) = essence.strip_prefix("application/") else {
        return false;
    };
    subtype == "json"
        || subtype.strip_suffix("+json").is_some_and(|prefix| {
            !prefix.is_empty()
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.".contains(&b))
        })
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Request body larger than {limit} bytes"),
    )
}

/// Reads the whole body within `limit` bytes.
async fn read_body(mut payload: Payload, limit: usize, announced: Option<usize>) -> Result<Vec<u8>, ApiError> {
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    // Sized once from Content-Length (≤ limit): no copies while growing, and
    // pages a stalled client never sends are never touched (not resident).
    let mut body = Vec::with_capacity(announced.unwrap_or(16 * 1024));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("Could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl<T: FromFields + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !is_json(req) {
            let error = ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            );
            return Box::pin(async move { Err(error.into()) });
        }
        let config = req.app_data::<BodyConfig>().copied().unwrap_or_default();
        let limit = config.max_bytes.min(T::MAX_BYTES);
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let payload = payload.take();
        let req = req.clone();
        Box::pin(async move {
            let Ok(read) = tokio::time::timeout(config.timeout, read_body(payload, limit, announced)).await else {
                // Stop reading this connection (its read side is shut down):
                // actix then sends the 408 and closes it, instead of waiting
                // to drain a body that may never come.
                if let Some(socket) = req.conn_data::<ConnectionSocket>() {
                    let _ = socket.0.shutdown(std::net::Shutdown::Read);
                }
                return Err(
                    ApiError::new(StatusCode::REQUEST_TIMEOUT, "Request body not received in time")
                        .closing_connection()
                        .into(),
                );
            };
            let bytes = read?;
            let fingerprint = BodyFingerprint(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes)));
            Ok(Self(parse_body(&bytes)?, fingerprint))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &[&str] = &["name", "is_active"];

    fn kinds(result: Result<(Fields, FieldErrors), ApiError>) -> Vec<(String, String)> {
        let errors = match result {
            Ok((_, errors)) => errors,
            Err(error) => error.details().cloned().unwrap_or_default(),
        };
        errors
            .as_slice()
            .iter()
            .map(|e| (e.field.clone(), e.kind.clone()))
            .collect()
    }

    #[test]
    fn allowed_fields_keep_scalars_and_only_the_kind_of_containers() {
        let (fields, errors) = parse_fields(br#"{"name":"a","is_active":[1,[2,{"x":3}]]}"#, ALLOWED).unwrap();
        assert!(errors.is_empty());
        assert_eq!(fields.get("name"), Some(&FieldValue::String("a".into())));
        assert_eq!(fields.get("is_active"), Some(&FieldValue::Array));
    }

    #[test]
    fn duplicate_keys_are_errors_naming_the_field() {
        let got = kinds(parse_fields(br#"{"name":"a","name":"b"}"#, ALLOWED));
        assert_eq!(got, vec![("name".into(), "duplicate_field".into())]);
        let got = kinds(parse_fields(
            br#"{"name":"x","is_active":"x","is_active":true}"#,
            ALLOWED,
        ));
        assert_eq!(got, vec![("is_active".into(), "duplicate_field".into())]);
    }

    #[test]
    fn a_hundred_thousand_unknown_keys_stop_the_parse_at_the_cap() {
        let body = format!(
            "{{{}}}",
            (0..100_000)
                .map(|i| format!("\"{i:x}\":0"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let error = parse_fields(body.as_bytes(), ALLOWED).unwrap_err();
        let details = error.details().unwrap();
        assert_eq!(details.as_slice().len(), domain::validation::MAX_FIELD_ERRORS);
        assert!(details.is_truncated());
    }

    #[test]
    fn non_objects_and_malformed_json_are_told_apart() {
        let not_object = parse_fields(b"[1,2]", ALLOWED).unwrap_err();
        assert_eq!(not_object.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let malformed = parse_fields(br#"{"name":"#, ALLOWED).unwrap_err();
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
        let trailing = parse_fields(br#"{"name":"a"} x"#, ALLOWED).unwrap_err();
        assert_eq!(trailing.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn only_json_media_types_are_json() {
        let accepts = |ct: &str| {
            let req = actix_web::test::TestRequest::default()
                .insert_header((header::CONTENT_TYPE, ct))
                .to_http_request();
            is_json(&req)
        };
        assert!(accepts("application/json"));
        assert!(accepts("Application/JSON; charset=utf-8"));
        assert!(accepts("application/merge-patch+json"));
        assert!(!accepts("application/+json"));
        assert!(!accepts("text/json"));
        assert!(!accepts("application/x y+json"));
    }
}
