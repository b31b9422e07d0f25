//! Web UI sessions: opened by signing in with an API key or the admin token, ended by
//! signing out, by expiry, or by revoking the key they were opened with.

use super::db::{DbRow, with_db};
use super::{Result, Store, parse_ts, ts};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// sha256 of the cookie's token.
    pub token_hash: String,
    /// The workspace the session acts in (`None`: an admin who has not picked one).
    pub workspace_id: Option<String>,
    /// The API key it was opened with; revoking the key ends the session.
    pub key_id: Option<String>,
    pub admin: bool,
    /// The token forms that change something bring back.
    pub csrf: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

fn session_from_row(r: &impl DbRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        token_hash: r.col("token_hash")?,
        workspace_id: r.col("workspace_id")?,
        key_id: r.col("key_id")?,
        admin: r.flag("admin")?,
        csrf: r.col("csrf")?,
        created: parse_ts(&r.col::<String>("created")?)?,
        expires: parse_ts(&r.col::<String>("expires")?)?,
    })
}

impl Store {
    /// Stores a new session; written at once (not batched), so the cookie the browser
    /// gets names a session that exists.
    pub async fn open_session(&self, s: &SessionRecord) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO ui_sessions (token_hash, workspace_id, key_id, admin, csrf, created, expires)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.token_hash)
        .bind(&s.workspace_id)
        .bind(&s.key_id)
        .bind(s.admin as i64)
        .bind(&s.csrf)
        .bind(ts(s.created))
        .bind(ts(s.expires))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    /// The live session with this token hash: not expired at `now`, not signed out, and
    /// its key (if it was opened with one) not revoked.
    pub async fn live_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT s.* FROM ui_sessions s
             WHERE s.token_hash = $1 AND s.revoked IS NULL AND s.expires > $2
               AND (s.key_id IS NULL OR EXISTS (
                     SELECT 1 FROM api_keys k WHERE k.id = s.key_id AND k.revoked IS NULL))",
        )
        .bind(token_hash)
        .bind(ts(now))
        .fetch_optional(pool)
        .await?;
        row.map(|r| session_from_row(&r)).transpose()
        })
    }

    /// Ends a session (sign-out).
    pub async fn close_session(&self, token_hash: &str) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query("UPDATE ui_sessions SET revoked = $2 WHERE token_hash = $1 AND revoked IS NULL")
            .bind(token_hash)
            .bind(ts(Utc::now()))
            .execute(pool)
            .await?;
        Ok(())
        })
    }

    /// Points an admin's session at a workspace.
    pub async fn set_session_workspace(&self, token_hash: &str, workspace_id: &str) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query("UPDATE ui_sessions SET workspace_id = $2 WHERE token_hash = $1 AND admin = 1")
            .bind(token_hash)
            .bind(workspace_id)
            .execute(pool)
            .await?;
        Ok(())
        })
    }

    /// Forgets sessions that ended before `cutoff`.
    pub async fn forget_sessions(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        with_db!(&self.db, pool => {
        let done = sqlx::query("DELETE FROM ui_sessions WHERE expires < $1 OR revoked < $1")
            .bind(ts(cutoff))
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
        })
    }
}
