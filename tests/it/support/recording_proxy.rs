//! An HTTP proxy in front of a server that records what the plugin sends:
//! for the tests of headers on the wire (SSE, tags, storage classes).

use std::io::Write;
use std::net::{TcpListener, TcpStream};

/// An HTTP proxy in front of a server that records the head of every
/// request (lower-cased header names) and forwards it, one connection per
/// request. Set it as the plugin's `http_proxy`.
pub struct RecordingProxy {
    pub url: String,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RecordingProxy {
    pub fn start(upstream: &str) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = heads.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, keep) = (upstream.clone(), keep.clone());
                std::thread::spawn(move || {
                    let _ = forward(client, &upstream, &keep);
                });
            }
        });
        RecordingProxy { url, heads }
    }

    /// The request heads so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn forward(mut client: TcpStream, upstream: &str, heads: &std::sync::Mutex<Vec<String>>) -> std::io::Result<()> {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines: Vec<String> = text.trim_end().split("\r\n").map(str::to_string).collect();
    let length: usize = lines
        .iter()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body)?;
    // Absolute-form target to origin-form; one request per connection.
    let mut first = lines[0].splitn(3, ' ').map(str::to_string).collect::<Vec<_>>();
    if let Some(rest) = first[1].strip_prefix("http://") {
        first[1] = rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_else(|| "/".to_string());
    }
    lines[0] = first.join(" ");
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    lines.push("connection: close".to_string());
    heads.lock().unwrap().push(
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| if i == 0 { l.clone() } else { l.to_ascii_lowercase() })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(format!("{}\r\n\r\n", lines.join("\r\n")).as_bytes())?;
    server.write_all(&body)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    client.write_all(&response)
}
