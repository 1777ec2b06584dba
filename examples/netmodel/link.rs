//! One direction of a modelled TCP connection: bytes read from one socket
//! are written to the other `delay` later, in order, with at most `window`
//! bytes in flight, at no more than the per-connection and the aggregate
//! rate (token buckets).
//!
//! Two tasks per direction: the *sender* reads, pays the token buckets,
//! stamps each chunk with its arrival time (`now + delay`, plus one extra
//! round trip for the connection's first bytes when asked: the handshake)
//! and queues it; the *receiver* sleeps until a chunk's arrival time and
//! writes it. A chunk written at `t` is acknowledged at `t + delay` (the
//! ACK's trip back): only then does it leave the window, so a connection
//! moves at most `window / RTT` bytes per second, as TCP does. Sleeping on
//! the queue head never serialises throughput: many chunks are in flight at
//! once, each with its own timestamp.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// Largest read (and so largest queued chunk).
const CHUNK: usize = 64 * 1024;

/// A token bucket in bytes: `rate` per second, at most `burst` saved up.
/// A taker may overdraw; it then waits until the debt is repaid, so
/// concurrent takers of a shared bucket share its rate.
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(rate_per_s: u64, now: Instant) -> Self {
        let rate = rate_per_s as f64;
        // 10 ms worth of bytes, at least one chunk: small enough that a
        // measurement of a few seconds sees the rate, not the burst.
        let burst = (rate / 100.0).max(CHUNK as f64);
        Bucket { rate, burst, tokens: burst, last: now }
    }

    /// Takes `n` bytes' worth of tokens at `now`; returns how long the
    /// taker must wait before sending them (zero when they were there).
    pub fn take(&mut self, n: usize, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.rate) }
    }
}

pub type SharedBucket = Arc<Mutex<Bucket>>;

/// What one direction of a link does to its bytes.
#[derive(Clone)]
pub struct Shape {
    pub delay: Duration,
    pub window: usize,
    pub conn_rate: Option<u64>,
    pub total: Option<SharedBucket>,
    /// Hold the first bytes one extra round trip (TCP's handshake).
    pub handshake: bool,
}

/// Observes the bytes of one direction: as the link reads them from the
/// sender, or as it delivers them to the receiver (see [`run`]).
pub trait Tap: Send + 'static {
    fn bytes(&mut self, data: &[u8]);
}

/// No tap.
impl Tap for () {
    fn bytes(&mut self, _: &[u8]) {}
}

/// A tap that only counts (into an atomic shared with the statistics).
pub struct CountTap(pub Arc<std::sync::atomic::AtomicU64>);

impl Tap for CountTap {
    fn bytes(&mut self, data: &[u8]) {
        self.0.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

enum Msg {
    Data(Instant, Bytes),
    Eof(Instant),
}

/// Runs one direction until the reader's end of stream (propagated as a
/// write shutdown) or an error. Both tasks end when it returns. `read` sees
/// the bytes when read from the sender, `delivered` once written to the
/// receiver (after the delay and the caps).
pub async fn run<R, W, T, D>(mut from: R, mut to: W, shape: Shape, mut read: T, mut delivered: D) -> io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    T: Tap,
    D: Tap,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    // The receiver's acknowledgements: (time the window reopens, bytes).
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<(Instant, usize)>();
    let delay = shape.delay;
    let receiver = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Data(at, data) => {
                    // A deadline already past is not handed to the timer
                    // (whose 1 ms ticks would pace every chunk).
                    if at > Instant::now() {
                        sleep_until(at).await;
                    }
                    to.write_all(&data).await?;
                    delivered.bytes(&data);
                    let _ = ack_tx.send((Instant::now() + delay, data.len()));
                }
                Msg::Eof(at) => {
                    if at > Instant::now() {
                        sleep_until(at).await;
                    }
                    // The peer may be gone already; the direction is over.
                    let _ = to.shutdown().await;
                    return Ok(());
                }
            }
        }
        Ok::<(), io::Error>(())
    });
    // Aborts the receiver if this future is dropped (the connection failed).
    let receiver = AbortOnDrop(Some(receiver));

    let mut conn = shape.conn_rate.map(|r| Bucket::new(r, Instant::now()));
    let mut in_flight = 0usize;
    let mut acks: std::collections::VecDeque<(Instant, usize)> = Default::default();
    let mut first = shape.handshake;
    let mut buf = BytesMut::with_capacity(CHUNK);
    'sending: loop {
        // Take back what has been acknowledged by now; wait while the
        // window is full.
        while let Ok(a) = ack_rx.try_recv() {
            acks.push_back(a);
        }
        loop {
            let now = Instant::now();
            while let Some(&(at, n)) = acks.front() {
                if at > now {
                    break;
                }
                in_flight -= n;
                acks.pop_front();
            }
            if in_flight < shape.window {
                break;
            }
            match acks.front() {
                Some(&(at, _)) => sleep_until(at).await,
                None => match ack_rx.recv().await {
                    Some(a) => acks.push_back(a),
                    None => break 'sending, // the receiver failed: see below
                },
            }
            while let Ok(a) = ack_rx.try_recv() {
                acks.push_back(a);
            }
        }
        let room = (shape.window - in_flight).min(CHUNK);
        buf.reserve(room);
        let n = (&mut from).take(room as u64).read_buf(&mut buf).await?;
        let mut now = Instant::now();
        if n == 0 {
            let _ = tx.send(Msg::Eof(now + delay));
            break;
        }
        let data = buf.split().freeze();
        read.bytes(&data);
        let mut wait = conn.as_mut().map_or(Duration::ZERO, |b| b.take(n, now));
        if let Some(total) = &shape.total {
            wait = wait.max(total.lock().unwrap().take(n, now));
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
            now = Instant::now();
        }
        let mut at = now + delay;
        if first {
            at += 2 * delay;
            first = false;
        }
        in_flight += n;
        if tx.send(Msg::Data(at, data)).is_err() {
            break;
        }
    }
    drop(tx);
    match receiver.join().await {
        Ok(r) => r,
        Err(e) => Err(io::Error::other(e)),
    }
}

