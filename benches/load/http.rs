//! A small keep-alive HTTP/1.1 client over one tokio `TcpStream` per connection.
//!
//! Hand-written rather than hyper so that one client core can drive far more requests
//! than a server core answers: one `write` per request, responses parsed in place from a
//! reused buffer, only the headers the protocol needs copied out. Request sending and
//! response reading are separate calls so a caller can pipeline (send the next request,
//! then work on the previous body while the server answers).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection idle for longer than this is replaced before the next request, so a
/// server's keep-alive timeout (Node closes idle sockets after 5 s) never races a request.
const MAX_IDLE: Duration = Duration::from_millis(1500);

/// Where requests go: a loopback socket address and the path prefix of streams.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    host_header: String,
    prefix: String,
}

impl Target {
    /// Parses `http://HOST:PORT[/]`. Only loopback hosts are accepted: this tool sends
    /// load, and load goes to this machine only.
    pub fn parse(url: &str, prefix: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--url must start with http:// (got {url})"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !path.is_empty() && path != "/" {
            return Err(format!(
                "--url takes no path ({path}); use --prefix for the streams' path prefix"
            ));
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, p) = r
                .split_once(']')
                .ok_or_else(|| format!("bad IPv6 authority in {url}"))?;
            (h, p.strip_prefix(':').unwrap_or(""))
        } else {
            authority
                .rsplit_once(':')
                .ok_or_else(|| format!("--url needs an explicit port (got {url})"))?
        };
        let port: u16 = port
            .parse()
            .map_err(|_| format!("bad port in --url {url}"))?;
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse().map_err(|_| {
                format!("--url host must be a loopback IP or localhost (got {host})")
            })?
        };
        if !ip.is_loopback() {
            return Err(format!(
                "refusing non-loopback target {ip}: the load generator only targets this machine"
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() && !prefix.starts_with('/') {
            return Err(format!("--prefix must start with / (got {prefix})"));
        }
        Ok(Target {
            addr: SocketAddr::new(ip, port),
            host_header: authority.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The request path of stream `name` (names used here need no escaping).
    pub fn stream_path(&self, name: &str) -> String {
        format!("{}/{}", self.prefix, name)
    }
}

/// The parts of a response head the scenarios use.
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub status: u16,
    pub next_offset: Option<String>,
    pub up_to_date: bool,
}

impl Head {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

enum BodyKind {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

pub struct Conn {
    target: Target,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    wbuf: Vec<u8>,
    last_used: Instant,
    /// Requests written whose responses are not read yet.
    pending: usize,
    /// Methods of the pending requests, oldest first (HEAD responses have no body).
    pending_head: std::collections::VecDeque<bool>,
}

impl Conn {
    pub async fn connect(target: &Target) -> io::Result<Conn> {
        let mut c = Conn {
            target: target.clone(),
            stream: None,
            buf: vec![0; 64 * 1024],
            pos: 0,
            len: 0,
            wbuf: Vec::with_capacity(4096),
            last_used: Instant::now(),
            pending: 0,
            pending_head: Default::default(),
        };
        c.reconnect().await?;
        Ok(c)
    }

    async fn reconnect(&mut self) -> io::Result<()> {
        let s = TcpStream::connect(self.target.addr).await?;
        s.set_nodelay(true)?;
        self.stream = Some(s);
        self.pos = 0;
        self.len = 0;
        self.last_used = Instant::now();
        Ok(())
    }

    /// Writes one request. `content_type` is sent when given; a body always gets a
    /// Content-Length (also for an empty body on PUT/POST).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> io::Result<()> {
        self.send_with(method, path, content_type, &[], body).await
    }

    /// [`Conn::send`] with extra request headers (`name`, `value`), written as given.
    pub async fn send_with(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        if self.pending == 0 && (self.stream.is_none() || self.last_used.elapsed() > MAX_IDLE) {
            self.reconnect().await?;
        }
        let w = &mut self.wbuf;
        w.clear();
        w.extend_from_slice(method.as_bytes());
        w.push(b' ');
        w.extend_from_slice(path.as_bytes());
        w.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        w.extend_from_slice(self.target.host_header.as_bytes());
        w.extend_from_slice(b"\r\n");
        if let Some(ct) = content_type {
            w.extend_from_slice(b"Content-Type: ");
            w.extend_from_slice(ct.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        for (name, value) in headers {
            w.extend_from_slice(name.as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(value.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() || method == "PUT" || method == "POST" {
            w.extend_from_slice(b"Content-Length: ");
            w.extend_from_slice(body.len().to_string().as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        w.extend_from_slice(b"\r\n");
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))?;
        if body.len() <= 16 * 1024 {
            w.extend_from_slice(body);
            stream.write_all(w).await?;
        } else {
            stream.write_all(w).await?;
            stream.write_all(body).await?;
        }
        self.pending += 1;
        self.pending_head.push_back(method == "HEAD");
        Ok(())
    }

    /// Reads the oldest pending response; its body replaces the contents of `body`.
    pub async fn recv(&mut self, body: &mut Vec<u8>) -> io::Result<Head> {
        let is_head = self
            .pending_head
            .pop_front()
            .ok_or_else(|| io::Error::other("recv without a pending request"))?;
        self.pending -= 1;
        let r = self.recv_inner(is_head, body).await;
        if r.is_err() {
            self.stream = None;
            self.pending = 0;
            self.pending_head.clear();
        }
        self.last_used = Instant::now();
        r
    }

    /// `send` + `recv`.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        req_body: &[u8],
        resp_body: &mut Vec<u8>,
    ) -> io::Result<Head> {
        self.send(method, path, content_type, req_body).await?;
        self.recv(resp_body).await
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.pos > 0 && self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        }
        if self.len == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.len, 0);
                self.len -= self.pos;
                self.pos = 0;
            } else {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))?;
        let n = stream.read(&mut self.buf[self.len..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        self.len += n;
        Ok(())
    }

    async fn recv_inner(&mut self, is_head: bool, body: &mut Vec<u8>) -> io::Result<Head> {
        body.clear();
        let (head, kind, close) = loop {
            if self.len > self.pos {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(&self.buf[self.pos..self.len]) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = resp.code.unwrap_or(0);
                        let mut head = Head {
                            status,
                            ..Head::default()
                        };
                        let mut length = None;
                        let mut chunked = false;
                        let mut close = resp.version == Some(0);
                        for h in resp.headers.iter() {
                            let name = h.name;
                            if name.eq_ignore_ascii_case("content-length") {
                                length = std::str::from_utf8(h.value)
                                    .ok()
                                    .and_then(|v| v.trim().parse::<usize>().ok());
                            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                                chunked = h.value.eq_ignore_ascii_case(b"chunked");
                            } else if name.eq_ignore_ascii_case("connection") {
                                close = h.value.eq_ignore_ascii_case(b"close");
                            } else if name.eq_ignore_ascii_case("stream-next-offset") {
                                head.next_offset =
                                    Some(String::from_utf8_lossy(h.value).into_owned());
                            } else if name.eq_ignore_ascii_case("stream-up-to-date") {
                                head.up_to_date = h.value.eq_ignore_ascii_case(b"true");
                            }
                        }
                        self.pos += n;
                        let kind = if is_head
                            || status == 204
                            || status == 304
                            || (100..200).contains(&status)
                        {
                            BodyKind::None
                        } else if chunked {
                            BodyKind::Chunked
                        } else if let Some(l) = length {
                            BodyKind::Length(l)
                        } else {
                            BodyKind::UntilClose
                        };
                        if (100..200).contains(&status) {
                            // Interim response (100 Continue): the real one follows.
                            continue;
                        }
                        break (head, kind, close);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("bad response head: {e}"),
                        ))
                    }
                }
            }
            self.fill().await?;
        };
        match kind {
            BodyKind::None => {}
            BodyKind::Length(n) => self.read_exact_into(n, body).await?,
            BodyKind::Chunked => loop {
                let size = loop {
                    match httparse::parse_chunk_size(&self.buf[self.pos..self.len]) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            self.pos += used;
                            break size as usize;
                        }
                        Ok(httparse::Status::Partial) => self.fill().await?,
                        Err(_) => {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "bad chunk size",
                            ))
                        }
                    }
                };
                if size == 0 {
                    // Trailers (none expected) end with an empty line.
                    loop {
                        if let Some(i) = find_crlf(&self.buf[self.pos..self.len]) {
                            let empty = i == 0;
                            self.pos += i + 2;
                            if empty {
                                break;
                            }
                        } else {
                            self.fill().await?;
                        }
                    }
                    break;
                }
                self.read_exact_into(size, body).await?;
                while self.len - self.pos < 2 {
                    self.fill().await?;
                }
                self.pos += 2;
            },
            BodyKind::UntilClose => {
                loop {
                    body.extend_from_slice(&self.buf[self.pos..self.len]);
                    self.pos = self.len;
                    match self.fill().await {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                        Err(e) => return Err(e),
                    }
                }
                self.stream = None;
            }
        }
        if close {
            self.stream = None;
        }
        Ok(head)
    }

    /// Appends exactly `n` body bytes to `body`: first what is buffered, then straight
    /// from the socket into `body`.
    async fn read_exact_into(&mut self, n: usize, body: &mut Vec<u8>) -> io::Result<()> {
        let have = (self.len - self.pos).min(n);
        body.extend_from_slice(&self.buf[self.pos..self.pos + have]);
        self.pos += have;
        let rest = n - have;
        if rest > 0 {
            let start = body.len();
            body.resize(start + rest, 0);
            let stream = self
                .stream
                .as_mut()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))?;
            stream.read_exact(&mut body[start..]).await?;
        }
        Ok(())
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}
