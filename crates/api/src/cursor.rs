//! Pagination cursors: opaque, URL-safe, signed with `SECRET_KEY`.
//!
//! A cursor is `base64url(payload ‖ tag)` without padding, where the payload
//! is the sort key's version byte, the keyset position (a [`Keyset`]: for
//! items, the last item's `created_at` in µs and its id) and 8 bytes of
//! SHA-256 of the scope it was issued for (the caller and organization), and
//! the tag is HMAC-SHA256(key, payload) cut to 16 bytes, checked in constant
//! time. One codec serves every resource: each names its position type. A cursor that was tampered with,
//! truncated, issued to another caller, or written by another version of the
//! sort key is refused (the API answers 422). Without `SECRET_KEY`
//! (development only) a random key made at start-up signs them: cursors then
//! stop working when the process restarts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use domain::page::{Position, RecordId};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const SCOPE: usize = 8;
const TAG: usize = 16;
/// Longest cursor text looked at (an item's is 66 characters).
const MAX_CHARS: usize = 256;

/// A keyset position a cursor can carry: a fixed number of bytes.
pub trait Keyset: Sized {
    /// The sort key's version: a cursor of another version is refused
    /// ("start again"). Change it when the bytes change meaning.
    const VERSION: u8;
    /// How many bytes [`Keyset::write`] writes.
    const LEN: usize;
    /// Appends exactly [`Keyset::LEN`] bytes.
    fn write(&self, out: &mut Vec<u8>);
    /// The position `bytes` ([`Keyset::LEN`] of them) stand for, if any.
    fn read(bytes: &[u8]) -> Option<Self>;
}

/// Every resource's default order: `(created_at, id)` descending.
impl<Id: RecordId> Keyset for Position<Id> {
    const VERSION: u8 = 1;
    const LEN: usize = 8 + 16;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.created_at.timestamp_micros().to_be_bytes());
        out.extend_from_slice(self.id.as_uuid().as_bytes());
    }

    fn read(bytes: &[u8]) -> Option<Self> {
        let micros = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let id = uuid::Uuid::from_slice(bytes.get(8..24)?).ok()?;
        Some(Self {
            created_at: DateTime::from_timestamp_micros(micros)?,
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

fn scope_digest(scope: &str) -> [u8; 8] {
    let digest = Sha256::digest(scope.as_bytes());
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

    /// The cursor of `position`, for `scope`.
    pub fn encode<P: Keyset>(&self, position: &P, scope: &str) -> String {
        let mut bytes = Vec::with_capacity(1 + P::LEN + SCOPE + TAG);
        bytes.push(P::VERSION);
        position.write(&mut bytes);
        debug_assert_eq!(bytes.len(), 1 + P::LEN, "Keyset::write wrote LEN bytes");
        bytes.extend_from_slice(&scope_digest(scope));
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position a cursor stands for, if it is genuine and `scope`'s.
    ///
    /// # Errors
    /// Why it was refused.
    pub fn decode<P: Keyset>(&self, cursor: &str, scope: &str) -> Result<P, CursorError> {
        if cursor.len() > MAX_CHARS {
            return Err(CursorError::Invalid);
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| CursorError::Invalid)?;
        let payload_len = 1 + P::LEN + SCOPE;
        if bytes.len() != payload_len + TAG {
            return Err(CursorError::Invalid);
        }
        let (payload, tag) = bytes.split_at(payload_len);
        let mut mac = self.key.clone();
        mac.update(payload);
        mac.verify_truncated_left(tag).map_err(|_| CursorError::Invalid)?;
        if payload[0] != P::VERSION {
            return Err(CursorError::OtherVersion);
        }
        if payload[1 + P::LEN..] != scope_digest(scope) {
            return Err(CursorError::OtherScope);
        }
        P::read(&payload[1..=P::LEN]).ok_or(CursorError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::item::{ItemId, Position};

    fn position() -> Position {
        Position {
            created_at: DateTime::from_timestamp_micros(1_764_480_000_123_456).unwrap(),
            id: ItemId::generate(),
        }
    }

    #[test]
    fn a_cursor_round_trips_for_its_scope_only() {
        let codec = CursorCodec::new(b"secret-key");
        let at = position();
        let cursor = codec.encode(&at, "alice");
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(codec.decode::<Position>(&cursor, "alice"), Ok(at));
        assert_eq!(codec.decode::<Position>(&cursor, "bob"), Err(CursorError::OtherScope));
        assert_eq!(
            CursorCodec::new(b"another-key").decode::<Position>(&cursor, "alice"),
            Err(CursorError::Invalid),
            "signed with another key"
        );
    }

    #[test]
    fn tampered_truncated_and_foreign_version_cursors_are_refused() {
        let codec = CursorCodec::new(b"secret-key");
        let cursor = codec.encode(&position(), "alice");
        let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        bytes[5] ^= 1;
        assert_eq!(
            codec.decode::<Position>(&URL_SAFE_NO_PAD.encode(&bytes), "alice"),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            codec.decode::<Position>(&cursor[..cursor.len() - 2], "alice"),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            codec.decode::<Position>("not a cursor!", "alice"),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            codec.decode::<Position>(&"A".repeat(5000), "alice"),
            Err(CursorError::Invalid)
        );
        // A genuine signature over another sort key version.
        let mut other = URL_SAFE_NO_PAD.decode(&cursor).unwrap()[..1 + Position::LEN + SCOPE].to_vec();
        other[0] = 2;
        let tag = codec.tag(&other);
        other.extend_from_slice(&tag);
        assert_eq!(
            codec.decode::<Position>(&URL_SAFE_NO_PAD.encode(&other), "alice"),
            Err(CursorError::OtherVersion)
        );
    }
}
