//! Pagination cursors: opaque, URL-safe, signed with `SECRET_KEY`.
//!
//! A cursor is `base64url(payload ‖ tag)` without padding, where the payload
//! is the position format's version byte, 8 bytes of SHA-256 of the scope it
//! was issued for (the caller and organization), 8 bytes of SHA-256 of the
//! list query it was issued for (its sort and filter, canonical), and the
//! keyset position (a [`Keyset`]: the last record's id and its sort field's
//! value), and the tag is HMAC-SHA256(key, payload) cut to 16 bytes, checked
//! in constant time. One codec serves every resource: each names its
//! position type. A cursor that was tampered with, truncated, issued to
//! another caller or for another sort or filter, or written by another
//! version of the format is refused (the API answers 422). Without `SECRET_KEY`
//! (development only) a random key made at start-up signs them: cursors then
//! stop working when the process restarts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use domain::page::{Position, RecordId, SortKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const SCOPE: usize = 8;
const QUERY: usize = 8;
const TAG: usize = 16;
/// Longest cursor text looked at (a timestamp position's is 88 characters;
/// a text one carries up to 255 characters of the field).
const MAX_CHARS: usize = 2048;

/// A keyset position a cursor can carry.
pub trait Keyset: Sized {
    /// The format's version: a cursor of another version is refused
    /// ("start again"). Change it when the bytes change meaning.
    const VERSION: u8;
    /// Appends the position's bytes.
    fn write(&self, out: &mut Vec<u8>);
    /// The position `bytes` (all of them) stand for, if any.
    fn read(bytes: &[u8]) -> Option<Self>;
}

/// Every resource's positions: the id (16 bytes), then the sort field's
/// value: `0` and a timestamp in µs (8 bytes), or `1` and UTF-8 text.
impl<Id: RecordId> Keyset for Position<Id> {
    const VERSION: u8 = 2;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.id.as_uuid().as_bytes());
        match &self.key {
            SortKey::Time(at) => {
                out.push(0);
                out.extend_from_slice(&at.timestamp_micros().to_be_bytes());
            }
            SortKey::Text(text) => {
                out.push(1);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }

    fn read(bytes: &[u8]) -> Option<Self> {
        let id = uuid::Uuid::from_slice(bytes.get(..16)?).ok()?;
        let key = match (bytes.get(16)?, bytes.get(17..)?) {
            (0, micros) => SortKey::Time(DateTime::from_timestamp_micros(i64::from_be_bytes(
                micros.try_into().ok()?,
            ))?),
            (1, text) => SortKey::Text(std::str::from_utf8(text).ok()?.to_owned()),
            _ => return None,
        };
        Some(Self {
            key,
            id: Id::from_uuid(id),
        })
    }
}

/// Why a cursor was refused (for the field error's message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorError {
    /// Not base64url, wrong length, or a bad signature.
    Invalid,
    /// Signed, but for another sort key version.
    OtherVersion,
    /// Signed, but issued to another caller.
    OtherScope,
    /// Signed, but for another sort or filter.
    OtherQuery,
}

/// Signs and reads cursors.
#[derive(Clone)]
pub struct CursorCodec {
    key: HmacSha256,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(<key>)")
    }
}

