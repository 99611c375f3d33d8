//! The JSON API against the real thing: the web router served in-process
//! on loopback over the deployment's database (SQLite and PostgreSQL),
//! tokens made by `buzon token create`, tickets by `buzon ingest`, and
//! plain HTTP requests, exactly as a script sends them.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use buzon::config::{Config, Sources};
use buzon::store::{Store, now_ms};
use common::http::{self, Response};
use common::{Backend, Deployment, ticket_numbers};
use serde_json::{Value, json};

const PEOPLE: &str = "[people.alonso]\nname = \"Alonso Pérez\"\nrole = \"agent\"\n\n\
                      [people.milagros]\nname = \"Milagros Muñoz\"\nrole = \"agent\"\n\n\
                      [people.temporal]\nname = \"Reemplazo de verano\"\nrole = \"agent\"\n";

/// The web listener of a deployment, served by this process until dropped.
struct Server {
    port: u16,
    store: Store,
    runtime: tokio::runtime::Runtime,
}

impl Drop for Server {
    fn drop(&mut self) {
        let store = self.store.clone();
        self.runtime.block_on(async move { store.close().await });
    }
}

fn serve(config_file: &Path) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = Config::load(Sources {
        file: Some(config_file.to_path_buf()),
        env: Vec::new(),
    })
    .unwrap();
    let (port, store) = runtime.block_on(async {
        let store = Store::open(&config.database.url, 4).await.unwrap();
        let config = Arc::new(config);
        let live = buzon::live::Live::load(config.clone(), &store)
            .await
            .unwrap();
        let app = buzon::web::App::new(config, store.clone(), Arc::new(live)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(buzon::web::serve(listener, app));
        (port, store)
    });
    Server {
        port,
        store,
        runtime,
    }
}

impl Server {
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Accept", "application/json")];
        if let Some(a) = auth.as_deref() {
            headers.push(("Authorization", a));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        http::request(self.port, method, path, &headers, &body)
    }

    fn get(&self, path: &str, token: &str) -> (u16, Value) {
        json_of(self.call("GET", path, Some(token), None))
    }

    fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        json_of(self.call("POST", path, Some(token), Some(body)))
    }
}

fn json_of(r: Response) -> (u16, Value) {
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{} {}",
        r.status,
        r.body
    );
    let v = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    (r.status, v)
}

/// The stable code of an error answer, checking its shape and that the
/// message is there for people.
fn code(v: &Value) -> &str {
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("{v}"))
}

/// `buzon token create ARGS`: the token, alone on the last line.
fn token(d: &Deployment, args: &[&str]) -> String {
    let mut all = vec!["token", "create"];
    all.extend(args);
    let out = d.ok(&all);
    let last = out.lines().last().unwrap().to_string();
    assert!(
        last.starts_with("buzon_") && last.len() == 70,
        "the token alone on the last line: {out}"
    );
    assert_eq!(out.matches(&last).count(), 1, "printed once: {out}");
    last
}

fn mail(d: &Deployment, mailbox: &str, name: &str, subject: &str, body: &str) -> String {
    let path = d.dir.path().join(format!("{name}.eml"));
    let text = format!(
        "From: Cliente {name} <{name}@cliente.example>\r\nTo: {mailbox}@generafactoring.example\r\n\
         Subject: {subject}\r\nMessage-ID: <{name}@cliente.example>\r\n\
         Date: Mon, 7 Dec 2026 10:00:00 -0300\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    std::fs::write(&path, text).unwrap();
    ticket_numbers(&d.ingest(mailbox, &path))[0].clone()
}

/// Every time in the JSON is RFC 3339 UTC with milliseconds.
fn is_iso_ms(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T' && s.as_bytes()[19] == b'.'
    })
}

