//! Which database errors the writer waits out.
//!
//! A transient error says nothing about the rows: the database restarted, the network
//! broke, another transaction won a lock, the disk is full for now. The batch is applied
//! again, unchanged, once the database answers (on a new connection: after any failure
//! the writer closes its connection, which may be broken or left inside a transaction).
//! Any other error is about the rows themselves (a constraint, a value the database
//! refuses) and would fail every time.

use sqlx::error::DatabaseError as _;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

pub(super) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::PoolTimedOut
        // A connection confused about its transaction.
        | sqlx::Error::BeginFailed
        | sqlx::Error::InvalidSavePointStatement => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
                postgres(pg.code())
            } else if let Some(lite) = db.try_downcast_ref::<SqliteError>() {
                sqlite(lite.code().and_then(|c| c.parse().ok()).unwrap_or(0))
            } else {
                false
            }
        }
        // The store is closing (PoolClosed), or the rows are at fault.
        _ => false,
    }
}

/// By SQLSTATE.
fn postgres(code: &str) -> bool {
    // Connection exceptions (08); admin shutdown, crash shutdown, cannot connect now; a
    // read-only transaction (a standby after a failover); serialization failure,
    // deadlock, lock not available, statement timeout; insufficient resources (53: disk
    // full, out of memory, too many connections); I/O error.
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "25006" | "40001" | "40P01" | "55P03" | "57014" | "58030"
        )
}

/// By SQLite's extended result code (its low byte is the primary code): busy, locked,
/// out of memory, disk full; read-only, I/O error, cannot open (the file went away or
/// failed: a new connection opens it again).
fn sqlite(code: i32) -> bool {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const NOMEM: i32 = 7;
    const READONLY: i32 = 8;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    matches!(
        code & 0xff,
        BUSY | LOCKED | NOMEM | READONLY | IOERR | FULL | CANTOPEN
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_codes() {
        assert!(postgres("08006"), "connection failure");
        assert!(postgres("57P01"), "admin shutdown");
        assert!(postgres("57P03"), "cannot connect now");
        assert!(postgres("40001"), "serialization failure");
        assert!(postgres("40P01"), "deadlock");
        assert!(postgres("53100"), "disk full");
        assert!(!postgres("23505"), "unique violation");
        assert!(!postgres("22P02"), "invalid text");
    }

    #[test]
    fn sqlite_codes() {
        assert!(sqlite(5), "busy");
        assert!(sqlite(517), "busy snapshot");
        assert!(sqlite(13), "full");
        assert!(sqlite(8), "read-only");
        assert!(sqlite(1032), "read-only (dbmoved)");
        assert!(sqlite(10), "I/O error");
        assert!(sqlite(3850), "I/O error (write)");
        assert!(sqlite(14), "cannot open");
        assert!(!sqlite(19), "constraint");
        assert!(!sqlite(2067), "unique constraint");
    }

    #[test]
    fn driver_errors() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(is_transient(&io));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::PoolClosed));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }
}
