//! Which database errors the writer waits out, and which of them mean its connection is
//! gone.
//!
//! A transient error says nothing about the rows: the database restarted, the network
//! broke, another transaction won a lock, the disk is full for now. The batch is applied
//! again, unchanged, once the database answers. Any other error is about the rows
//! themselves (a constraint, a value the database refuses) and would fail every time.

use sqlx::error::DatabaseError as _;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// What an error says about the attempt that met it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Class {
    /// Applying the same writes again may succeed.
    pub transient: bool,
    /// The connection cannot be trusted any more: close it and take a new one.
    pub broken: bool,
}

const PERMANENT: Class = Class {
    transient: false,
    broken: false,
};
const WAIT: Class = Class {
    transient: true,
    broken: false,
};
const RECONNECT: Class = Class {
    transient: true,
    broken: true,
};

pub(super) fn classify(e: &sqlx::Error) -> Class {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => RECONNECT,
        // No connection was handed out: nothing to close.
        sqlx::Error::PoolTimedOut => WAIT,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
                postgres(pg.code())
            } else if let Some(lite) = db.try_downcast_ref::<SqliteError>() {
                sqlite(lite.code().and_then(|c| c.parse().ok()).unwrap_or(0))
            } else {
                PERMANENT
            }
        }
        // The store is closing (PoolClosed), or the rows are at fault.
        _ => PERMANENT,
    }
}

/// By SQLSTATE.
fn postgres(code: &str) -> Class {
    match code {
        // Connection exceptions; admin shutdown, crash shutdown, cannot connect now; a
        // read-only transaction (a standby after a failover: another connection may reach
        // the new primary).
        c if c.starts_with("08") => RECONNECT,
        "57P01" | "57P02" | "57P03" | "25006" => RECONNECT,
        // Serialization failure, deadlock, lock not available, statement timeout.
        "40001" | "40P01" | "55P03" | "57014" => WAIT,
        // Insufficient resources (disk full, out of memory, too many connections), I/O.
        c if c.starts_with("53") => WAIT,
        "58030" => RECONNECT,
        _ => PERMANENT,
    }
}

/// By SQLite's extended result code (its low byte is the primary code).
fn sqlite(code: i32) -> Class {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const NOMEM: i32 = 7;
    const READONLY: i32 = 8;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    match code & 0xff {
        BUSY | LOCKED | NOMEM | FULL => WAIT,
        // The file went away, became read-only or failed: a new connection opens it again.
        READONLY | IOERR | CANTOPEN => RECONNECT,
        _ => PERMANENT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_codes() {
        assert_eq!(postgres("08006"), RECONNECT, "connection failure");
        assert_eq!(postgres("57P01"), RECONNECT, "admin shutdown");
        assert_eq!(postgres("57P03"), RECONNECT, "cannot connect now");
        assert_eq!(postgres("40001"), WAIT, "serialization failure");
        assert_eq!(postgres("40P01"), WAIT, "deadlock");
        assert_eq!(postgres("53100"), WAIT, "disk full");
        assert_eq!(postgres("23505"), PERMANENT, "unique violation");
        assert_eq!(postgres("22P02"), PERMANENT, "invalid text");
    }

    #[test]
    fn sqlite_codes() {
        assert_eq!(sqlite(5), WAIT, "busy");
        assert_eq!(sqlite(517), WAIT, "busy snapshot");
        assert_eq!(sqlite(13), WAIT, "full");
        assert_eq!(sqlite(8), RECONNECT, "read-only");
        assert_eq!(sqlite(1032), RECONNECT, "read-only (dbmoved)");
        assert_eq!(sqlite(10), RECONNECT, "I/O error");
        assert_eq!(sqlite(3850), RECONNECT, "I/O error (write)");
        assert_eq!(sqlite(14), RECONNECT, "cannot open");
        assert_eq!(sqlite(19), PERMANENT, "constraint");
        assert_eq!(sqlite(2067), PERMANENT, "unique constraint");
    }

    #[test]
    fn driver_errors() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(classify(&io), RECONNECT);
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), WAIT);
        assert_eq!(classify(&sqlx::Error::PoolClosed), PERMANENT);
        assert_eq!(classify(&sqlx::Error::RowNotFound), PERMANENT);
    }
}
