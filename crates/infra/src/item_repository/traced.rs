//! [`TracedItemRepository`]: an OpenTelemetry span around each call of any
//! [`ItemRepository`] (a statement, or the wait for a lane batch), with the
//! rows it returned — only inside a traced request (see [`crate::db::span`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::item::{Item, ItemChanges, ItemId, ItemRepository, Page};
use domain::scope::Owner;
use tracing::Instrument as _;

use crate::db::{DbBackendKind, span};

/// Spans around `inner`'s calls.
pub struct TracedItemRepository<R> {
    inner: R,
    kind: DbBackendKind,
}

impl<R> TracedItemRepository<R> {
    /// `inner`, traced as statements on `kind`.
    pub fn new(inner: R, kind: DbBackendKind) -> Self {
        Self { inner, kind }
    }

    /// The inner repository.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

fn rows(span: &tracing::Span, count: usize) {
    span.record("db.response.returned_rows", i64::try_from(count).unwrap_or(i64::MAX));
}

#[async_trait]
impl<R: ItemRepository> ItemRepository for TracedItemRepository<R> {
    async fn list(&self, owner: &Owner, page: Page) -> Result<Vec<Item>, Error> {
        let span = span(self.kind, "items.list");
        let result = self.inner.list(owner, page).instrument(span.clone()).await;
        if let Ok(items) = &result {
            rows(&span, items.len());
        }
        result
    }

    async fn find(&self, owner: &Owner, id: ItemId) -> Result<Option<Item>, Error> {
        let span = span(self.kind, "items.find");
        let result = self.inner.find(owner, id).instrument(span.clone()).await;
        if let Ok(found) = &result {
            rows(&span, usize::from(found.is_some()));
        }
        result
    }

    async fn insert(&self, item: &Item) -> Result<(), Error> {
        self.inner
            .insert(item)
            .instrument(span(self.kind, "items.insert"))
            .await
    }

    async fn update(&self, owner: &Owner, id: ItemId, changes: &ItemChanges) -> Result<Option<Item>, Error> {
        let span = span(self.kind, "items.update");
        let result = self.inner.update(owner, id, changes).instrument(span.clone()).await;
        if let Ok(found) = &result {
            rows(&span, usize::from(found.is_some()));
        }
        result
    }

    async fn delete(&self, owner: &Owner, id: ItemId) -> Result<bool, Error> {
        self.inner
            .delete(owner, id)
            .instrument(span(self.kind, "items.delete"))
            .await
    }

    async fn delete_unchanged(&self, owner: &Owner, id: ItemId, updated_at: DateTime<Utc>) -> Result<bool, Error> {
        self.inner
            .delete_unchanged(owner, id, updated_at)
            .instrument(span(self.kind, "items.delete_unchanged"))
            .await
    }
}