struct AbortOnDrop(Option<tokio::task::JoinHandle<io::Result<()>>>);

impl AbortOnDrop {
    async fn join(mut self) -> Result<io::Result<()>, tokio::task::JoinError> {
        self.0.take().expect("joined once").await
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_lets_the_burst_through_then_paces_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1 << 20, t0); // 1 MiB/s, burst 64 KiB
        assert_eq!(b.take(CHUNK, t0), Duration::ZERO);
        // The next 64 KiB at the same instant: a debt of 1/16 s.
        let w = b.take(CHUNK, t0);
        assert!((w.as_secs_f64() - 1.0 / 16.0).abs() < 1e-6, "{w:?}");
        // After one second the debt is repaid and 15/16 MiB saved, but the
        // saving is capped at the burst.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.take(CHUNK, t1), Duration::ZERO);
        assert!(b.take(1, t1) > Duration::ZERO);
    }

    #[test]
    fn shared_bucket_divides_its_rate_among_takers() {
        let t0 = Instant::now();
        let mut b = Bucket::new(4 << 20, t0);
        // Eight takers of 1 MiB each at once: the last waits ~2 s minus the
        // burst, whoever takes first.
        let mut last = Duration::ZERO;
        for _ in 0..8 {
            last = b.take(1 << 20, t0);
        }
        let burst = ((4 << 20) as f64 / 100.0).max(CHUNK as f64);
        let expect = (8.0 * (1 << 20) as f64 - burst) / (4 << 20) as f64;
        assert!((last.as_secs_f64() - expect).abs() < 1e-6, "{last:?} vs {expect}");
    }

    #[tokio::test]
    async fn delay_window_and_order() {
        let (mut client, proxy_in) = tokio::io::duplex(1 << 20);
        let (proxy_out, mut server) = tokio::io::duplex(1 << 20);
        let shape = Shape {
            delay: Duration::from_millis(20),
            window: 128 * 1024,
            conn_rate: None,
            total: None,
            handshake: true,
        };
        let link = tokio::spawn(run(proxy_in, proxy_out, shape, CountTap(Default::default()), ()));
        let data: Vec<u8> = (0..512 * 1024u32).map(|i| (i % 251) as u8).collect();
        let t0 = Instant::now();
        let sent = data.clone();
        let w = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        let took = t0.elapsed();
        w.await.unwrap();
        link.await.unwrap().unwrap();
        assert_eq!(got, data);
        // Handshake (40 ms) + 4 windows of 128 KiB, one RTT each after the
        // first (the first window leaves at once): about 40 + 20 + 3 * 40.
        assert!(took >= Duration::from_millis(180), "{took:?}");
        assert!(took <= Duration::from_millis(400), "{took:?}");
    }
}
