//! Counts HTTP/1.1 requests in a client's plaintext byte stream, fed in
//! chunks split anywhere: finds each request head (up to the blank line),
//! reads its method, `Content-Length` and `Transfer-Encoding: chunked`, and
//! skips the body (fixed length, or chunk by chunk with the trailers) to
//! the next head. Only what counting needs: no validation beyond that; a
//! stream it cannot follow (a head over 64 KiB, a bad chunk size) stops the
//! counting for that connection (`lost`).
//!
//! It also times the server: when a request's last byte reaches the server
//! it is queued as awaiting an answer, and [`AnswerTap`] takes it off at the
//! answer's first byte from the server, adding the time between to its kind
//! (method and query parameter names, e.g. `POST ?uploadId`). HTTP/1.1
//! clients here do not pipeline, so the first server bytes after a request
//! ends belong to its answer (an interim `100 Continue` comes before the
//! body ends and is not counted).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::link::Tap;

const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, PartialEq)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    Lost,
}

/// Requests counted, by method; shared by every connection.
pub type Methods = Arc<Mutex<BTreeMap<String, u64>>>;

/// Server time by request kind: answers timed, their total seconds and the
/// longest; shared by every connection.
pub type ServerTimes = Arc<Mutex<BTreeMap<String, Timed>>>;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Timed {
    pub answered: u64,
    pub seconds: f64,
    pub max_seconds: f64,
}

/// One connection's requests sent whole and not yet answered, with when
/// their last byte went to the server.
pub type Awaiting = Arc<Mutex<VecDeque<(String, Instant)>>>;

pub struct RequestCounter {
    state: State,
    line: Vec<u8>,
    methods: Methods,
    /// The kind of the request being read, and where finished ones wait.
    kind: String,
    awaiting: Option<Awaiting>,
}

impl RequestCounter {
    pub fn new(methods: Methods) -> Self {
        RequestCounter { state: State::Head, line: Vec::new(), methods, kind: String::new(), awaiting: None }
    }

    /// Also queue each request, once sent whole, for [`AnswerTap`] to time.
    pub fn timing(mut self, awaiting: Awaiting) -> Self {
        self.awaiting = Some(awaiting);
        self
    }

    fn sent(&mut self) {
        if let Some(a) = &self.awaiting {
            a.lock().unwrap().push_back((std::mem::take(&mut self.kind), Instant::now()));
        }
    }

    pub fn lost(&self) -> bool {
        self.state == State::Lost
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self.state {
                State::Lost => return,
                State::Body(n) => {
                    let k = (n as usize).min(data.len());
                    data = &data[k..];
                    let left = n - k as u64;
                    self.state = if left == 0 { State::Head } else { State::Body(left) };
                    if left == 0 {
                        self.sent();
                    }
                }
                State::ChunkData(n) => {
                    let k = (n as usize).min(data.len());
                    data = &data[k..];
                    let left = n - k as u64;
                    self.state = if left == 0 { State::ChunkEnd } else { State::ChunkData(left) };
                }
                State::Head => {
                    // Up to and including the blank line ending the head.
                    let start = self.line.len().saturating_sub(3);
                    let take = match find_crlfcrlf(&self.line[start..], data) {
                        Some(k) => k,
                        None => data.len(),
                    };
                    self.line.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.line.ends_with(b"\r\n\r\n") {
                        // Blank lines between requests are allowed: skip them.
                        if self.line == b"\r\n\r\n" || self.line.iter().all(|&b| b == b'\r' || b == b'\n') {
                            self.line.clear();
                            continue;
                        }
                        let head = std::mem::take(&mut self.line);
                        self.state = self.head(&head);
                        if self.state == State::Head {
                            self.sent();
                        }
                    } else if self.line.len() > MAX_HEAD {
                        self.state = State::Lost;
                    }
                }
                State::ChunkSize | State::ChunkEnd | State::Trailers => {
                    // A line: up to and including its LF.
                    let k = data.iter().position(|&b| b == b'\n');
                    let take = k.map_or(data.len(), |k| k + 1);
                    self.line.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if k.is_none() {
                        if self.line.len() > MAX_HEAD {
                            self.state = State::Lost;
                        }
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    let text = trim_eol(&line);
                    self.state = match self.state {
                        State::ChunkSize => {
                            let hex = text.split(|&b| b == b';').next().unwrap_or(b"");
                            match std::str::from_utf8(hex).ok().and_then(|h| u64::from_str_radix(h.trim(), 16).ok()) {
                                Some(0) => State::Trailers,
                                Some(n) => State::ChunkData(n),
                                None => State::Lost,
                            }
                        }
                        State::ChunkEnd if text.is_empty() => State::ChunkSize,
                        State::ChunkEnd => State::Lost,
                        _ if text.is_empty() => State::Head, // end of trailers
                        _ => State::Trailers,
                    };
                    if self.state == State::Head {
                        self.sent();
                    }
                }
            }
        }
    }

    /// Counts one request head; returns the state for its body.
    fn head(&mut self, head: &[u8]) -> State {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.trim_start_matches(['\r', '\n']).split("\r\n");
        let first = lines.next().unwrap_or("");
        let mut words = first.split(' ');
        let method = words.next().filter(|m| !m.is_empty()).unwrap_or("?");
        *self.methods.lock().unwrap().entry(method.to_string()).or_default() += 1;
        self.kind = kind(method, words.next().unwrap_or(""));
        let (mut length, mut chunked) = (0u64, false);
        for l in lines {
            let Some((name, value)) = l.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                match value.parse() {
                    Ok(n) => length = n,
                    Err(_) => return State::Lost,
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().split(',').any(|t| t.trim() == "chunked");
            }
        }
        if chunked {
            State::ChunkSize
        } else if length > 0 {
            State::Body(length)
        } else {
            State::Head
        }
    }
}

