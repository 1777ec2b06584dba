//! netmodel: a userspace TCP proxy that puts a modelled network between any
//! client (the plugin, aws-cli, rclone, curl) and a local plain-HTTP S3
//! server, for bench/run.sh section 9 ("Network model" in BENCHMARKS.md).
//!
//! ```text
//! cargo build --release --example netmodel
//! target/release/examples/netmodel --upstream 127.0.0.1:9000 --delay 25ms \
//!     --conn-rate 25MiB --total-rate 100MiB [--tls-ca-out ca.pem] \
//!     --port-file port --stats stats.json
//! ```
//!
//! # The model
//!
//! Every accepted connection gets its own connection to `--upstream`. Each
//! direction is a link (netmodel/link.rs) between the client's socket and
//! the server side:
//!
//! - **Latency**: every byte read at `t` is written at `t + delay` (one way,
//!   so RTT = 2 x delay), in order: a timestamped queue, not a sleep per
//!   chunk, so latency never caps throughput by itself.
//! - **Handshake**: a new connection's first client bytes are held one more
//!   RTT: the client's connect() returns at once on loopback, where a real
//!   one waits for SYN / SYN-ACK.
//! - **Window**: at most `--window` bytes (default 4 MiB) per connection and
//!   direction are in flight; bytes leave the window when written plus one
//!   delay (the ACK's way back), so one connection carries at most
//!   window / RTT, as TCP does with that receive window.
//! - **Bandwidth**: token buckets, one per connection and direction
//!   (`--conn-rate`) and one per direction shared by all connections
//!   (`--total-rate`); a chunk waits for both.
//! - **TLS** (`--tls-ca-out FILE`): the proxy terminates TLS 1.3/1.2
//!   (rustls, aws-lc-rs) with a CA and certificate made at start, the CA
//!   written to FILE, and talks plain HTTP to the server. The latency and
//!   bandwidth stage sits between the client and the terminator, so every
//!   TLS round trip pays the RTT.
//!
//! Not modelled: slow start and congestion control (a connection sends at
//! its window from its first byte), loss and retransmission, the server's
//! own window (the proxy reads the server as fast as the link takes it),
//! jitter, and Nagle / delayed ACK interactions (both sockets are
//! TCP_NODELAY; the bytes queued by one read move together).
//!
//! # Counters
//!
//! Connections (accepted), active connections, TLS handshakes (completed;
//! resumed ones also counted apart; failed ones apart), HTTP requests by
//! method (request heads parsed in the plaintext client-to-server stream,
//! netmodel/http.rs) and bytes each way through the link (TLS records
//! included). With `--stats FILE` they are written as JSON to
//! FILE (whole files, renamed into place) every `--stats-interval` (default
//! 50 ms), at once on SIGUSR1, and at exit on SIGTERM or SIGINT. Each
//! snapshot carries `t_unix_ms`; `server_time` has, by request kind (method
//! and query parameter names, e.g. `POST ?uploadId` for S3's
//! CompleteMultipartUpload), the answers timed and the seconds the server
//! took from a request's last byte to its answer's first (netmodel/http.rs).
//! A reader that wants the counts of a call takes a snapshot written after
//! the call's processes exited with `active` 0, and subtracts the one
//! before.

#[path = "netmodel/http.rs"]
mod http;
#[path = "netmodel/link.rs"]
mod link;
#[path = "netmodel/tls.rs"]
mod tls;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use link::{Bucket, CountTap, Shape, SharedBucket, Tap};

#[derive(Parser, Debug)]
#[command(about = "A TCP proxy with latency, a TCP-like window, bandwidth caps and optional TLS termination")]
struct Args {
    /// Address to listen on (port 0: any free port, see --port-file).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The plain-TCP (HTTP) server to forward to.
    #[arg(long)]
    upstream: SocketAddr,
    /// One-way delay added to every byte each way (RTT = 2 x delay).
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    delay: Duration,
    /// Bytes in flight per connection and direction (TCP window).
    #[arg(long, default_value = "4MiB", value_parser = parse_bytes)]
    window: u64,
    /// Bandwidth cap per connection and direction, bytes per second.
    #[arg(long, value_parser = parse_bytes)]
    conn_rate: Option<u64>,
    /// Bandwidth cap per direction shared by all connections.
    #[arg(long, value_parser = parse_bytes)]
    total_rate: Option<u64>,
    /// Terminate TLS; write the throw-away CA certificate (PEM) here.
    #[arg(long)]
    tls_ca_out: Option<PathBuf>,
    /// Write the port listened on to this file (once listening).
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Write the counters as JSON to this file (see the doc).
    #[arg(long)]
    stats: Option<PathBuf>,
    /// How often the --stats file is rewritten.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    stats_interval: Duration,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// "25MiB", "4M", "100MB", "65536", "25MiB/s": K, M, G and KiB, MiB, GiB are
/// powers of 1024; KB, MB, GB powers of 1000.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().trim_end_matches("/s");
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "K" | "KiB" => 1024.0,
        "M" | "MiB" => 1048576.0,
        "G" | "GiB" => 1073741824.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        u => return Err(format!("unknown unit {u:?} in {s:?}")),
    };
    let v = (num * mult).round();
    if v < 1.0 {
        return Err(format!("{s:?} must be at least one byte"));
    }
    Ok(v as u64)
}

