//! Transactions and what queries run on, for one backend (this file is
//! compiled once per backend, see `sql/mod.rs`).

use sqlx::Pool;

use super::{BEGIN_WRITE, Db};
use crate::store::Result;

/// A write transaction (see `BEGIN_WRITE`).
pub async fn begin(pool: &Pool<Db>) -> Result<sqlx::Transaction<'static, Db>> {
    if BEGIN_WRITE.is_empty() {
        Ok(pool.begin().await?)
    } else {
        Ok(pool.begin_with(BEGIN_WRITE).await?)
    }
}

/// What queries run on: the pool (each statement takes a
/// connection) or one connection, inside a transaction.
pub trait Exec<'e>: sqlx::Executor<'e, Database = Db> {}
impl<'e, E: sqlx::Executor<'e, Database = Db>> Exec<'e> for E {}
