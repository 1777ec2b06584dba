//! Checksum throughput on this CPU, for the plugin's integrity choice.
//!
//! The plugin stores a CRC-64/NVME per part and per object (`crc-fast`) and
//! sends a CRC32C with every upload request for the server to verify. This
//! bench times those two against the usual alternatives, SHA-256 (`sha2`)
//! and MD5 (`md-5`), over one buffer of pseudo-random bytes.
//!
//!     cargo bench --bench checksums
//!
//! Environment: `CHECKSUM_BENCH_MIB` (buffer size, default 256) and
//! `CHECKSUM_BENCH_ITERS` (timed passes per algorithm, default 5; one
//! untimed warm-up pass comes first). Prints a markdown table on stdout:
//! the median and best pass in MB/s (10^6 bytes per second), and the
//! implementation `crc-fast` picked for the CRCs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use md5::{Digest as _, Md5};
use sha2::Sha256;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a positive integer")),
        Err(_) => default,
    }
}

/// Deterministic incompressible bytes (xorshift64*), cheap to make.
fn fill(buf: &mut [u8]) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in buf.chunks_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

struct Row {
    name: &'static str,
    used_for: &'static str,
    median: f64,
    best: f64,
    digest: String,
}

fn time_it(buf: &[u8], iters: usize, f: &dyn Fn(&[u8]) -> String) -> (f64, f64, String) {
    let digest = f(black_box(buf)); // warm-up: page faults, caches, CPU clocks
    let mut passes: Vec<Duration> = Vec::with_capacity(iters);
    for _ in 0..iters {
        let started = Instant::now();
        let d = f(black_box(buf));
        passes.push(started.elapsed());
        assert_eq!(d, digest, "a checksum changed between passes");
    }
    passes.sort();
    let rate = |d: Duration| buf.len() as f64 / d.as_secs_f64() / 1e6;
    (rate(passes[passes.len() / 2]), rate(passes[0]), digest)
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore any arguments.
    let mib = env_usize("CHECKSUM_BENCH_MIB", 256).max(1);
    let iters = env_usize("CHECKSUM_BENCH_ITERS", 5).max(1);
    let mut buf = vec![0u8; mib << 20];
    fill(&mut buf);

    type Algo = (&'static str, &'static str, fn(&[u8]) -> String);
    let algos: [Algo; 4] = [
        ("CRC-64/NVME (crc-fast)", "plugin: stored per part and per object, checked on restore", |b| {
            format!("{:016x}", crc_fast::crc64_nvme(b))
        }),
        ("CRC32C (crc-fast)", "plugin: per upload request, verified by the server", |b| {
            format!("{:08x}", crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, b))
        }),
        ("SHA-256 (sha2)", "alternative (SigV4 signed payloads, x-amz-checksum-sha256)", |b| {
            Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
        }),
        ("MD5 (md-5)", "alternative (Content-MD5, ETags of single-part uploads)", |b| {
            Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
        }),
    ];

    let mut rows = Vec::new();
    for (name, used_for, f) in algos {
        let (median, best, digest) = time_it(&buf, iters, &f);
        eprintln!("{name}: median {median:.0} MB/s, best {best:.0} MB/s");
        rows.push(Row { name, used_for, median, best, digest });
    }

    println!("Buffer: {mib} MiB of pseudo-random bytes, {iters} timed passes per algorithm after one warm-up pass;");
    println!("single thread. MB/s = 10^6 bytes per second.");
    println!();
    println!("| Algorithm | Median MB/s | Best MB/s | Relative to SHA-256 | Role | Checksum of the buffer |");
    println!("| --- | ---: | ---: | ---: | --- | --- |");
    let sha = rows.iter().find(|r| r.name.starts_with("SHA-256")).map(|r| r.median).unwrap_or(f64::NAN);
    for r in &rows {
        let digest = if r.digest.len() > 16 { format!("{}…", &r.digest[..16]) } else { r.digest.clone() };
        println!(
            "| {} | {:.0} | {:.0} | {:.1}x | {} | `{}` |",
            r.name,
            r.median,
            r.best,
            r.median / sha,
            r.used_for,
            digest
        );
    }
    println!();
    println!(
        "crc-fast implementation: CRC-64/NVME `{}`, CRC32C `{}`.",
        crc_fast::get_calculator_target(crc_fast::CrcAlgorithm::Crc64Nvme),
        crc_fast::get_calculator_target(crc_fast::CrcAlgorithm::Crc32Iscsi)
    );
}
