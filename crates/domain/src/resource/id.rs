//! Record ids: UUIDs (v7, so ids sort by creation time), typed by resource
//! so an item's id is never taken for another resource's.

use std::marker::PhantomData;

use serde::{Serialize, Serializer};
use uuid::Uuid;

use crate::page::RecordId;

/// The id of a record of `R`.
pub struct Id<R>(Uuid, PhantomData<fn() -> R>);

impl<R> Id<R> {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7(), PhantomData)
    }

    /// Parses a client-supplied id; `None` for anything that is not a UUID,
    /// which callers answer exactly like a missing record.
    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::try_parse(raw).ok().map(Self::from)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl<R> From<Uuid> for Id<R> {
    fn from(id: Uuid) -> Self {
        Self(id, PhantomData)
    }
}

impl<R> Clone for Id<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Id<R> {}

impl<R> PartialEq for Id<R> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<R> Eq for Id<R> {}

impl<R> std::hash::Hash for Id<R> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl<R> std::fmt::Debug for Id<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl<R> std::fmt::Display for Id<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl<R> Serialize for Id<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<R: 'static> RecordId for Id<R> {
    fn as_uuid(&self) -> Uuid {
        self.0
    }

    fn from_uuid(id: Uuid) -> Self {
        Self::from(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing;

    #[test]
    fn ids_parse_only_uuids_and_print_as_them() {
        assert!(Id::<Thing>::parse("not-a-uuid").is_none());
        assert!(Id::<Thing>::parse("").is_none());
        let id = Id::<Thing>::generate();
        assert_eq!(Id::parse(&id.to_string()), Some(id));
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
    }

    #[test]
    fn ids_are_time_ordered() {
        let first = Id::<Thing>::generate();
        let second = Id::<Thing>::generate();
        assert!(first.as_uuid() < second.as_uuid());
    }
}
