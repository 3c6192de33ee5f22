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
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let files: HashMap<String, Vec<u8>> = files.into_iter().collect();
        let requested = Arc::new(Mutex::new(Vec::new()));
        let (srv, seen) = (server.clone(), requested.clone());
        let thread = std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let path = request.url().to_string();
                seen.lock().unwrap().push(path.clone());
                let response = match files.get(&path) {
                    Some(body) => tiny_http::Response::from_data(body.clone()),
                    None => tiny_http::Response::from_string("not found").with_status_code(404),
                };
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

    /// The paths requested so far, in order.
    pub fn requested(&self) -> Vec<String> {
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
