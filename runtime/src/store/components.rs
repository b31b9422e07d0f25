//! Uploaded components: their manifests, and their bytes where nodes share them.

use super::db::{Db, DbRow, with_db};
use super::*;

impl Store {
    pub async fn put_component(&self, digest: &str, size: usize, manifest: &Value) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO components (digest, size, manifest, created) VALUES ($1, $2, $3, $4)
             ON CONFLICT (digest) DO UPDATE SET manifest = excluded.manifest",
        )
        .bind(digest)
        .bind(size as i64)
        .bind(manifest.to_string())
        .bind(ts(Utc::now()))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    /// Keeps a component's bytes in the database, where every node sharing it finds
    /// them (PostgreSQL only: a single SQLite server reads them from its disk).
    pub async fn put_component_bytes(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO component_blobs (digest, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(bytes)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// A component's bytes kept by [`Store::put_component_bytes`].
    pub async fn component_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        with_db!(&self.db, pool => {
            let row = sqlx::query("SELECT bytes FROM component_blobs WHERE digest = $1")
                .bind(digest)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.col("bytes")).transpose()?)
        })
    }
}
