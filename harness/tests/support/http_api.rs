//! suites' fake API server, served over HTTP/1.1 on 127.0.0.1 so the real `harness` binary can
//! reach it through a kubeconfig. The state and default answers are suites' (`tests/common`);
//! this adds only the transport and `GET /version`, shaped like the API server's version.Info
//! (k8s.io/apimachinery/pkg/version/types.go), which a client asks first.

use super::api::{Cluster, Log, Reply, Seen};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

type Hook = Box<dyn FnMut(&Seen, &mut Cluster) -> Option<Reply> + Send>;

pub struct HttpApi {
    pub addr: SocketAddr,
    pub log: Log,
}

impl HttpApi {
    /// A kubeconfig for this server with a bearer token the tests look for in every output.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: http://{}
users:
- name: u
  user:
    token: planted-token-never-shown
contexts:
- name: fake
  context: {{cluster: fake, user: u}}
current-context: fake
",
            self.addr
        )
    }
}

pub fn serve(
    state: Cluster,
    hook: impl FnMut(&Seen, &mut Cluster) -> Option<Reply> + Send + 'static,
) -> HttpApi {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let shared: Arc<Mutex<(Cluster, Hook)>> = Arc::new(Mutex::new((state, Box::new(hook))));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (shared, seen) = (shared.clone(), seen.clone());
            std::thread::spawn(move || {
                let _ = connection(stream, &shared, &seen);
            });
        }
    });
    HttpApi { addr, log }
}

fn decode(q: &str) -> String {
    let bytes = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(
                    u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16)
                        .unwrap(),
                );
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn version() -> Value {
    json!({"major": "1", "minor": "34", "gitVersion": "v1.34.1",
           "gitCommit": "93248f9ae092f571eb870b7664c534bfc7d00f03", "gitTreeState": "clean",
           "buildDate": "2025-09-09T19:43:15Z", "goVersion": "go1.24.6", "compiler": "gc",
           "platform": "linux/amd64"})
}

fn connection(
    stream: TcpStream,
    shared: &Mutex<(Cluster, Hook)>,
    log: &Log,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut headers = http::HeaderMap::new();
        let mut length = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if let (Ok(k), Ok(v)) = (
                    http::HeaderName::from_bytes(k.trim().as_bytes()),
                    http::HeaderValue::from_str(v.trim()),
                ) {
                    headers.insert(k, v);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let s = Seen {
            method,
            path: path.to_string(),
            query: decode(query),
            headers,
            body: if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
            },
        };
        log.lock().unwrap().push(s.clone());
        let reply = if s.is("GET", "/version") {
            Reply::Json(200, version())
        } else {
            let mut guard = shared.lock().unwrap();
            let (state, hook) = &mut *guard;
            match hook(&s, state) {
                Some(r) => r,
                None => state.answer(&s),
            }
        };
        let (code, warnings, v) = match reply {
            // Never answered: hold the connection until the client goes away.
            Reply::Hang => {
                let mut sink = [0u8; 64];
                while reader.read(&mut sink)? > 0 {}
                return Ok(());
            }
            Reply::Json(c, v) => (c, vec![], v),
            Reply::Warned(c, w, v) => (c, w, v),
        };
        let body = serde_json::to_vec(&v).unwrap();
        let mut head = format!(
            "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        for w in warnings {
            head.push_str(&format!("warning: {w}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        out.write_all(&body)?;
        out.flush()?;
    }
}
