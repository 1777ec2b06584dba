//! A fault-injecting HTTP proxy, placed between the plugin and a real S3
//! server: it forwards each request unchanged (the Host header too, so SigV4
//! signatures stay valid) and, at the configured rates, answers 503
//! SlowDown (or a Glacier AccessDeniedException) instead, drops the
//! connection without answering, cuts the response off partway, stalls
//! before answering, answers 200 with something that is not S3 (a
//! gateway's HTML page, garbage XML), slips foreign keys into listings,
//! holds chosen requests back, starts answering 503 late in a run, or
//! refuses everything but reads (read-only credentials).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Close the connection after reading the request, without answering.
    pub reset: f64,
    /// Answer `503 SlowDown` without forwarding.
    pub slowdown: f64,
    /// Forward, then send only part of the response and close.
    pub truncate: f64,
    /// Forward, then wait `stall_for` before answering.
    pub stall: f64,
    /// Answer `403 AccessDeniedException` (Glacier's JSON error, what a
    /// vault lock policy's Deny produces) without forwarding.
    pub deny: f64,
    pub stall_for: Duration,
    /// Answer S3's `403 AccessDenied` without forwarding (a policy that
    /// does not grant the operation).
    pub deny_s3: f64,
    /// Answer `200 OK` with a load balancer's HTML page (no ETag) without
    /// forwarding.
    pub html: f64,
    /// Answer `200 OK` with XML that is not what was asked for, without
    /// forwarding.
    pub garbage: f64,
    /// Add keys outside the prefix asked for to every object listing.
    pub foreign_keys: bool,
    /// Hold every matching request back this long before forwarding it.
    pub delay: Duration,
    /// After the proxy has run this long, answer the next `late_slowdowns`
    /// matching requests with 503 SlowDown.
    pub late_after: Duration,
    pub late_slowdowns: u64,
    /// Forward, then answer 503 SlowDown instead of the server's answer:
    /// the request took effect, the client is told it failed.
    pub fail_after_forward: f64,
    /// Answer `403 AccessDenied` to every request but GET and HEAD, as a
    /// bucket policy granting only list, get and head would.
    pub read_only: bool,
    /// Inject faults only into requests whose request line starts with the
    /// first string and contains the second (e.g. `("POST ", "uploadId=")`:
    /// CompleteMultipartUpload).
    pub only: Option<(&'static str, &'static str)>,
    /// ...and not into those whose request line contains this.
    pub skip: Option<&'static str>,
    /// Like `only`, for several kinds of request at once (any one matching).
    pub only_any: &'static [(&'static str, &'static str)],
    /// Behave as a legacy S3-compatible server: refuse (400) any
    /// `x-amz-checksum-*` or `x-amz-sdk-checksum-algorithm` header and
    /// unsigned payloads; require a correct Content-MD5 on DeleteObjects
    /// (and check it wherever one is sent).
    pub legacy: bool,
    /// Answer every DeleteObjects (`POST ...?delete`) without forwarding,
    /// with S3's 200 DeleteResult refusing each key (and version) with
    /// the per-key AccessDenied an Object Lock retention produces.
    pub deny_delete_keys: bool,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub resets: AtomicU64,
    pub slowdowns: AtomicU64,
    pub truncations: AtomicU64,
    pub stalls: AtomicU64,
    pub denials: AtomicU64,
    pub pages: AtomicU64,
    pub late: AtomicU64,
    /// Requests a legacy server would have refused.
    pub legacy_refusals: AtomicU64,
    /// Requests that carried a correct Content-MD5.
    pub md5_checked: AtomicU64,
}

impl Stats {
    pub fn injected(&self) -> u64 {
        self.resets.load(Ordering::Relaxed)
            + self.slowdowns.load(Ordering::Relaxed)
            + self.truncations.load(Ordering::Relaxed)
            + self.stalls.load(Ordering::Relaxed)
            + self.denials.load(Ordering::Relaxed)
            + self.pages.load(Ordering::Relaxed)
            + self.late.load(Ordering::Relaxed)
    }
}

