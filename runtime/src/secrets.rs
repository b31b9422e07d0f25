//! Secrets at rest, API keys and webhook tokens, and webhook signatures.
//!
//! Secrets are sealed with XChaCha20-Poly1305 under a 32-byte master key that comes from
//! `WEIR_SECRET_KEY` (base64) or from a key file created in the data directory at first
//! start. API keys and webhook tokens are stored as sha256 hashes only; keys are looked
//! up by a short public prefix and compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key must be 32 bytes of base64: {0}")]
    BadKey(String),
    #[error("cannot read or write the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("a sealed value is corrupt or was sealed under another key")]
    Corrupt,
}

/// Seals and opens secrets with the server's master key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Derived from the master key for MACs of what the server hands out and takes back
    /// (list cursors), so that no key is used for two purposes.
    mac_key: [u8; 32],
}

impl SecretBox {
    pub fn from_key(key: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(b"weir: MAC key of issued values");
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
            mac_key: mac.finalize().into_bytes().into(),
        }
    }

    /// A MAC of `parts` (kept apart, so that no two lists of parts collide) under a key
    /// derived from the master key: every node sharing the master key checks what another
    /// issued.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key).expect("any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The key from `WEIR_SECRET_KEY`, else from `dir/secret.key`, created if missing
    /// (readable by its owner only).
    pub fn load_or_create(env_key: Option<&str>, dir: &Path) -> Result<Self, SecretError> {
        if let Some(text) = env_key {
            return Self::from_base64(text);
        }
        let path = dir.join("secret.key");
        let io = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(text.trim()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                std::fs::create_dir_all(dir).map_err(io)?;
                write_private(&path, &STANDARD.encode(key)).map_err(io)?;
                Ok(Self::from_key(&key))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| SecretError::BadKey(e.to_string()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| SecretError::BadKey(format!("got {} bytes", b.len())))?;
        Ok(Self::from_key(&key))
    }

    /// `v1.` followed by base64 of a random nonce and the ciphertext.
    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), plaintext.as_bytes())
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory input");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("v1.{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let data = sealed
            .strip_prefix("v1.")
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or(SecretError::Corrupt)?;
        if data.len() < 24 {
            return Err(SecretError::Corrupt);
        }
        let (nonce, ciphertext) = data.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| SecretError::Corrupt)?;
        let plain = self
            .cipher
            .decrypt(&XNonce::from(nonce), ciphertext)
            .map_err(|_| SecretError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| SecretError::Corrupt)
    }
}

