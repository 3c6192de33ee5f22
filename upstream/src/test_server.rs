//! A loopback HTTP server for tests of downloads: it serves fixed bodies at fixed paths,
//! answers 404 for anything else, and records what was asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct Server {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    requested: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:<port>` with no trailing slash.
    pub base: String,
}

impl Server {
    /// Serve each (path, body); paths start with '/'.
    pub fn start(files: Vec<(String, Vec<u8>)>) -> Server {
        let files: HashMap<String, Vec<u8>> = files.into_iter().collect();
        Server::with_handler(move |_method, url| match files.get(url) {
            Some(body) => (200, "application/octet-stream", body.clone()),
            None => (404, "text/plain", b"not found".to_vec()),
        })
    }

    /// Answer every request with `handler(method, url)` = (status, content type, body). The
    /// requests are recorded as "METHOD url".
    pub fn with_handler<F>(handler: F) -> Server
    where
        F: Fn(&str, &str) -> (u16, &'static str, Vec<u8>) + Send + 'static,
    {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let requested = Arc::new(Mutex::new(Vec::new()));
        let (srv, seen) = (server.clone(), requested.clone());
        let thread = std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let url = request.url().to_string();
                let method = request.method().to_string();
                seen.lock().unwrap().push(format!("{method} {url}"));
                let (status, content_type, body) = handler(&method, &url);
                let header = tiny_http::Header::from_bytes("Content-Type", content_type)
                    .expect("a valid header");
                let response = tiny_http::Response::from_data(body)
                    .with_status_code(status)
                    .with_header(header);
                let _ = request.respond(response);
            }
        });
        Server {
            server,
            thread: Some(thread),
            requested,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The URLs requested so far, in order (GET only, as file servers see them).
    pub fn requested(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|r| r.strip_prefix("GET ").map(String::from))
            .collect()
    }

    /// Every request so far as "METHOD url", in order.
    pub fn requests(&self) -> Vec<String> {
        self.requested.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