fn scripts_work_tickets_through_the_api(backend: Backend) {
    let d = Deployment::with_extra(backend, PEOPLE);
    // Finanzas' tickets go to Alonso (the mailbox's owner); Servicio al
    // cliente's to nobody.
    let alonso_s = mail(
        &d,
        "finanzas",
        "rescate",
        "Rescate de fondos de marzo",
        "Necesito el estado de mi rescate.",
    );
    let unowned = mail(
        &d,
        "servicioalcliente",
        "pedido",
        "Consulta por el pedido N° 75321",
        "¿Cuándo llega el pedido 75321?",
    );
    let alonso = token(&d, &["alonso"]);
    let milagros = token(&d, &["Milagros Muñoz", "--expires", "30"]);
    let temporal = token(&d, &["temporal"]);
    let admin = token(&d, &["supervisora"]);
    let server = serve(&d.config);

    // No token, a bad one, another scheme: 401 with the JSON error.
    let r = server.call("GET", "/api/v1/tickets", None, None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"buzon\""));
    assert_eq!(code(&json_of(r).1), "unauthorized");
    let (status, v) = server.get("/api/v1/tickets", "buzon_0000");
    assert_eq!((status, code(&v)), (401, "unauthorized"));
    let basic = http::request(
        server.port,
        "GET",
        "/api/v1/tickets",
        &[("Authorization", &format!("Basic {alonso}"))],
        "",
    );
    assert_eq!(basic.status, 401);

    // A signed-in browser's cookie does not open the API (no CSRF there).
    let passwd = d
        .cmd()
        .args(["passwd", "milagros"])
        .write_stdin("clave-de-milagros\n")
        .output()
        .unwrap();
    assert!(passwd.status.success());
    let form = http::request(server.port, "GET", "/login", &[], "");
    let form_cookie = form.cookie("buzon_login").expect("the login form's cookie");
    let csrf = form
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the login form's token")
        .to_string();
    let login = http::request(
        server.port,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &form_cookie),
        ],
        &http::form(&[
            ("username", "milagros"),
            ("password", "clave-de-milagros"),
            ("csrf", &csrf),
        ]),
    );
    let cookie = login.cookie("buzon_session").expect("a session");
    let r = http::request(
        server.port,
        "GET",
        "/api/v1/tickets",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = http::request(
        server.port,
        "POST",
        &format!("/api/v1/tickets/{unowned}/take"),
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        "{}",
    );
    assert_eq!(r.status, 401, "{}", r.body);

    // The list: in progress by default, the tray's filters and search.
    let (status, v) = server.get("/api/v1/tickets", &milagros);
    assert_eq!(status, 200, "{v}");
    let numbers = |v: &Value| -> Vec<String> {
        v["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["number"].as_str().unwrap().to_string())
            .collect()
    };
    let mut all = numbers(&v);
    all.sort();
    let mut both = vec![alonso_s.clone(), unowned.clone()];
    both.sort();
    assert_eq!(all, both);
    assert_eq!(
        (v["page"].clone(), v["next_page"].clone()),
        (json!(1), Value::Null)
    );
    assert!(is_iso_ms(&v["tickets"][0]["created_at"]), "{v}");
    let list = |q: &str, t: &str| numbers(&server.get(&format!("/api/v1/tickets?{q}"), t).1);
    assert_eq!(list("buzon=finanzas", &milagros), [alonso_s.as_str()]);
    assert_eq!(list("responsable=mios", &alonso), [alonso_s.as_str()]);
    assert_eq!(list("responsable=mios", &milagros), Vec::<String>::new());
    assert_eq!(list("q=75321", &milagros), [unowned.as_str()]);
    assert_eq!(
        list(&format!("q={alonso_s}"), &milagros),
        [alonso_s.as_str()]
    );
    assert_eq!(list("prioridad=high", &milagros), [alonso_s.as_str()]);
    assert_eq!(list("medio=phone", &milagros), Vec::<String>::new());
    let (status, v) = server.get(
        "/api/v1/tickets?estado=cerrado&prioridad=altisima",
        &milagros,
    );
    assert_eq!((status, code(&v)), (422, "invalid"));
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("estado 'cerrado'") && message.contains("prioridad 'altisima'"),
        "every problem at once: {message}"
    );

    // One ticket: fields, keys, messages, history, as `tickets show`.
    let (status, v) = server.get(&format!("/api/v1/tickets/{unowned}"), &milagros);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ticket"]["subject"], "Consulta por el pedido N° 75321");
    assert_eq!(
        v["messages"][0]["body_text"].as_str().map(str::trim),
        Some("¿Cuándo llega el pedido 75321?")
    );
    assert!(!v["events"].as_array().unwrap().is_empty());
    assert!(
        is_iso_ms(&v["ticket"]["created_at"]) && is_iso_ms(&v["events"][0]["at"]),
        "{v}"
    );
    let cli = d.show_json(&unowned);
    assert_eq!(
        v, cli,
        "the API and `tickets show --format json` say the same"
    );
    let (status, v) = server.get("/api/v1/tickets/T-999", &milagros);
    assert_eq!((status, code(&v)), (404, "not_found"));

    // An agent may not close someone else's ticket: 403, nothing changes.
    let close = |t: &str, n: &str| {
        server.post(
            &format!("/api/v1/tickets/{n}/close"),
            t,
            json!({ "outcome": "success", "note": "Rescate pagado." }),
        )
    };
    let (status, v) = close(&milagros, &alonso_s);
    assert_eq!((status, code(&v)), (403, "forbidden"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("está a cargo de Alonso Pérez"),
        "{v}"
    );
    assert_eq!(d.show_json(&alonso_s)["ticket"]["state"], "new");
    // She may comment on it.
    let (status, v) = server.post(
        &format!("/api/v1/tickets/{alonso_s}/comment"),
        &milagros,
        json!({ "text": "El cliente llamó de nuevo." }),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["changes"][0]["change"], "commented");
    // Its owner closes it: the change, the closing mail queued.
    let (status, v) = close(&alonso, &alonso_s);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["number"], alonso_s.as_str());
    assert_eq!(
        v["changes"],
        json!([{ "change": "closed", "outcome": "success" }])
    );
    assert!(
        v["queued"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["kind"] == "closing" && q["to"] == json!(["rescate@cliente.example"])),
        "{v}"
    );
    let shown = d.show_json(&alonso_s);
    assert_eq!(
        (
            shown["ticket"]["state"].as_str(),
            shown["ticket"]["outcome"].as_str()
        ),
        (Some("done"), Some("success"))
    );
    assert!(
        d.events(&alonso_s, "actor")
            .iter()
            .any(|(k, a)| k == "closed" && a == "agent:alonso")
    );
    // Bad bodies are refused with the reason.
    let (status, v) = server.post(
        &format!("/api/v1/tickets/{unowned}/state"),
        &admin,
        json!({ "state": "cerrado" }),
    );
    assert_eq!((status, code(&v)), (422, "invalid"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("waiting_on_contact"),
        "{v}"
    );
    let (status, v) = server.post(
        &format!("/api/v1/tickets/{unowned}/comment"),
        &admin,
        json!({ "texto": "typo" }),
    );
    assert_eq!((status, code(&v)), (422, "invalid"), "{v}");
    // Taking the unowned one, then moving a deadline in local time.
    let (status, v) = server.post(
        &format!("/api/v1/tickets/{unowned}/take"),
        &milagros,
        json!({}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["changes"][0],
        json!({ "change": "owner", "before": null, "after": "milagros" })
    );
    let (status, v) = server.post(
        &format!("/api/v1/tickets/{unowned}/due"),
        &milagros,
        json!({ "at": "2026-12-10 18:00" }),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["changes"][0]["at"], "2026-12-10T21:00:00.000Z");

    // A reply, written or from a template; one of the two.
    let (status, v) = server.post(
        &format!("/api/v1/tickets/{unowned}/reply"),
        &milagros,
        json!({ "text": "Su pedido llega el lunes." }),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["queued"][0]["kind"], "reply");
    assert_eq!(v["queued"][0]["to"], json!(["pedido@cliente.example"]));
    let (status, v) = server.post(
        &format!("/api/v1/tickets/{unowned}/update"),
        &milagros,
        json!({ "template": "no-existe" }),
    );
    assert_eq!((status, code(&v)), (422, "invalid"), "{v}");
    let (status, v) = server.post(
        &format!("/api/v1/tickets/{unowned}/update"),
        &milagros,
        json!({ "text": "a", "template": "b" }),
    );
    assert_eq!((status, code(&v)), (422, "invalid"), "{v}");

    // A call written down by hand: 201, where it is, routed like mail.
    let r = server.call(
        "POST",
        "/api/v1/tickets",
        Some(&alonso),
        Some(json!({
            "channel": "phone", "mailbox": "finanzas", "name": "Inés Carrasco",
            "subject": "Llamó por su rescate", "body": "Pide el estado del rescate de marzo.",
        })),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.header("location").unwrap().to_string();
    let (_, v) = json_of(r);
    assert_eq!(
        location,
        format!("/api/v1/tickets/{}", v["number"].as_str().unwrap())
    );
    assert_eq!(v["changes"][0]["change"], "created");
    assert_eq!(v["changes"][0]["channel"], "phone");
    let (status, shown) = server.get(&location, &alonso);
    assert_eq!(status, 200);
    assert_eq!(shown["ticket"]["subject"], "Llamó por su rescate");
    assert_eq!(shown["ticket"]["pipeline"], "Finanzas");
    let (status, v) = server.post(
        "/api/v1/tickets",
        &alonso,
        json!({ "subject": "", "body": "x" }),
    );
    assert_eq!((status, code(&v)), (422, "invalid"), "{v}");

    // Revoked, expired, or of someone no longer in [people]: 401.
    let listed = d.ok(&["token", "list", "milagros"]);
    assert!(
        !listed.contains(&milagros) && listed.contains(&milagros[..12]),
        "{listed}"
    );
    let id = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(d.ok(&["token", "revoke", &id]).contains("revocado"));
    let (status, _) = server.get("/api/v1/tickets", &milagros);
    assert_eq!(status, 401);
    assert!(d.ok(&["token", "list"]).contains("revocado"));
    assert!(!d.run(&["token", "revoke", &id]).status.success(), "twice");
    let (expired, record) =
        buzon::web::issue_token("alonso", now_ms() - 10_000, Some(now_ms() - 1)).unwrap();
    let store = server.store.clone();
    server
        .runtime
        .block_on(async move { store.create_token(&record).await.unwrap() });
    assert_eq!(server.get("/api/v1/tickets", &expired).0, 401);
    assert_eq!(server.get("/api/v1/tickets", &temporal).0, 200);
    let without = d.dir.path().join("sin-temporal.toml");
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &without,
        text.replace(
            "[people.temporal]\nname = \"Reemplazo de verano\"\nrole = \"agent\"\n",
            "",
        ),
    )
    .unwrap();
    let later = serve(&without);
    assert_eq!(later.get("/api/v1/tickets", &temporal).0, 401);
    assert_eq!(later.get("/api/v1/tickets", &alonso).0, 200);
    drop(later);
    // Only the token's hash is kept.
    let url = d.database_url.clone();
    let store = server.store.clone();
    let kept = server
        .runtime
        .block_on(async move { store.tokens(None).await.unwrap() });
    assert_eq!(kept.len(), 5, "{url}");
    assert!(kept.iter().all(|t| t.hint.len() == 12));
    let raw = if backend == Backend::Sqlite {
        std::fs::read(url.trim_start_matches("sqlite:")).unwrap()
    } else {
        Vec::new()
    };
    assert!(!raw.windows(alonso.len()).any(|w| w == alonso.as_bytes()));

    // Wrong tokens are counted per address: the tenth says so (429);
    // a good token still works.
    let mut last = 0;
    for _ in 0..10 {
        last = server.get("/api/v1/tickets", "buzon_adivinado").0;
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429);
    assert_eq!(server.get("/api/v1/tickets", &alonso).0, 200);
}

/// The document lists every route, and every route it lists answers.
fn the_openapi_document_matches_the_routes(backend: Backend) {
    let d = Deployment::with_extra(backend, PEOPLE);
    let n = mail(
        &d,
        "servicioalcliente",
        "doc",
        "Prueba del documento",
        "Hola.",
    );
    let admin = token(&d, &["supervisora"]);
    let server = serve(&d.config);
    let r = server.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(r.status, 200, "public, like any API description");
    let (_, doc) = json_of(r);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = Vec::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()));
            operations.push((method.to_uppercase(), path.replace("{number}", &n)));
        }
    }
    let mut expected: Vec<String> = [
        "GET /tickets",
        "POST /tickets",
        "GET /tickets/{number}",
        "GET /openapi.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for verb in [
        "take", "assign", "state", "reopen", "comment", "reply", "update", "request", "received",
        "close", "classify", "due", "internal",
    ] {
        expected.push(format!("POST /tickets/{{number}}/{verb}"));
    }
    let mut listed: Vec<String> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {p}", m.to_uppercase()))
        })
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    // Each one is served: a known route answers something other than
    // "no such route" (a strict body it does not get is a 422).
    for (method, path) in operations {
        let body = (method == "POST").then(|| json!({ "unknown_field": true }));
        let r = server.call(&method, &format!("/api/v1{path}"), Some(&admin), body);
        assert!(
            r.status != 404 && r.status != 405,
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
    }
    // Errors answered before a handler are JSON too: a body over the
    // limit is refused on its announced length, before it is sent.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        s,
        "POST /api/v1/tickets/{n}/comment HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Authorization: Bearer {admin}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        3 << 20
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\": \"too_large\""), "{answer}");
    let (status, v) = server.get("/api/v1/tickets/%FF%FE", &admin);
    assert_eq!((status, code(&v)), (400, "bad_request"), "{v}");
    // And what it does not list is not served.
    let (status, v) = server.get("/api/v1/tickets/1/borrar", &admin);
    assert_eq!((status, code(&v)), (404, "not_found"));
    let r = server.call(
        "DELETE",
        &format!("/api/v1/tickets/{n}"),
        Some(&admin),
        None,
    );
    assert_eq!(
        (r.status, code(&json_of(r).1).to_string()),
        (405, "method_not_allowed".into())
    );
}

on_both_backends!(
    scripts_work_tickets_through_the_api,
    the_openapi_document_matches_the_routes,
);