/// Creates `path` empty, readable and writable by its owner only, unless it exists: for
/// files that will hold credentials (the database: key hashes, sealed secrets).
pub fn create_private(path: &Path) -> std::io::Result<()> {
    match write_private(path, "") {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// sha256 hex of a token: what is stored instead of the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time comparison of two hashes (or any two strings).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A new API key: the secret shown once (`weir_<prefix>_<random>`), its lookup prefix
/// and its hash.
pub struct NewKey {
    pub secret: String,
    pub prefix: String,
    pub hash: String,
}

pub fn new_api_key() -> NewKey {
    let prefix = hex::encode({
        let mut p = [0u8; 6];
        rand::rng().fill_bytes(&mut p);
        p
    });
    let secret = format!("weir_{prefix}_{}", random_text(32));
    NewKey {
        hash: token_hash(&secret),
        prefix,
        secret,
    }
}

/// The lookup prefix of an API key, if it looks like one.
pub fn api_key_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("weir_")?;
    let (prefix, random) = rest.split_once('_')?;
    (prefix.len() == 12 && !random.is_empty()).then_some(prefix)
}

/// An unguessable token (webhook URLs, the admin token).
pub fn new_token() -> String {
    random_text(32)
}

/// Webhook signatures: header `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub mod webhook {
    use super::*;

    pub const TOLERANCE_SECONDS: i64 = 300;

    #[derive(Debug, PartialEq, Eq, thiserror::Error)]
    pub enum SignatureError {
        #[error("the request has no X-Weir-Signature header")]
        Missing,
        #[error("the X-Weir-Signature header is malformed")]
        Malformed,
        #[error("the signature timestamp is more than 5 minutes from the server's clock")]
        Stale,
        #[error("the signature does not match the body")]
        Mismatch,
    }

    pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!(
            "t={timestamp},v1={}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    /// Checks the header against the body: exactly one `t` (decimal digits, MACed as
    /// sent), one or more `v1` (any that matches will do; other schemes are ignored).
    /// Returns the matching MAC, which identifies this delivery.
    pub fn verify(
        secret: &str,
        header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let mut t = None;
        let mut sigs = Vec::new();
        for part in header.split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or(SignatureError::Malformed)?;
            match k {
                "t" => {
                    let digits =
                        !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit());
                    if t.is_some() || !digits {
                        return Err(SignatureError::Malformed);
                    }
                    t = Some(v);
                }
                // A v1 that is not 32 bytes of hex cannot match; another one may.
                "v1" => sigs.extend(hex::decode(v).ok().filter(|s| s.len() == 32)),
                _ => {}
            }
        }
        let t_text = t.ok_or(SignatureError::Malformed)?;
        if sigs.is_empty() {
            return Err(SignatureError::Malformed);
        }
        let t: i64 = t_text.parse().map_err(|_| SignatureError::Malformed)?;
        if (now - t).abs() > TOLERANCE_SECONDS {
            return Err(SignatureError::Stale);
        }
        for sig in sigs {
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
            mac.update(t_text.as_bytes());
            mac.update(b".");
            mac.update(body);
            if mac.verify_slice(&sig).is_ok() {
                return Ok(sig);
            }
        }
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_under_their_key() {
        let a = SecretBox::from_key(&[7; 32]);
        let sealed = a.seal("hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, a.seal("hunter2"), "a fresh nonce every time");
        assert_eq!(a.open(&sealed).unwrap(), "hunter2");
        let b = SecretBox::from_key(&[8; 32]);
        assert!(b.open(&sealed).is_err());
        assert!(a.open("v1.AAAA").is_err());
        assert!(a.open("garbage").is_err());
    }

    #[test]
    fn the_key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretBox::load_or_create(None, dir.path()).unwrap();
        let b = SecretBox::load_or_create(None, dir.path()).unwrap();
        assert_eq!(b.open(&a.seal("x")).unwrap(), "x");
        assert!(SecretBox::load_or_create(Some("short"), dir.path()).is_err());
    }

    #[test]
    fn api_keys_have_a_prefix_and_a_hash() {
        let k = new_api_key();
        assert_eq!(api_key_prefix(&k.secret), Some(k.prefix.as_str()));
        assert!(same(&token_hash(&k.secret), &k.hash));
        assert!(!same(&token_hash("weir_000000000000_x"), &k.hash));
        assert_eq!(api_key_prefix("Bearer nope"), None);
        assert_eq!(api_key_prefix("weir_abc_x"), None);
    }

    #[test]
    fn webhook_signatures() {
        use webhook::*;
        let body = br#"{"name":"ada"}"#;
        let header = sign("s3cret", 1000, body);
        let mac = verify("s3cret", Some(&header), body, 1100).unwrap();
        assert_eq!(header, format!("t=1000,v1={}", hex::encode(&mac)));
        assert_eq!(
            verify("other", Some(&header), body, 1100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("s3cret", Some(&header), b"{}", 1100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("s3cret", Some(&header), body, 1000 + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("s3cret", None, body, 1000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify("s3cret", Some("t=x"), body, 1000),
            Err(SignatureError::Malformed)
        );
        let v1 = header.strip_prefix("t=1000,").unwrap();
        // Strict: one t, of digits; every part is key=value.
        for bad in [
            format!("t=1000,t=1000,{v1}"),
            format!("t=+1000,{v1}"),
            format!("t= 1000,{v1}"),
            format!("t=1000,{v1},junk"),
            "t=1000,v1=zz".to_owned(),
        ] {
            assert_eq!(
                verify("s3cret", Some(&bad), body, 1000),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        // Any valid v1 among several; other schemes ignored.
        let other = sign("rotated-away", 1000, body);
        let other_v1 = other.strip_prefix("t=1000,").unwrap();
        for good in [
            format!("t=1000,{other_v1},{v1}"),
            format!("t=1000,v1=nothex,{v1}"),
            format!("v0=abc, t=1000, {v1}"),
        ] {
            assert_eq!(
                verify("s3cret", Some(&good), body, 1000),
                Ok(mac.clone()),
                "{good}"
            );
        }
        // The MAC covers the t text as sent: a zero-padded t is not the same message.
        let padded = format!("t=01000,{v1}");
        assert_eq!(
            verify("s3cret", Some(&padded), body, 1000),
            Err(SignatureError::Mismatch)
        );
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"s3cret").unwrap();
        m.update(b"01000.");
        m.update(body);
        let padded = format!("t=01000,v1={}", hex::encode(m.finalize().into_bytes()));
        assert!(verify("s3cret", Some(&padded), body, 1000).is_ok());
    }
}
