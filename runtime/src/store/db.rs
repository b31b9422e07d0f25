//! The two databases Weir stores in, and what lets one body of store code serve both.
//!
//! SQLite is the embedded default; PostgreSQL is for several nodes on one database.
//! Every statement is written once, in the SQL both understand (numbered `$1`
//! placeholders, TEXT timestamps in RFC 3339, BIGINT integers), and [`with_db!`]
//! compiles the code around it once per backend, so each runs on its own native
//! driver. The few statements that differ ask [`Db::is_postgres`].

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Row, SqlitePool};

/// A connection pool to one of the backends.
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// Evaluates `$body` once per backend, with `$pool` bound to that backend's pool and
/// (in the second form) `$DB` to its sqlx database type.
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::db::Db::Sqlite($pool) => $body,
            $crate::store::db::Db::Postgres($pool) => $body,
        }
    };
    ($db:expr, $pool:ident, $DB:ident => $body:expr) => {
        match $db {
            $crate::store::db::Db::Sqlite($pool) => {
                #[allow(dead_code)]
                type $DB = sqlx::Sqlite;
                $body
            }
            $crate::store::db::Db::Postgres($pool) => {
                #[allow(dead_code)]
                type $DB = sqlx::Postgres;
                $body
            }
        }
    };
}
pub(crate) use with_db;

/// Opening a transaction that writes.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;

    /// On SQLite `BEGIN IMMEDIATE`: the transaction takes the write lock up front
    /// (waiting for it under the busy timeout) instead of failing when a read inside
    /// it would have to become a write while another connection writes.
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
    + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// A column type both backends decode the same way.
pub(crate) trait Col: Sized {
    fn from_sqlite(row: &SqliteRow, col: &str) -> Result<Self, sqlx::Error>;
    fn from_pg(row: &PgRow, col: &str) -> Result<Self, sqlx::Error>;
}

macro_rules! col_types {
    ($($t:ty),*) => {$(
        impl Col for $t {
            fn from_sqlite(row: &SqliteRow, col: &str) -> Result<Self, sqlx::Error> {
                row.try_get(col)
            }
            fn from_pg(row: &PgRow, col: &str) -> Result<Self, sqlx::Error> {
                row.try_get(col)
            }
        }
    )*};
}
col_types!(
    String,
    Option<String>,
    i64,
    Option<i64>,
    f64,
    Option<f64>,
    Vec<u8>
);

/// A row of either backend.
pub(crate) trait DbRow {
    fn col<T: Col>(&self, col: &str) -> Result<T, sqlx::Error>;

    /// An integer column holding 0 or 1.
    fn flag(&self, col: &str) -> Result<bool, sqlx::Error> {
        Ok(self.col::<i64>(col)? != 0)
    }
}

impl DbRow for SqliteRow {
    fn col<T: Col>(&self, col: &str) -> Result<T, sqlx::Error> {
        T::from_sqlite(self, col)
    }
}

impl DbRow for PgRow {
    fn col<T: Col>(&self, col: &str) -> Result<T, sqlx::Error> {
        T::from_pg(self, col)
    }
}

/// Records a state in a run's history, on a connection or in a transaction.
macro_rules! insert_state {
    ($conn:expr, $run_id:expr, $state:expr, $at:expr) => {
        sqlx::query(
            "INSERT INTO run_states (run_id, type, name, message, timestamp)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($run_id)
        .bind($state.kind.as_str())
        .bind(&$state.name)
        .bind(&$state.message)
        .bind($at)
        .execute($conn)
        .await
    };
}
pub(crate) use insert_state;
