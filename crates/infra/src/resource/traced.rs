//! [`TracedRepository`]: an OpenTelemetry span around each call of any
//! resource's [`ScopedRepository`] (a statement, or the wait for a lane
//! batch), named `<resource>.<operation>`, with the rows it returned — only
//! inside a traced request (see [`crate::db::span`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::resource::{Changes, Id, Record, RecordPage, ScopedRepository};
use domain::scope::Owner;
use tracing::Instrument as _;

use crate::db::{DbBackendKind, record_span};

/// Spans around `inner`'s calls.
pub struct TracedRepository<T> {
    inner: T,
    kind: DbBackendKind,
}

impl<T> TracedRepository<T> {
    /// `inner`, traced as statements on `kind`.
    pub fn new(inner: T, kind: DbBackendKind) -> Self {
        Self { inner, kind }
    }

    /// The inner repository.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

fn rows(span: &tracing::Span, count: usize) {
    span.record("db.response.returned_rows", i64::try_from(count).unwrap_or(i64::MAX));
}

#[async_trait]
impl<R: Record, T: ScopedRepository<R>> ScopedRepository<R> for TracedRepository<T> {
    async fn list(&self, owner: &Owner, page: RecordPage<R>) -> Result<Vec<R>, Error> {
        let span = record_span(self.kind, R::RESOURCE, "list");
        let result = self.inner.list(owner, page).instrument(span.clone()).await;
        if let Ok(records) = &result {
            rows(&span, records.len());
        }
        result
    }

    async fn find(&self, owner: &Owner, id: Id<R>) -> Result<Option<R>, Error> {
        let span = record_span(self.kind, R::RESOURCE, "find");
        let result = self.inner.find(owner, id).instrument(span.clone()).await;
        if let Ok(found) = &result {
            rows(&span, usize::from(found.is_some()));
        }
        result
    }

    async fn insert(&self, record: &R) -> Result<(), Error> {
        self.inner
            .insert(record)
            .instrument(record_span(self.kind, R::RESOURCE, "insert"))
            .await
    }

    async fn update(&self, owner: &Owner, id: Id<R>, changes: &Changes<R::Patch>) -> Result<Option<R>, Error> {
        let span = record_span(self.kind, R::RESOURCE, "update");
        let result = self.inner.update(owner, id, changes).instrument(span.clone()).await;
        if let Ok(found) = &result {
            rows(&span, usize::from(found.is_some()));
        }
        result
    }

    async fn delete(&self, owner: &Owner, id: Id<R>) -> Result<bool, Error> {
        self.inner
            .delete(owner, id)
            .instrument(record_span(self.kind, R::RESOURCE, "delete"))
            .await
    }

    async fn delete_unchanged(&self, owner: &Owner, id: Id<R>, updated_at: DateTime<Utc>) -> Result<bool, Error> {
        self.inner
            .delete_unchanged(owner, id, updated_at)
            .instrument(record_span(self.kind, R::RESOURCE, "delete_unchanged"))
            .await
    }
}
