//! A TCP proxy on a loopback port that breaks connections on purpose, for tests of
//! what Weir does when the network to its database fails.
//!
//! Every chunk it forwards, in either direction, may be its connection's last: with
//! the plan's odds the chunk is dropped and the connection closed at once, or the
//! connection stalls (nothing moves either way) for a while and is then closed. A
//! dropped chunk from the server may be the answer to a COMMIT, so the client cannot
//! know whether its transaction committed. Each connection draws from its own
//! generator, seeded from the plan's seed and the connection's number.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// How often the proxy breaks things.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    pub seed: u64,
    /// Odds, per million chunks forwarded, that the chunk is dropped and its connection
    /// closed.
    pub drop_per_million: u64,
    /// Odds, per million chunks, that the connection stalls, then closes.
    pub stall_per_million: u64,
    /// How long a stall lasts, at least and at most.
    pub stall: (Duration, Duration),
}

#[derive(Debug, Default)]
pub struct ProxyStats {
    pub connections: AtomicU64,
    pub chunks: AtomicU64,
    pub dropped: AtomicU64,
    pub stalled: AtomicU64,
}

impl ProxyStats {
    pub fn summary(&self) -> String {
        let c = self.connections.load(Ordering::Relaxed);
        let d = self.dropped.load(Ordering::Relaxed);
        let s = self.stalled.load(Ordering::Relaxed);
        format!(
            "{c} connections, {} chunks forwarded; {d} connections dropped and {s} stalled \
             ({:.1}% of connections)",
            self.chunks.load(Ordering::Relaxed),
            100.0 * (d + s) as f64 / c.max(1) as f64
        )
    }

    pub fn faults(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed) + self.stalled.load(Ordering::Relaxed)
    }
}

pub struct FaultyProxy {
    pub addr: SocketAddr,
    pub stats: Arc<ProxyStats>,
    enabled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// A small seeded generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

impl FaultyProxy {
    /// Listens on a free loopback port and forwards to `upstream`; faults start with
    /// [`FaultyProxy::enable`].
    pub async fn start(upstream: SocketAddr, plan: FaultPlan) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(ProxyStats::default());
        let enabled = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (stats, enabled) = (stats.clone(), enabled.clone());
            async move {
                let mut n = 0u64;
                while let Ok((client, _)) = listener.accept().await {
                    n += 1;
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    let rng = Rng(plan.seed ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03));
                    tokio::spawn(serve(
                        client,
                        upstream,
                        rng,
                        plan,
                        stats.clone(),
                        enabled.clone(),
                    ));
                }
            }
        });
        Self {
            addr,
            stats,
            enabled,
            task,
        }
    }

    pub fn enable(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Shared by a connection's two directions.
struct Link {
    rng: std::sync::Mutex<Rng>,
    /// Set while the connection stalls: the other direction holds still too.
    frozen: AtomicBool,
    plan: FaultPlan,
    stats: Arc<ProxyStats>,
    enabled: Arc<AtomicBool>,
}

enum Roll {
    Pass,
    Drop,
    Stall(Duration),
}

impl Link {
    fn roll(&self) -> Roll {
        if !self.enabled.load(Ordering::Relaxed) {
            return Roll::Pass;
        }
        let mut rng = self.rng.lock().unwrap();
        let r = rng.below(1_000_000);
        let p = &self.plan;
        if r < p.drop_per_million {
            Roll::Drop
        } else if r < p.drop_per_million + p.stall_per_million {
            let (lo, hi) = p.stall;
            let span = (hi.saturating_sub(lo)).as_millis() as u64;
            Roll::Stall(lo + Duration::from_millis(rng.below(span + 1)))
        } else {
            Roll::Pass
        }
    }
}

async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    rng: Rng,
    plan: FaultPlan,
    stats: Arc<ProxyStats>,
    enabled: Arc<AtomicBool>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let link = Link {
        rng: std::sync::Mutex::new(rng),
        frozen: AtomicBool::new(false),
        plan,
        stats,
        enabled,
    };
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    // The first direction to end (closed, failed or faulted) ends the connection: both
    // sockets close when this returns.
    tokio::select! {
        _ = pump(cr, sw, &link) => {}
        _ = pump(sr, cw, &link) => {}
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, link: &Link) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if link.frozen.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        match link.roll() {
            Roll::Pass => {}
            Roll::Drop => {
                link.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Roll::Stall(d) => {
                link.stats.stalled.fetch_add(1, Ordering::Relaxed);
                link.frozen.store(true, Ordering::SeqCst);
                tokio::time::sleep(d).await;
                return;
            }
        }
        link.stats.chunks.fetch_add(1, Ordering::Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