pub struct FaultProxy {
    pub endpoint: String,
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

struct Rng(u64);

impl Rng {
    fn chance(&mut self, p: f64) -> bool {
        // A fault that is off draws nothing: adding kinds of faults keeps
        // every seeded test's sequence as it was.
        if p <= 0.0 {
            return false;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 1_000_000) as f64 / 1_000_000.0 < p
    }
}

impl FaultProxy {
    /// Proxies to `upstream` (`http://host:port`).
    pub fn start(upstream: &str, faults: Faults, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (stats2, stop2) = (stats.clone(), stop.clone());
        let started = std::time::Instant::now();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (upstream, stats) = (upstream.clone(), stats2.clone());
                let rng = Rng((seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
                std::thread::spawn(move || {
                    let _ = serve(conn, &upstream, faults, &stats, rng, started);
                });
            }
        });
        FaultProxy { endpoint, stats, stop }
    }
}

fn serve(
    client: TcpStream,
    upstream: &str,
    faults: Faults,
    stats: &Stats,
    mut rng: Rng,
    started: std::time::Instant,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    loop {
        // Request head.
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let end = line == b"\r\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let length = header(&text, "content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let request_line = text.lines().next().unwrap_or_default();
        let skipped = faults.skip.is_some_and(|s| request_line.contains(s));
        let faults = match faults.only {
            _ if skipped => Faults::default(),
            Some((start, part)) if !(request_line.starts_with(start) && request_line.contains(part)) => {
                Faults::default()
            }
            _ if !faults.only_any.is_empty()
                && !faults
                    .only_any
                    .iter()
                    .any(|(start, part)| request_line.starts_with(start) && request_line.contains(part)) =>
            {
                Faults::default()
            }
            _ => faults,
        };

        if faults.read_only && !(request_line.starts_with("GET ") || request_line.starts_with("HEAD ")) {
            stats.denials.fetch_add(1, Ordering::Relaxed);
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
            write!(
                client,
                "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{xml}",
                xml.len()
            )?;
            continue;
        }

        if rng.chance(faults.reset) {
            stats.resets.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }

        let late = faults.late_slowdowns > 0
            && started.elapsed() >= faults.late_after
            && stats.late.fetch_add(1, Ordering::Relaxed) < faults.late_slowdowns;
        if late || rng.chance(faults.slowdown) {
            if !late {
                stats.slowdowns.fetch_add(1, Ordering::Relaxed);
            }
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            write!(
                client,
                "HTTP/1.1 503 Slow Down\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{xml}",
                xml.len()
            )?;
            continue;
        }
        if faults.legacy
            && let Some(why) = legacy_refusal(&text, request_line, &body, stats)
        {
            stats.legacy_refusals.fetch_add(1, Ordering::Relaxed);
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidArgument</Code><Message>{why}</Message></Error>"
            );
            write!(
                client,
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{xml}",
                xml.len()
            )?;
            continue;
        }
        if rng.chance(faults.deny_s3) {
            stats.denials.fetch_add(1, Ordering::Relaxed);
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
            write!(
                client,
                "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{xml}",
                xml.len()
            )?;
            continue;
        }
        if faults.deny_delete_keys && request_line.starts_with("POST ") && request_line.contains("?delete") {
            stats.denials.fetch_add(1, Ordering::Relaxed);
            let xml = refuse_every_key(&String::from_utf8_lossy(&body));
            write!(
                client,
                "HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{xml}",
                xml.len()
            )?;
            continue;
        }
        if rng.chance(faults.html) {
            stats.pages.fetch_add(1, Ordering::Relaxed);
            let page = "<html><head><title>Service Unavailable</title></head><body><h1>Please try again later</h1></body></html>";
            write!(
                client,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\r\n{page}",
                page.len()
            )?;
            continue;
        }
        if rng.chance(faults.garbage) {
            stats.pages.fetch_add(1, Ordering::Relaxed);
            let xml = "<?xml version=\"1.0\"?><Maintenance><Until>soon</Until>";
            write!(
                client,
                "HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{xml}",
                xml.len()
            )?;
            continue;
        }

        if rng.chance(faults.deny) {
            stats.denials.fetch_add(1, Ordering::Relaxed);
            let json = r#"{"code":"AccessDeniedException","message":"Access denied by the vault lock policy","type":"Client"}"#;
            write!(
                client,
                "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nx-amzn-errortype: AccessDeniedException\r\ncontent-length: {}\r\n\r\n{json}",
                json.len()
            )?;
            continue;
        }

        if !faults.delay.is_zero() {
            std::thread::sleep(faults.delay);
        }
        // Forward on a fresh connection that the server closes after
        // answering, so the whole response is what arrives before EOF.
        let mut up = TcpStream::connect(upstream)?;
        let forwarded = with_connection_close(&text);
        up.write_all(forwarded.as_bytes())?;
        up.write_all(&body)?;
        let mut response = Vec::new();
        up.read_to_end(&mut response)?;

        if rng.chance(faults.truncate) && response.len() > 1 {
            stats.truncations.fetch_add(1, Ordering::Relaxed);
            let cut = header_end(&response).map(|h| h + (response.len() - h) / 2).unwrap_or(response.len() / 2);
            client.write_all(&response[..cut.max(1)])?;
            return Ok(());
        }
        if rng.chance(faults.stall) {
            stats.stalls.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(faults.stall_for);
        }
        if rng.chance(faults.fail_after_forward) {
            stats.slowdowns.fetch_add(1, Ordering::Relaxed);
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            write!(
                client,
                "HTTP/1.1 503 Slow Down\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{xml}",
                xml.len()
            )?;
            continue;
        }
        let response = if faults.foreign_keys && request_line.contains("list-type=2") {
            foreign_keys(&response)
        } else {
            response
        };
        // The client may reuse its connection: drop the server's `close`.
        let response = strip_connection_close(&response);
        client.write_all(&response)?;
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

fn with_connection_close(head: &str) -> String {
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("connection: close\r\n\r\n");
    out
}

fn header_end(response: &[u8]) -> Option<usize> {
    response.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn strip_connection_close(response: &[u8]) -> Vec<u8> {
    let Some(end) = header_end(response) else { return response.to_vec() };
    let head = String::from_utf8_lossy(&response[..end]);
    let mut out = Vec::with_capacity(response.len());
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&response[end..]);
    out
}

/// S3's DeleteResult for a DeleteObjects body whose every object a lock
/// refuses.
fn refuse_every_key(body: &str) -> String {
    let field = |chunk: &str, name: &str| {
        chunk.split(&format!("<{name}>")).nth(1).and_then(|r| r.split(&format!("</{name}>")).next()).map(str::to_string)
    };
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    for object in body.split("<Object>").skip(1) {
        let key = field(object, "Key").unwrap_or_default();
        let version = field(object, "VersionId").map(|v| format!("<VersionId>{v}</VersionId>")).unwrap_or_default();
        xml.push_str(&format!(
            "<Error><Key>{key}</Key>{version}<Code>AccessDenied</Code><Message>Access Denied because object protected \
             by object lock.</Message></Error>"
        ));
    }
    xml.push_str("</DeleteResult>");
    xml
}

/// A listing with two keys outside any prefix added, as a server or
/// gateway that ignores `prefix` would answer.
fn foreign_keys(response: &[u8]) -> Vec<u8> {
    let Some(end) = header_end(response) else { return response.to_vec() };
    let body = String::from_utf8_lossy(&response[end..]).into_owned();
    let extra = "<Contents><Key>zz-someone-else/precious.dat</Key><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>\
                 <Contents><Key>another-backup/file</Key><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>";
    let Some(at) = body.find("</ListBucketResult>") else { return response.to_vec() };
    let body = format!("{}{extra}{}", &body[..at], &body[at..]);
    let head = String::from_utf8_lossy(&response[..end]);
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!("content-length: {}\r\n", body.len()));
        } else if !line.to_ascii_lowercase().starts_with("transfer-encoding:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// Why a legacy S3-compatible server would refuse this request, if it would.
fn legacy_refusal(head: &str, request_line: &str, body: &[u8], stats: &Stats) -> Option<String> {
    use base64::Engine as _;
    use md5::Digest as _;
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = name.trim().to_ascii_lowercase();
        if name.starts_with("x-amz-checksum-") || name == "x-amz-sdk-checksum-algorithm" {
            return Some(format!("unsupported header {name}"));
        }
        if name == "x-amz-content-sha256" && value.contains("UNSIGNED-PAYLOAD") {
            return Some("unsigned payloads are not supported".to_string());
        }
    }
    let md5 = header(head, "content-md5");
    if let Some(given) = &md5 {
        let actual = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
        if given.trim() != actual {
            return Some("the Content-MD5 you specified did not match what we received".to_string());
        }
        stats.md5_checked.fetch_add(1, Ordering::Relaxed);
    } else if request_line.starts_with("POST ") && request_line.contains("?delete") {
        return Some("Missing required header for this request: Content-MD5".to_string());
    }
    None
}