/// A request's kind: its method and its query's parameter names, sorted
/// (`PUT ?partNumber&uploadId`), so that S3's calls sharing a method apart.
fn kind(method: &str, target: &str) -> String {
    let Some((_, query)) = target.split_once('?') else { return method.to_string() };
    let mut names: Vec<&str> =
        query.split('&').map(|p| p.split('=').next().unwrap_or("")).filter(|n| !n.is_empty()).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() { method.to_string() } else { format!("{method} ?{}", names.join("&")) }
}

/// Times the server's answers on the server-to-client stream, as the proxy
/// reads them from the server (see the module's doc).
pub struct AnswerTap {
    pub awaiting: Awaiting,
    pub times: ServerTimes,
}

impl Tap for AnswerTap {
    fn bytes(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let Some((kind, since)) = self.awaiting.lock().unwrap().pop_front() else { return };
        let took = since.elapsed().as_secs_f64();
        let mut times = self.times.lock().unwrap();
        let t = times.entry(kind).or_default();
        t.answered += 1;
        t.seconds += took;
        t.max_seconds = t.max_seconds.max(took);
    }
}

/// Where in `data` the head ends (index just past CRLFCRLF), given the
/// last bytes already buffered (`tail`, at most 3).
fn find_crlfcrlf(tail: &[u8], data: &[u8]) -> Option<usize> {
    const END: &[u8] = b"\r\n\r\n";
    // A match straddling the buffered tail and the new data.
    for t in (1..=tail.len()).rev() {
        let need = 4 - t;
        if tail[tail.len() - t..] == END[..t] && data.len() >= need && data[..need] == END[t..] {
            return Some(need);
        }
    }
    data.windows(4).position(|w| w == END).map(|k| k + 4)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(stream: &[u8], cut: &[usize]) -> (BTreeMap<String, u64>, bool) {
        let methods = Methods::default();
        let mut c = RequestCounter::new(methods.clone());
        let mut at = 0;
        for &k in cut.iter().chain(std::iter::once(&stream.len())) {
            c.feed(&stream[at..k.max(at)]);
            at = k.max(at);
        }
        let lost = c.lost();
        let m = methods.lock().unwrap().clone();
        (m, lost)
    }

    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello\r\n\r\n!!");
        s.extend_from_slice(b"PUT /b/k?partNumber=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        s.extend_from_slice(b"6;chunk-signature=abc\r\nGET /x\r\n1a\r\n");
        s.extend_from_slice(&[b'z'; 26]);
        s.extend_from_slice(b"\r\n0\r\nx-amz-checksum-crc32: AAAA\r\n\r\n");
        s.extend_from_slice(b"GET /b/k HTTP/1.1\r\nHost: x\r\n\r\n");
        s.extend_from_slice(b"HEAD /b/k HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
        s
    }

    #[test]
    fn counts_requests_however_the_stream_is_split() {
        let s = stream();
        let want: BTreeMap<String, u64> =
            [("GET".to_string(), 1), ("HEAD".to_string(), 1), ("PUT".to_string(), 2)].into();
        // Whole, byte by byte, and every two-way split.
        assert_eq!(count(&s, &[]), (want.clone(), false));
        let every: Vec<usize> = (1..s.len()).collect();
        assert_eq!(count(&s, &every), (want.clone(), false));
        for k in 1..s.len() {
            assert_eq!(count(&s, &[k]), (want.clone(), false), "split at {k}");
        }
    }

    #[test]
    fn times_each_answer_from_its_request_s_end_by_kind() {
        let awaiting = Awaiting::default();
        let times = ServerTimes::default();
        let mut c = RequestCounter::new(Methods::default()).timing(awaiting.clone());
        let mut answers = AnswerTap { awaiting: awaiting.clone(), times: times.clone() };
        // Bytes before any request ended (an interim 100 Continue) are not an answer.
        c.feed(b"PUT /b/k?uploadId=u&partNumber=3 HTTP/1.1\r\nContent-Length: 4\r\n\r\nab");
        answers.bytes(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert!(awaiting.lock().unwrap().is_empty());
        c.feed(b"cd");
        std::thread::sleep(std::time::Duration::from_millis(20));
        answers.bytes(b"HTTP/1.1 200 OK\r\n");
        answers.bytes(b"the rest of the answer is not another one");
        c.feed(b"POST /b/k?uploadId=u HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /b/k HTTP/1.1\r\n\r\n");
        assert_eq!(awaiting.lock().unwrap().len(), 2);
        answers.bytes(b"H");
        answers.bytes(b"H");
        let t = times.lock().unwrap().clone();
        let kinds: Vec<&str> = t.keys().map(|k| k.as_str()).collect();
        assert_eq!(kinds, ["GET", "POST ?uploadId", "PUT ?partNumber&uploadId"]);
        let put = t["PUT ?partNumber&uploadId"];
        assert_eq!(put.answered, 1);
        assert!(put.seconds >= 0.02 && put.max_seconds == put.seconds, "{put:?}");
        assert!(t["GET"].seconds < 0.02);
    }

    #[test]
    fn a_bad_chunk_size_stops_counting() {
        let s = b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\r\n\r\n";
        let (m, lost) = count(s, &[]);
        assert!(lost);
        assert_eq!(m.get("PUT"), Some(&1));
        assert_eq!(m.get("GET"), None);
    }
}