fn digest(text: &str) -> [u8; 8] {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

impl CursorCodec {
    /// A codec keyed with `key` (`SECRET_KEY`).
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default())),
        }
    }

    /// A codec with a random key (development without `SECRET_KEY`).
    pub fn random() -> Self {
        let key: [u8; 32] = rand::random();
        Self::new(&key)
    }

    fn tag(&self, payload: &[u8]) -> [u8; TAG] {
        let mut mac = self.key.clone();
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&full[..TAG]);
        tag
    }

    /// The cursor of `position`, for `scope` and the list query `query`
    /// (its canonical text).
    pub fn encode<P: Keyset>(&self, position: &P, scope: &str, query: &str) -> String {
        let mut bytes = Vec::with_capacity(1 + SCOPE + QUERY + 32 + TAG);
        bytes.push(P::VERSION);
        bytes.extend_from_slice(&digest(scope));
        bytes.extend_from_slice(&digest(query));
        position.write(&mut bytes);
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position `cursor` carries, if this codec signed it for `scope`
    /// and `query`.
    ///
    /// # Errors
    /// Why it was refused.
    pub fn decode<P: Keyset>(&self, cursor: &str, scope: &str, query: &str) -> Result<P, CursorError> {
        if cursor.len() > MAX_CHARS {
            return Err(CursorError::Invalid);
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| CursorError::Invalid)?;
        if bytes.len() < 1 + SCOPE + QUERY + TAG {
            return Err(CursorError::Invalid);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG);
        let mut mac = self.key.clone();
        mac.update(payload);
        mac.verify_truncated_left(tag).map_err(|_| CursorError::Invalid)?;
        if payload[0] != P::VERSION {
            return Err(CursorError::OtherVersion);
        }
        if payload[1..=SCOPE] != digest(scope) {
            return Err(CursorError::OtherScope);
        }
        if payload[1 + SCOPE..1 + SCOPE + QUERY] != digest(query) {
            return Err(CursorError::OtherQuery);
        }
        P::read(&payload[1 + SCOPE + QUERY..]).ok_or(CursorError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::item::{ItemId, Position};

    const NEWEST: &str = "sort=-created_at";

    fn position() -> Position {
        Position {
            key: SortKey::Time(DateTime::from_timestamp_micros(1_764_480_000_123_456).unwrap()),
            id: ItemId::generate(),
        }
    }

    #[test]
    fn a_cursor_round_trips_for_its_scope_and_query_only() {
        let codec = CursorCodec::new(b"secret-key");
        let at = position();
        let cursor = codec.encode(&at, "alice", NEWEST);
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(codec.decode::<Position>(&cursor, "alice", NEWEST), Ok(at));
        assert_eq!(
            codec.decode::<Position>(&cursor, "bob", NEWEST),
            Err(CursorError::OtherScope)
        );
        assert_eq!(
            codec.decode::<Position>(&cursor, "alice", "sort=name"),
            Err(CursorError::OtherQuery)
        );
        assert_eq!(
            CursorCodec::new(b"another-key").decode::<Position>(&cursor, "alice", NEWEST),
            Err(CursorError::Invalid),
            "signed with another key"
        );
    }

    #[test]
    fn a_text_position_round_trips_whatever_its_text() {
        let codec = CursorCodec::new(b"secret-key");
        for text in ["", "lamp", "ünïcødé 🎉", &"x".repeat(255), "a\u{0}b%_"] {
            let at = Position {
                key: SortKey::Text(text.to_owned()),
                id: ItemId::generate(),
            };
            let cursor = codec.encode(&at, "alice", "sort=name");
            assert!(cursor.len() <= MAX_CHARS, "{}", cursor.len());
            assert_eq!(codec.decode::<Position>(&cursor, "alice", "sort=name"), Ok(at));
        }
    }

    #[test]
    fn tampered_truncated_and_foreign_version_cursors_are_refused() {
        let codec = CursorCodec::new(b"secret-key");
        let cursor = codec.encode(&position(), "alice", NEWEST);
        let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        bytes[5] ^= 1;
        assert_eq!(
            codec.decode::<Position>(&URL_SAFE_NO_PAD.encode(&bytes), "alice", NEWEST),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            codec.decode::<Position>(&cursor[..cursor.len() - 2], "alice", NEWEST),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            codec.decode::<Position>("not a cursor!", "alice", NEWEST),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            codec.decode::<Position>(&"A".repeat(5000), "alice", NEWEST),
            Err(CursorError::Invalid)
        );
        // A genuine signature over another format version.
        let decoded = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        let mut other = decoded[..decoded.len() - TAG].to_vec();
        other[0] = 1;
        let tag = codec.tag(&other);
        other.extend_from_slice(&tag);
        assert_eq!(
            codec.decode::<Position>(&URL_SAFE_NO_PAD.encode(&other), "alice", NEWEST),
            Err(CursorError::OtherVersion)
        );
        // A genuine signature over a position that does not parse.
        let mut broken = decoded[..1 + SCOPE + QUERY + 16].to_vec();
        broken.push(7);
        let tag = codec.tag(&broken);
        broken.extend_from_slice(&tag);
        assert_eq!(
            codec.decode::<Position>(&URL_SAFE_NO_PAD.encode(&broken), "alice", NEWEST),
            Err(CursorError::Invalid)
        );
    }
}