#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    active: AtomicU64,
    upstream_failures: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_resumed: AtomicU64,
    tls_failures: AtomicU64,
    tls13: AtomicU64,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    uncounted_streams: Arc<AtomicU64>,
    methods: http::Methods,
    server_times: http::ServerTimes,
    seq: AtomicU64,
}

struct Proxy {
    args: Args,
    stats: Stats,
    total_up: Option<SharedBucket>,
    total_down: Option<SharedBucket>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stats_lock: Mutex<()>,
}

impl Proxy {
    fn json(&self) -> String {
        let s = &self.stats;
        let methods: BTreeMap<String, u64> = s.methods.lock().unwrap().clone();
        let requests: u64 = methods.values().sum();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        serde_json::json!({
            "seq": s.seq.fetch_add(1, Relaxed),
            "t_unix_ms": now.as_millis() as u64,
            "connections": s.connections.load(Relaxed),
            "active": s.active.load(Relaxed),
            "upstream_failures": s.upstream_failures.load(Relaxed),
            "tls_handshakes": s.tls_handshakes.load(Relaxed),
            "tls_resumed": s.tls_resumed.load(Relaxed),
            "tls13": s.tls13.load(Relaxed),
            "tls_failures": s.tls_failures.load(Relaxed),
            "requests": requests,
            "by_method": methods,
            "server_time": s.server_times.lock().unwrap().iter().map(|(k, t)| (k.clone(), serde_json::json!({
                "answered": t.answered, "seconds": t.seconds, "max_seconds": t.max_seconds,
            }))).collect::<serde_json::Map<_, _>>(),
            "uncounted_streams": s.uncounted_streams.load(Relaxed),
            "up": s.up.load(Relaxed),
            "down": s.down.load(Relaxed),
            "model": {
                "delay_ms": self.args.delay.as_secs_f64() * 1e3,
                "window": self.args.window,
                "conn_rate": self.args.conn_rate,
                "total_rate": self.args.total_rate,
                "tls": self.tls.is_some(),
            },
        })
        .to_string()
    }

    fn write_stats(&self) {
        // One writer at a time: the ticker and a signal share the temporary
        // file.
        let _one = self.stats_lock.lock().unwrap();
        if let Some(path) = &self.args.stats
            && let Err(e) = write_atomic(path, self.json().as_bytes())
        {
            eprintln!("netmodel: writing {}: {e}", path.display());
        }
    }

