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

/// What values are bound to, in order: a query with `$N` placeholders, or
/// a row of a `QueryBuilder` (which writes SQLite's `?`). A row of many
/// values is written through the builder: SQLite finds a `$N` parameter by
/// walking the list of names, so binding thousands of them in one
/// statement costs their square (it was half the intake's time).
pub trait Binds<'q>: Sized {
    fn value<T>(self, v: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, Db> + sqlx::Type<Db>;
}

impl<'q> Binds<'q> for sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments> {
    fn value<T>(self, v: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    {
        self.bind(v)
    }
}

impl<'q> Binds<'q> for &mut sqlx::query_builder::Separated<'_, Db, &'static str> {
    fn value<T>(self, v: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    {
        self.push_bind(v)
    }
}
