//! [`DependencyProbe`]s for the database and Redis.

use async_trait::async_trait;
use domain::Error;
use domain::health::DependencyProbe;

use crate::db::Db;
use crate::redis::RedisClient;

/// Checks the database with `SELECT 1`.
#[derive(Debug, Clone)]
pub struct DatabaseProbe(pub Db);

#[async_trait]
impl DependencyProbe for DatabaseProbe {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), Error> {
        self.0.ping().await
    }
}

/// Checks Redis with `PING`.
#[derive(Debug, Clone)]
pub struct RedisProbe(pub RedisClient);

#[async_trait]
impl DependencyProbe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn check(&self) -> Result<(), Error> {
        self.0.ping().await
    }
}
