//! Just enough HTTP/1.1 for a read-only registry: requests parsed with `httparse` (already in
//! the tree, under ureq) within fixed limits, keep-alive, and responses with a known length,
//! their body from memory or streamed from the media. No request body is ever read beyond a
//! small bound: a registry that only serves needs none.

use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use ferry_format::archive::Run;

/// The largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most headers a request may have.
pub const MAX_HEADERS: usize = 64;
/// Request bodies up to this size are read and dropped (so that the connection can be kept);
/// a larger one closes it.
const MAX_DISCARD: u64 = 64 * 1024;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/v2/org/app/manifests/1?x=y`).
    pub target: String,
    /// Header names in lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// The client asked to close, or spoke HTTP/1.0 without keep-alive.
    pub close: bool,
    /// Bytes of body announced (`Content-Length`); chunked bodies are refused.
    pub body_len: u64,
}

impl Request {
    /// The first header of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter (not percent-decoded beyond `%2F`, `%3A`, `%2B`, `%3B`, `%3D`).
    pub fn query(&self, name: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| decode(v))
    }
}

fn decode(v: &str) -> String {
    v.replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%3A", ":")
        .replace("%3a", ":")
        .replace("%2B", "+")
        .replace("%2b", "+")
        .replace("%3B", ";")
        .replace("%3b", ";")
        .replace("%3D", "=")
        .replace("%3d", "=")
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection between requests (the normal end of keep-alive).
    Closed,
    /// The request is malformed or over a limit: answer 400 and close.
    Bad(String),
    Io(io::Error),
}

/// A connection's byte stream; a plain socket can send file ranges itself (`sendfile`).
pub trait Stream: Read + Write {
    fn raw_fd(&self) -> Option<RawFd> {
        None
    }
}

impl Stream for std::net::TcpStream {
    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }
}

impl Stream for rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream> {}

/// A response body.
pub enum Body<'a> {
    /// Bytes from a reader (in memory, or streamed from the media).
    Reader(Box<dyn Read + 'a>),
    /// Runs of volume files, sent as they are (checked before).
    Runs(Vec<Run<'a>>),
}

impl Body<'_> {
    pub fn bytes(bytes: Vec<u8>) -> Body<'static> {
        Body::Reader(Box::new(io::Cursor::new(bytes)))
    }
}

/// A connection: reads requests, writes responses.
pub struct Conn<S: Stream> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: Stream> Conn<S> {
    pub fn new(stream: S) -> Conn<S> {
        Conn {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Reads the next request head (bytes after it stay buffered for the next one).
    pub fn read_request(&mut self) -> Result<Request, ReadError> {
        loop {
            if let Some(end) = head_end(&self.buf) {
                let head: Vec<u8> = self.buf.drain(..end).collect();
                return parse(&head);
            }
            // Garbage (a TLS hello on a plain port, say) is refused at once, not waited out.
            if !self.buf.is_empty() && not_http(&self.buf) {
                return Err(ReadError::Bad(
                    "not an HTTP request (TLS to a plain HTTP server?)".into(),
                ));
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(ReadError::Bad(format!(
                    "request head larger than {MAX_HEAD} bytes"
                )));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).map_err(ReadError::Io)?;
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Bad("connection closed inside a request".into())
                });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads and drops a small request body; returns false when it is too large to drop (the
    /// connection must then close).
    pub fn discard_body(&mut self, len: u64) -> io::Result<bool> {
        if len > MAX_DISCARD {
            return Ok(false);
        }
        let buffered = (self.buf.len() as u64).min(len);
        self.buf.drain(..buffered as usize);
        let rest = len - buffered;
        io::copy(&mut (&mut self.stream).take(rest), &mut io::sink())?;
        Ok(true)
    }

    /// Writes a response head, then `head.length` bytes of `body` (nothing for a HEAD).
    pub fn respond(&mut self, head: &ResponseHead, body: Body, send_body: bool) -> io::Result<u64> {
        let mut top = Vec::with_capacity(512);
        write!(top, "HTTP/1.1 {} {}\r\n", head.status, reason(head.status))?;
        for (k, v) in &head.headers {
            write!(top, "{k}: {v}\r\n")?;
        }
        write!(top, "Content-Length: {}\r\n", head.length)?;
        if head.close {
            write!(top, "Connection: close\r\n")?;
        }
        write!(top, "\r\n")?;
        let sent = match body {
            _ if !send_body => {
                self.stream.write_all(&top)?;
                0
            }
            Body::Reader(r) => {
                let mut w = BufWriter::with_capacity(256 * 1024, &mut self.stream);
                w.write_all(&top)?;
                let n = io::copy(&mut r.take(head.length), &mut w)?;
                w.flush()?;
                n
            }
            Body::Runs(runs) => {
                self.stream.write_all(&top)?;
                send_runs(&mut self.stream, &runs)?
            }
        };
        self.stream.flush()?;
        if send_body && sent < head.length {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the body ended after {sent} of {} bytes", head.length),
            ));
        }
        Ok(sent)
    }
}

/// Sends runs of volumes: with `sendfile` on a plain socket from a volume file (no copy
/// through user space), else (TLS, or a volume rebuilt from parity) read by offset into a
/// buffer and written.
fn send_runs<S: Stream>(stream: &mut S, runs: &[Run]) -> io::Result<u64> {
    let mut sent = 0;
    let mut buf = Vec::new();
    for r in runs {
        if let (Some(fd), Some(file)) = (stream.raw_fd(), r.source.file()) {
            sent += sendfile(fd, file, r)?;
            continue;
        }
        buf.resize(256 * 1024, 0);
        let mut at = 0;
        while at < r.len {
            let n = buf.len().min((r.len - at) as usize);
            r.source.read_exact_at(&mut buf[..n], r.offset + at)?;
            stream.write_all(&buf[..n])?;
            at += n as u64;
        }
        sent += r.len;
    }
    Ok(sent)
}

/// `sendfile(2)` of one run, whole.
fn sendfile(out: RawFd, file: &std::fs::File, r: &Run) -> io::Result<u64> {
    let mut offset = libc::off_t::try_from(r.offset).map_err(io::Error::other)?;
    let end = r.offset + r.len;
    while (offset as u64) < end {
        let count = ((end - offset as u64) as usize).min(1 << 30);
        // SAFETY: both descriptors are open for the duration of the call, and `offset` is a
        // valid, exclusively borrowed off_t.
        let n = unsafe { libc::sendfile(out, file.as_raw_fd(), &mut offset, count) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the volume ends early",
            ));
        }
    }
    Ok(r.len)
}

/// A response's status line and headers, and the body length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub length: u64,
    pub close: bool,
}

impl ResponseHead {
    pub fn new(status: u16, length: u64) -> ResponseHead {
        ResponseHead {
            status,
            headers: vec![(
                "Docker-Distribution-API-Version".into(),
                "registry/2.0".into(),
            )],
            length,
            close: false,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> ResponseHead {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// Whether the bytes received so far cannot start an HTTP request.
fn not_http(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    matches!(
        httparse::Request::new(&mut headers).parse(buf),
        Err(e) if e != httparse::Error::TooManyHeaders
    )
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn parse(head: &[u8]) -> Result<Request, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(ReadError::Bad("incomplete request".into())),
        Err(e) => return Err(ReadError::Bad(format!("malformed request: {e}"))),
    }
    let method = req.method.unwrap_or("").to_string();
    let target = req.path.unwrap_or("").to_string();
    let version = req.version.unwrap_or(1);
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    if find("transfer-encoding").is_some() {
        return Err(ReadError::Bad(
            "request bodies with a transfer encoding are not accepted".into(),
        ));
    }
    let body_len = match find("content-length") {
        Some(v) => v
            .parse()
            .map_err(|_| ReadError::Bad(format!("bad Content-Length {v:?}")))?,
        None => 0,
    };
    let connection = find("connection").unwrap_or("").to_ascii_lowercase();
    let close =
        connection.contains("close") || (version == 0 && !connection.contains("keep-alive"));
    Ok(Request {
        method,
        target,
        headers,
        close,
        body_len,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// What a `Range` header asks of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// No header, or one to answer with the whole body (several ranges).
    Whole,
    /// Bytes `start..end` (end exclusive).
    Part(u64, u64),
    /// A range outside the body (416).
    Unsatisfiable,
}

/// Reads `Range: bytes=START-[END]` (or `bytes=-SUFFIX`) against a body of `size` bytes.
pub fn parse_range(header: Option<&str>, size: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let bounds = spec
        .split_once('-')
        .and_then(|(start, end)| match (start.trim(), end.trim()) {
            ("", suffix) => Some((size.saturating_sub(suffix.parse().ok()?), size)),
            (s, "") => Some((s.parse().ok()?, size)),
            (s, e) => Some((
                s.parse().ok()?,
                e.parse::<u64>().ok()?.saturating_add(1).min(size),
            )),
        });
    match bounds {
        Some((start, end)) if start < size && start < end => Range::Part(start, end),
        _ => Range::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that reads from a fixed buffer and records what is written.
    struct Pipe {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Stream for Pipe {}

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn conn(input: &[u8]) -> Conn<Pipe> {
        Conn::new(Pipe {
            input: io::Cursor::new(input.to_vec()),
            output: Vec::new(),
        })
    }

    #[test]
    fn pipelined_requests_and_their_limits() {
        let mut c = conn(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nHEAD /v2/a/blobs/sha256:00?n=1&last=a%2Fb HTTP/1.1\r\nConnection: close\r\n\r\n");
        let a = c.read_request().unwrap();
        assert_eq!(
            (a.method.as_str(), a.path(), a.close),
            ("GET", "/v2/", false)
        );
        assert_eq!(a.header("host"), Some("x"));
        let b = c.read_request().unwrap();
        assert_eq!(b.method, "HEAD");
        assert_eq!(b.query("last").as_deref(), Some("a/b"));
        assert!(b.close);
        assert!(matches!(c.read_request(), Err(ReadError::Closed)));
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.extend(vec![b'a'; MAX_HEAD]);
        assert!(matches!(conn(&huge).read_request(), Err(ReadError::Bad(_))));
        let tls_hello = [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01];
        assert!(matches!(
            conn(&tls_hello).read_request(),
            Err(ReadError::Bad(_))
        ));
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(
            conn(chunked).read_request(),
            Err(ReadError::Bad(_))
        ));
        assert!(matches!(
            conn(b"GET / HTTP/1.1\r\nHost: x\r\n").read_request(),
            Err(ReadError::Bad(_))
        ));
    }

    #[test]
    fn responses_have_their_length_and_heads_no_body() {
        let mut c = conn(b"");
        let head = ResponseHead::new(200, 5).header("Content-Type", "text/plain");
        c.respond(&head, Body::bytes(b"hello".to_vec()), true)
            .unwrap();
        c.respond(&head, Body::bytes(b"hello".to_vec()), false)
            .unwrap();
        let out = String::from_utf8(c.stream.output.clone()).unwrap();
        assert_eq!(out.matches("Content-Length: 5").count(), 2);
        assert_eq!(out.matches("hello").count(), 1, "{out}");
        let short = c.respond(
            &ResponseHead::new(200, 10),
            Body::bytes(b"abc".to_vec()),
            true,
        );
        assert!(short.is_err(), "a body shorter than announced is an error");
    }

    #[test]
    fn ranges() {
        use Range::*;
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(parse_range(Some("bytes=0-"), 10), Part(0, 10));
        assert_eq!(parse_range(Some("bytes=2-4"), 10), Part(2, 5));
        assert_eq!(parse_range(Some("bytes=2-99"), 10), Part(2, 10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Part(7, 10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=x-"), 10), Unsatisfiable);
    }
}