    fn shape(&self, total: &Option<SharedBucket>, handshake: bool) -> Shape {
        Shape {
            delay: self.args.delay,
            window: self.args.window as usize,
            conn_rate: self.args.conn_rate,
            total: total.clone(),
            handshake,
        }
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Byte count plus, on the plaintext client-to-server stream, the request
/// counter.
struct UpTap {
    bytes: Option<Arc<AtomicU64>>,
    http: Option<http::RequestCounter>,
    uncounted: Arc<AtomicU64>,
}

impl Tap for UpTap {
    fn bytes(&mut self, data: &[u8]) {
        if let Some(b) = &self.bytes {
            b.fetch_add(data.len() as u64, Relaxed);
        }
        if let Some(h) = &mut self.http {
            h.feed(data);
            if h.lost() {
                self.uncounted.fetch_add(1, Relaxed);
                self.http = None;
            }
        }
    }
}

/// A plain copy (the TLS terminator's plaintext side), through a tap.
async fn copy<R, W, T>(mut from: R, mut to: W, mut tap: T) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    T: Tap,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        tap.bytes(&buf[..n]);
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
}

async fn serve(p: Arc<Proxy>, client: TcpStream) -> io::Result<()> {
    client.set_nodelay(true)?;
    let server = match TcpStream::connect(p.args.upstream).await {
        Ok(s) => s,
        Err(e) => {
            p.stats.upstream_failures.fetch_add(1, Relaxed);
            return Err(e);
        }
    };
    server.set_nodelay(true)?;
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = p.shape(&p.total_up, true);
    let down = p.shape(&p.total_down, false);
    let s = &p.stats;
    let mut tasks = JoinSet::new();
    // Requests are timed from their last byte reaching the server to the
    // first byte of its answer: taps on the server's side of the model.
    let awaiting = http::Awaiting::default();
    let counter = http::RequestCounter::new(s.methods.clone()).timing(awaiting.clone());
    let answers = http::AnswerTap { awaiting, times: s.server_times.clone() };
    match &p.tls {
        None => {
            let tap = UpTap { bytes: Some(s.up.clone()), http: Some(counter), uncounted: s.uncounted_streams.clone() };
            tasks.spawn(link::run(cr, sw, up, (), tap));
            tasks.spawn(link::run(sr, cw, down, answers, CountTap(s.down.clone())));
        }
        Some(acceptor) => {
            let (near, far) = tokio::io::duplex(256 * 1024);
            let (nr, nw) = tokio::io::split(near);
            tasks.spawn(link::run(cr, nw, up, CountTap(s.up.clone()), ()));
            tasks.spawn(link::run(nr, cw, down, CountTap(s.down.clone()), ()));
            let tls = match acceptor.accept(far).await {
                Ok(t) => t,
                Err(e) => {
                    s.tls_failures.fetch_add(1, Relaxed);
                    return Err(e);
                }
            };
            let conn = tls.get_ref().1;
            s.tls_handshakes.fetch_add(1, Relaxed);
            if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                s.tls_resumed.fetch_add(1, Relaxed);
            }
            if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
                s.tls13.fetch_add(1, Relaxed);
            }
            let (tr, tw) = tokio::io::split(tls);
            let tap = UpTap { bytes: None, http: Some(counter), uncounted: s.uncounted_streams.clone() };
            tasks.spawn(copy(tr, sw, tap));
            tasks.spawn(copy(sr, tw, answers));
        }
    }
    // The first failure ends the connection (dropping the set aborts the
    // other tasks and closes both sockets).
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    Ok(())
}

async fn main_async(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let tls = match &args.tls_ca_out {
        Some(path) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(path)?)),
        None => None,
    };
    let bucket = |r: Option<u64>| r.map(|r| Arc::new(Mutex::new(Bucket::new(r, tokio::time::Instant::now()))));
    let p = Arc::new(Proxy {
        total_up: bucket(args.total_rate),
        total_down: bucket(args.total_rate),
        stats: Stats::default(),
        stats_lock: Mutex::new(()),
        tls,
        args,
    });
    let listener = TcpListener::bind(p.args.listen).await?;
    p.write_stats();
    if let Some(path) = &p.args.port_file {
        write_atomic(path, listener.local_addr()?.port().to_string().as_bytes())?;
    }

    let ticker = p.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(ticker.args.stats_interval.max(Duration::from_millis(1)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            ticker.write_stats();
        }
    });
    let on_usr1 = p.clone();
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            on_usr1.write_stats();
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (client, _) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, go on.
                        eprintln!("netmodel: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                p.stats.connections.fetch_add(1, Relaxed);
                p.stats.active.fetch_add(1, Relaxed);
                let p = p.clone();
                tokio::spawn(async move {
                    let _ = serve(p.clone(), client).await;
                    p.stats.active.fetch_sub(1, Relaxed);
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    p.write_stats();
    Ok(())
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(main_async(args)) {
        eprintln!("netmodel: {e}");
        std::process::exit(1);
    }
    // Connections still open are dropped with the runtime.
    rt.shutdown_timeout(Duration::from_millis(100));
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("25MiB"), Ok(25 << 20));
        assert_eq!(parse_bytes("25MiB/s"), Ok(25 << 20));
        assert_eq!(parse_bytes("4M"), Ok(4 << 20));
        assert_eq!(parse_bytes("100MB"), Ok(100_000_000));
        assert_eq!(parse_bytes("1.5KiB"), Ok(1536));
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("5 furlongs").is_err());
    }
}
