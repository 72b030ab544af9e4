//! A port for checking that a dependency (database, cache) answers.

use async_trait::async_trait;

use crate::error::Error;

/// One dependency that `/health` reports on.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DependencyProbe: Send + Sync {
    /// The name under which the dependency is reported (`database`, `redis`).
    fn name(&self) -> &'static str;

    /// Checks the dependency with a cheap round-trip (`SELECT 1`, `PING`).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when it does not answer correctly.
    async fn check(&self) -> Result<(), Error>;
}
