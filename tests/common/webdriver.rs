//! A real Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`), with the few commands the web tests use. The driver
//! runs on a free loopback port and stops with the value.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http;

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium. Fails naming the
    /// packages when they are missing (the test script installs them).
    pub fn start() -> Browser {
        for (bin, package) in [
            ("/usr/bin/chromedriver", "chromium-driver"),
            ("/usr/bin/chromium", "chromium"),
        ] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: install the Debian package {package} (bash tests/run.sh installs it)"
            );
        }
        let port = super::free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().expect("a session").to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let r = http::request(
            self.port,
            method,
            path,
            &[("Content-Type", "application/json")],
            &body,
        );
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        assert!(
            r.status < 400,
            "WebDriver {method} {path}: {} {}",
            r.status,
            r.body
        );
        v["value"].clone()
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    pub fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The first element matching `css`, if any.
    pub fn find(&self, css: &str) -> Option<String> {
        let r = http::request(
            self.port,
            "POST",
            &self.s("/element"),
            &[("Content-Type", "application/json")],
            &json!({"using": "css selector", "value": css}).to_string(),
        );
        let v: Value = serde_json::from_str(&r.body).ok()?;
        v["value"][ELEMENT].as_str().map(str::to_string)
    }

    pub fn el(&self, css: &str) -> String {
        self.find(css)
            .unwrap_or_else(|| panic!("no element {css} on {}", self.url()))
    }

    pub fn click(&self, css: &str) {
        let e = self.el(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/click")),
            Some(json!({})),
        );
    }

    pub fn type_in(&self, css: &str, text: &str) {
        let e = self.el(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(json!({ "text": text })),
        );
    }

    pub fn clear(&self, css: &str) {
        let e = self.el(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/clear")),
            Some(json!({})),
        );
    }

    /// The visible text of `css`, or `None` while the page is changing
    /// (no such element yet, or one from the page being left).
    pub fn try_text(&self, css: &str) -> Option<String> {
        self.try_get(css, "text")
    }

    /// A property of `css`, or `None` while the page is changing.
    pub fn try_property(&self, css: &str, name: &str) -> Option<String> {
        self.try_get(css, &format!("property/{name}"))
    }

    fn try_get(&self, css: &str, what: &str) -> Option<String> {
        let e = self.find(css)?;
        let r = http::request(
            self.port,
            "GET",
            &self.s(&format!("/element/{e}/{what}")),
            &[],
            "",
        );
        if r.status >= 400 {
            return None;
        }
        let v: Value = serde_json::from_str(&r.body).ok()?;
        v["value"].as_str().map(str::to_string)
    }

    /// The visible text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        let e = self.el(css);
        self.call("GET", &self.s(&format!("/element/{e}/text")), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// A property of an element (`value` of a textarea).
    pub fn property(&self, css: &str, name: &str) -> String {
        let e = self.el(css);
        self.call(
            "GET",
            &self.s(&format!("/element/{e}/property/{name}")),
            None,
        )
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    pub fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": js, "args": []})),
        )
    }

    /// The value of a cookie of the current page (HttpOnly ones too).
    pub fn cookie(&self, name: &str) -> Option<String> {
        let r = http::request(
            self.port,
            "GET",
            &self.s(&format!("/cookie/{name}")),
            &[],
            "",
        );
        let v: Value = serde_json::from_str(&r.body).ok()?;
        v["value"]["value"].as_str().map(str::to_string)
    }

    /// Resizes the window (a phone: 390 × 844).
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.s("/window/rect"),
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Saves a PNG of the page.
    pub fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http::request(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                "",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
