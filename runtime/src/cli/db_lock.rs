//! Who is using a SQLite database file: a running `weir server` holds a shared lock on
//! `<database>.lock` for as long as it runs, and `weir run` takes it exclusively for its
//! run, so `weir run` never writes into the database a server is using (its own default
//! database is another file anyway). The locks are advisory and end with the process,
//! however it ends, so a crashed server leaves nothing to clean up.

use anyhow::bail;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// A lock held until dropped.
pub struct DbLock {
    _file: File,
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db.with_file_name(name)
}

fn open(db: &Path) -> std::io::Result<File> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(db))
}

/// The file of a server's `--db` (`None`: DATA_DIR/weir.db); `None` for PostgreSQL or an
/// in-memory database, which no local run can be pointed at by a path.
pub fn sqlite_file(data_dir: &Path, db: Option<&str>) -> Option<PathBuf> {
    let Some(url) = db else {
        return Some(data_dir.join("weir.db"));
    };
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// The server's shared lock. Several servers may share a database file; a `weir run`
/// holding it is reported and the server starts all the same.
pub fn for_server(db: &Path) -> Option<DbLock> {
    let file = match open(db) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("cannot create the lock file beside {}: {e}", db.display());
            return None;
        }
    };
    match file.try_lock_shared() {
        Ok(()) => Some(DbLock { _file: file }),
        Err(TryLockError::WouldBlock) => {
            tracing::warn!(
                "a `weir run` is using {}; its run is written beside the server's",
                db.display()
            );
            None
        }
        Err(TryLockError::Error(e)) => {
            tracing::warn!("cannot lock {}: {e}", lock_path(db).display());
            None
        }
    }
}

/// `weir run`'s exclusive lock: refused while a server holds the database.
pub fn for_run(db: &Path) -> anyhow::Result<DbLock> {
    let file = open(db)
        .map_err(|e| anyhow::anyhow!("cannot create the lock file beside {}: {e}", db.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DbLock { _file: file }),
        Err(TryLockError::WouldBlock) => bail!(
            "{} is the database of a running `weir server` (or of another `weir run`): \
             `weir run` will not write into it.\nLeave out --db to use weir run's own \
             database (DATA_DIR/local.db), or trigger the flow on the server with `weir trigger`.",
            db.display()
        ),
        Err(TryLockError::Error(e)) => bail!("cannot lock {}: {e}", lock_path(db).display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_refused_while_a_server_holds_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("weir.db");
        let server = for_server(&db).expect("the server locks");
        let second = for_server(&db).expect("servers share a database");
        let err = for_run(&db).err().expect("refused").to_string();
        assert!(err.contains("running `weir server`"), "{err}");
        drop((server, second));
        let run = for_run(&db).expect("free once the servers are gone");
        assert!(for_run(&db).is_err(), "one run at a time");
        drop(run);
        assert!(dir.path().join("weir.db.lock").exists());
    }

    #[test]
    fn server_database_files() {
        let d = Path::new("/data");
        assert_eq!(sqlite_file(d, None), Some(PathBuf::from("/data/weir.db")));
        assert_eq!(
            sqlite_file(d, Some("sqlite:/x/w.db?mode=rwc")),
            Some(PathBuf::from("/x/w.db"))
        );
        assert_eq!(
            sqlite_file(d, Some("sqlite://rel.db")),
            Some(PathBuf::from("rel.db"))
        );
        assert_eq!(sqlite_file(d, Some("postgres://u@h/db")), None);
        assert_eq!(sqlite_file(d, Some("sqlite::memory:")), None);
    }
}
