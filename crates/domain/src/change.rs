//! What a resource's service reports after each successful write, for
//! whatever keeps state derived from the resource in step (the api's
//! response cache). The domain only says *what* changed and *where*; it
//! never knows who listens or what they keep.

use async_trait::async_trait;

use crate::scope::Caller;

/// One successful write: a record created, or one record changed or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The resource's name (`items`), as its API-key permissions name it.
    pub resource: &'static str,
    /// The scope written in ([`Caller::namespace`]): everything listed
    /// there may read differently now.
    pub scope: String,
    /// The record changed or deleted; `None` for a create, which changes no
    /// existing record.
    pub record: Option<String>,
}

impl Change {
    /// A record of `resource` created in the caller's scope.
    pub fn created(resource: &'static str, caller: &Caller) -> Self {
        Self {
            resource,
            scope: caller.namespace(),
            record: None,
        }
    }

    /// Record `id` of `resource` changed or deleted in the caller's scope.
    pub fn changed(resource: &'static str, caller: &Caller, id: impl std::fmt::Display) -> Self {
        Self {
            resource,
            scope: caller.namespace(),
            record: Some(id.to_string()),
        }
    }
}

/// Told of every successful write before the service returns, so the
/// writer's next read (and every other instance's) sees it. An observer
/// that fails handles it itself (retries, logs): a write that succeeded in
/// storage is never failed by what derives from it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChangeObserver: Send + Sync {
    /// `change` has been written.
    async fn changed(&self, change: &Change);
}
