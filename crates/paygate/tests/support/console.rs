//! The console's pages over HTTP, as a browser uses them minus rendering: `Browser` is a cookie jar over ureq
//! without redirects (console stories; Chromium drives the same pages in tests/clients/node/console.test.js).

use super::TestServer;
use paygate_core::console::Role;
use std::collections::BTreeMap;

pub const PASSWORD: &str = "correct horse battery";

pub struct Page {
    pub status: u16,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    /// The value of the hidden input `name` (the page's own markup: `name="x" value="…"`).
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self.body.find(&marker).unwrap_or_else(|| panic!("no {name} in {}", self.body)) + marker.len();
        self.body[at..].split('"').next().unwrap().to_string()
    }

    /// The text of the element with `id` (`<code id="…">text</code>`).
    pub fn by_id(&self, id: &str) -> String {
        let marker = format!("id=\"{id}\">");
        let at = self.body.find(&marker).unwrap_or_else(|| panic!("no #{id} in {}", self.body)) + marker.len();
        self.body[at..].split('<').next().unwrap().to_string()
    }
}

pub struct Browser {
    pub agent: ureq::Agent,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    pub accept_language: &'static str,
}

impl Browser {
    pub fn new(s: &TestServer) -> Browser {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        Browser { agent, base: s.base.clone(), cookies: BTreeMap::new(), accept_language: "en" }
    }

    pub fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>, headers: &[(&str, &str)]) -> Page {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !jar.is_empty() {
            req = req.set("cookie", &jar.join("; "));
        }
        req = req.set("accept-language", self.accept_language);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match form {
            Some(fields) => req.send_form(fields),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for name in resp.headers_names() {
            headers.insert(name.clone(), resp.all(&name).iter().map(|v| v.to_string()).collect());
        }
        for cookie in headers.get("set-cookie").cloned().unwrap_or_default() {
            let (pair, attributes) = cookie.split_once(';').unwrap_or((&cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page { status: resp.status(), headers, body: resp.into_string().unwrap() }
    }

    pub fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None, &[])
    }

    /// A form POST as a browser sends it from one of the console's own pages.
    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send("POST", path, Some(form), &[("sec-fetch-site", "same-origin")])
    }

    /// A POST of a form whose CSRF token is read from the page at `page_path` first, as a person would submit it.
    pub fn submit(&mut self, page_path: &str, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.get(page_path).hidden("csrf");
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields)
    }

    pub fn login(&mut self, app: &str, email: &str, password: &str) -> Page {
        let csrf = self.get("/console/login").hidden("csrf");
        self.post("/console/login", &[("csrf", &csrf), ("app", app), ("email", email), ("password", password)])
    }
}

pub fn user(s: &TestServer, app: &str, email: &str, role: Role) {
    s.rt.block_on(s.app.create_console_user(app, email, role, PASSWORD)).unwrap();
}

pub fn signed_in(s: &TestServer, app: &str, email: &str) -> Browser {
    let mut b = Browser::new(s);
    let page = b.login(app, email, PASSWORD);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/test")), "{}", page.body);
    b
}
