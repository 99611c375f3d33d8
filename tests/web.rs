//! The agents' workspace against the real thing: `buzon run` serving the
//! web on loopback, a real Chromium over WebDriver, the harness's Postfix
//! and Dovecot for the mail a reply sends, SQLite and PostgreSQL.
//!
//! Screenshots of the tray and a ticket are saved under the target
//! directory (`tmp/web-screenshots/`), to look at.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use buzon::parse::parse;
use common::http::{self, form};
use common::inbox::{Stack, tag};
use common::webdriver::Browser;
use common::{Backend, Deployment, SUPERVISOR, free_port};

const RULES: &str = r#"
[labels.state]
new = "Nueva"
open = "En ejecución"
waiting_on_contact = "Esperando al cliente"
waiting_on_us = "Respondida por el cliente"
done = "Finalizada"

[[rule]]
name = "pedido"
when.subject_or_body.regex = 'pedido\s*(?:n[°º.]?\s*)?(?P<pedido>\d{5})'
tags = ["pedido"]
"#;

const TEMPLATE: &str = "Subject: no se usa\n\nEstimado(a) {{ name }}:\n\nRevisamos su pedido; le escribimos desde el ticket {{ ticket }}.\n\nSaludos,\n{{ team }}\n";

/// A team whose shared mailbox is `soporte+TAG@example.test`, sending
/// through the harness's Postfix, serving the web on `port`.
fn deployment(backend: Backend, t: &str, port: u16, health: u16) -> Deployment {
    let stack = Stack::from_env();
    let d = Deployment::new(backend);
    let rules = d.dir.path().join("rules");
    let templates = d.dir.path().join("templates");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(rules.join("10-soporte.toml"), RULES).unwrap();
    std::fs::write(templates.join("revision-pedido.txt"), TEMPLATE).unwrap();
    let text = format!(
        "[deployment]\nname = \"Soporte Tu Patrimonio\"\ntime_zone = \"America/Santiago\"\n\
         ticket_prefix = \"TP-\"\nour_domains = [\"tupatrimonio.example\"]\n\n\
         [database]\nurl = \"{}\"\n\n\
         [outbox]\nretry_schedule = [\"1s\"]\n\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\n\
         [rules]\ndir = \"{}\"\n\n[templates]\ndir = \"{}\"\n\n\
         [web]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [daemon]\noutbox_poll_seconds = 1\nlisten = \"127.0.0.1:{health}\"\n\n\
         [mailboxes.soporte]\naddress = \"soporte+{t}@example.test\"\n\
         display_name = \"Soporte Tu Patrimonio\"\npipeline = \"Soporte\"\nowner = \"alonso\"\n\n\
         [mailboxes.finanzas]\naddress = \"finanzas+{t}@example.test\"\npipeline = \"Finanzas\"\nowner = \"milagros\"\n\n\
         [people.alonso]\nname = \"Alonso Pérez\"\nrole = \"agent\"\n\n\
         [people.milagros]\nname = \"Milagros Muñoz\"\nrole = \"agent\"\n\n{SUPERVISOR}",
        d.database_url,
        stack.smtp_port,
        rules.display(),
        templates.display(),
    );
    std::fs::write(&d.config, text).unwrap();
    d
}

/// `buzon run`, stopped when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(d: &Deployment, port: u16) -> Daemon {
    let log = std::fs::File::create(d.dir.path().join("run.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_buzon"))
        .env_remove("BUZON_DATABASE_URL")
        .env_remove("BUZON_OUTBOX_DIR")
        .env("BUZON_LOG", "warn,buzon::web=info")
        .arg("--config")
        .arg(&d.config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the web did not start: {}",
            std::fs::read_to_string(d.dir.path().join("run.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon(child)
}

fn passwd(d: &Deployment, who: &str, password: &str) {
    let out = d
        .cmd()
        .args(["passwd", who])
        .write_stdin(format!("{password}\n"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mail_file(d: &Deployment, name: &str, text: &str) -> PathBuf {
    let path = d.dir.path().join(name);
    std::fs::write(&path, text.replace('\n', "\r\n")).unwrap();
    path
}

fn customer_mail(d: &Deployment, t: &str) -> String {
    let file = mail_file(
        d,
        "pedido.eml",
        &format!(
            "From: Ana Pérez <customer+{t}@example.test>\nTo: soporte+{t}@example.test\n\
             Subject: Documento observado por Notaría - Pedido N° 75321\n\
             Message-ID: <{t}-1@cliente.example>\nDate: Mon, 7 Dec 2026 10:00:00 -0300\n\
             Content-Type: text/plain; charset=utf-8\n\nHola, la notaría observó mi documento.\n"
        ),
    );
    number(&d.ingest("soporte", &file))
}

/// The first ticket number (`TP-N`) in a command's output.
fn number(out: &str) -> String {
    out.split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .find(|w| w.starts_with("TP-"))
        .unwrap_or_else(|| panic!("no ticket in {out}"))
        .to_string()
}

/// A mail whose every part tries to run script in the page.
fn hostile_mail(d: &Deployment, t: &str) -> String {
    let file = mail_file(
        d,
        "hostil.eml",
        &format!(
            "From: \"<img src=x onerror=window.pwned=1>\" <hostil+{t}@example.test>\n\
             To: finanzas+{t}@example.test\n\
             Subject: <script>window.pwned=2</script> Factura urgente\n\
             Message-ID: <{t}-evil@cliente.example>\nDate: Mon, 7 Dec 2026 11:00:00 -0300\n\
             MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n\
             --b\nContent-Type: multipart/alternative; boundary=\"a\"\n\n\
             --a\nContent-Type: text/plain; charset=utf-8\n\n\
             Vea <img src=x onerror=\"window.pwned=3\"> y <a href=\"javascript:window.pwned=4\">aquí</a>\n\
             --a\nContent-Type: text/html; charset=utf-8\n\n\
             <p>Hola<script>window.pwned=5</script><img src=\"https://tracker.example/x.png\" onerror=\"window.pwned=6\"></p>\n\
             --a--\n\
             --b\nContent-Type: application/pdf; name=\"<img src=x onerror=window.pwned=7>.pdf\"\n\
             Content-Disposition: attachment; filename=\"<img src=x onerror=window.pwned=7>.pdf\"\n\
             Content-Transfer-Encoding: base64\n\nJVBERi0xLjQKJcOkw7zDtsOfCg==\n--b--\n"
        ),
    );
    number(&d.ingest("finanzas", &file))
}

fn shots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots")
}

fn base(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn wait_until(b: &Browser, what: &str, ok: impl Fn(&Browser) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok(b) {
        assert!(
            Instant::now() < deadline,
            "{what}: still not so on {}",
            b.url()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_in(b: &Browser, port: u16, who: &str, password: &str) {
    b.go(&format!("{}/login", base(port)));
    b.type_in("#username", who);
    b.type_in("#password", password);
    b.click("#login");
    wait_until(b, "signed in", |b| b.find("#me").is_some());
}

/// The whole day of an agent, in a real browser.
fn an_agent_works_the_tray_in_a_browser(backend: Backend) {
    let stack = Stack::from_env();
    let t = tag("web");
    let port = free_port();
    let d = deployment(backend, &t, port, free_port());
    let n = customer_mail(&d, &t);
    let evil = hostile_mail(&d, &t);
    passwd(&d, "alonso", "clave-de-alonso");
    let _daemon = start(&d, port);
    let b = Browser::start();

    log_in(&b, port, "Alonso Pérez", "clave-de-alonso");
    assert!(b.url().ends_with('/'), "{}", b.url());
    // The tray: both tickets, states in the team's words.
    let tray = b.text("#tray");
    assert!(tray.contains(&n) && tray.contains(&evil), "{tray}");
    assert!(tray.contains("Nueva"), "{tray}");
    assert!(
        tray.contains("<script>window.pwned=2</script> Factura urgente"),
        "{tray}"
    );
    b.screenshot(&shots().join(format!("tray-{backend:?}.png")));

    // Filter by owner and state, then search by the order number.
    b.go(&format!("{}/?responsable=milagros&estado=new", base(port)));
    let mine = b.text("#tray");
    assert!(mine.contains(&evil) && !mine.contains(&n), "{mine}");
    b.go(&format!("{}/", base(port)));
    b.type_in("#q", "75321");
    b.click("#buscar");
    wait_until(&b, "search results", |b| b.url().contains("q=75321"));
    let found = b.text("#tray");
    assert!(found.contains(&n) && !found.contains(&evil), "{found}");
    // Words of the mail, typed without accents: the tray says where they
    // were found, the words around them marked.
    b.go(&format!("{}/?q=%22notaria+observo%22", base(port)));
    let found = b.text("#tray");
    assert!(found.contains(&n) && !found.contains(&evil), "{found}");
    let hit = b.text(".found");
    assert!(hit.contains("En correo recibido:"), "{hit}");
    assert!(hit.contains("la notaría observó mi documento"), "{hit}");
    assert_eq!(b.text(".found mark"), "notaría");
    b.screenshot(&shots().join(format!("search-{backend:?}.png")));

    // Open the ticket and answer with a template.
    b.click(&format!("a[href='/tickets/{n}']"));
    wait_until(&b, "the ticket", |b| b.find("#number").is_some());
    assert_eq!(b.text("#number"), n);
    b.click("#plantilla option[value='revision-pedido']");
    b.click("#use-template");
    wait_until(&b, "the template filled in", |b| {
        b.try_property("#reply-text", "value")
            .is_some_and(|v| v.contains("Revisamos su pedido"))
    });
    b.type_in("#reply-text", "Adjuntaremos el documento corregido mañana.");
    b.screenshot(&shots().join(format!("ticket-{backend:?}.png")));
    b.click("#reply");
    wait_until(&b, "the reply sent", |b| b.find("#notice").is_some());
    assert!(b.text("#notice").contains("Respuesta enviada"));
    assert_eq!(b.text("#state"), "Esperando al cliente");
    // The customer receives it over SMTP, threaded, with the ticket's tag.
    let got = stack.wait_for(
        "customer",
        &format!("customer+{t}@example.test"),
        2,
        Duration::from_secs(15),
    );
    let reply = got
        .iter()
        .map(|raw| parse(raw, 1 << 22).unwrap())
        .find(|m| m.text.contains("Revisamos su pedido"))
        .expect("the reply arrives in the customer's mailbox");
    assert!(
        reply.subject.contains(&format!("[#{n}]")),
        "{}",
        reply.subject
    );
    assert!(
        reply.subject.starts_with("Re: Documento observado"),
        "{}",
        reply.subject
    );
    assert!(
        reply.text.contains("Adjuntaremos el documento corregido"),
        "{}",
        reply.text
    );
    assert!(reply.references.contains(&format!("{t}-1@cliente.example")));
    assert!(
        reply.text.contains(&n),
        "the template was filled in: {}",
        reply.text
    );

    // Close it with an outcome.
    b.click("#outcome-success");
    b.type_in("#close-note", "Documento corregido y enviado a la notaría.");
    b.click("#close");
    wait_until(&b, "closed", |b| {
        b.try_text("#state").as_deref() == Some("Finalizada")
    });
    assert!(
        b.find("#close").is_none(),
        "a closed ticket has no close button"
    );

    // Milagros's ticket: Alonso may read, comment and write, not close.
    b.go(&format!("{}/tickets/{evil}", base(port)));
    wait_until(&b, "the other ticket", |b| b.find("#number").is_some());
    assert!(b.find("#comment").is_some());
    assert!(b.find("#close").is_none() && b.find("#assign").is_none());
    // Everything the mail carried is inert text.
    assert_eq!(b.script("return typeof window.pwned;"), "undefined");
    assert!(
        b.text("#subject")
            .contains("<script>window.pwned=2</script>")
    );
    assert_eq!(
        b.script("return document.querySelectorAll('main script, main img, main a[href^=javascript]').length;"),
        0
    );
    b.screenshot(&shots().join(format!("hostile-{backend:?}.png")));
    // A forged POST for the button that was not shown is refused.
    let cookie = b.cookie("buzon_session").expect("the session cookie");
    let csrf = b
        .script("return document.querySelector('input[name=csrf]').value;")
        .as_str()
        .unwrap()
        .to_string();
    let forged = http::request(
        port,
        "POST",
        &format!("/tickets/{evil}/cerrar"),
        &[
            ("Cookie", &format!("buzon_session={cookie}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form(&[("csrf", &csrf), ("resultado", "exito")]),
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(
        forged.body.contains("está a cargo de Milagros Muñoz"),
        "{}",
        forged.body
    );
    assert_ne!(d.show_json(&evil)["ticket"]["state"], "done");

    // On a phone the tray still reads.
    b.resize(390, 844);
    b.go(&format!("{}/", base(port)));
    b.screenshot(&shots().join(format!("tray-phone-{backend:?}.png")));
    b.resize(1280, 1000);

    // Log out: the session is over.
    b.click("#logout");
    wait_until(&b, "signed out", |b| b.url().ends_with("/login"));
    let after = http::request(
        port,
        "GET",
        "/",
        &[("Cookie", &format!("buzon_session={cookie}"))],
        "",
    );
    assert_eq!(after.status, 303);
    assert_eq!(after.header("location"), Some("/login"));
}

/// The HTTP rules, request by request.
fn the_web_refuses_what_it_must(backend: Backend) {
    let t = tag("http");
    let port = free_port();
    let health = free_port();
    let d = deployment(backend, &t, port, health);
    let evil = hostile_mail(&d, &t);
    passwd(&d, "milagros", "clave-de-milagros");
    let _daemon = start(&d, port);
    let get =
        |path: &str, cookie: &str| http::request(port, "GET", path, &[("Cookie", cookie)], "");
    // No session: to the login page.
    let r = get("/", "");
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    let r = get(&format!("/tickets/{evil}"), "buzon_session=forged");
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    // The login form and every page carry the safety headers.
    let r = get("/login", "");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("name=\"username\"") && r.body.contains("name=\"password\""));
    let csp = r.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));

    // The login form carries a token, also in a cookie only /login gets.
    let login_form = || {
        let page = get("/login", "");
        let set = page.header("set-cookie").unwrap_or("").to_string();
        assert!(
            set.contains("HttpOnly")
                && set.contains("SameSite=Strict")
                && set.contains("Path=/login"),
            "{set}"
        );
        let cookie = page.cookie("buzon_login").expect("the login form's cookie");
        let token = page
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("the login form's token")
            .to_string();
        (cookie, token)
    };
    let post_login = |cookie: &str, token: Option<&str>, user: &str, password: &str| {
        let mut fields = vec![("username", user), ("password", password)];
        if let Some(t) = token {
            fields.push(("csrf", t));
        }
        http::request(
            port,
            "POST",
            "/login",
            &[
                ("Cookie", cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &form(&fields),
        )
    };
    let login = |user: &str, password: &str| {
        let (cookie, token) = login_form();
        post_login(&cookie, Some(&token), user, password)
    };
    // A login posted without the form's token, or with another, is refused
    // before the password is even looked at (a cross-site login).
    let (cookie, token) = login_form();
    for (cookie, token) in [
        ("", Some(token.as_str())),
        (cookie.as_str(), None),
        (cookie.as_str(), Some("0000")),
        (cookie.as_str(), Some(&token[1..])),
    ] {
        let r = post_login(cookie, token, "milagros", "clave-de-milagros");
        assert_eq!(r.status, 403, "{cookie} {token:?}: {}", r.body);
        assert!(r.cookie("buzon_session").is_none());
        assert!(
            r.body.contains("El formulario de ingreso venció"),
            "{}",
            r.body
        );
    }
    // A wrong password.
    let r = login("milagros", "otra-clave");
    assert_eq!(r.status, 401);
    assert!(
        r.body.contains("Usuario o contraseña incorrectos"),
        "{}",
        r.body
    );
    assert!(r.cookie("buzon_session").is_none());
    // The right one: a session cookie, HttpOnly and SameSite=Lax.
    let r = login("MILAGROS", "clave-de-milagros");
    assert_eq!((r.status, r.header("location")), (303, Some("/")));
    let set = r
        .headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let cookie = r.cookie("buzon_session").unwrap();
    let again = login("milagros", "clave-de-milagros")
        .cookie("buzon_session")
        .unwrap();
    assert_ne!(cookie, again, "a new login gets a new session id");

    // A POST without its CSRF token changes nothing.
    let post = |path: &str, body: &str| {
        http::request(
            port,
            "POST",
            path,
            &[
                ("Cookie", cookie.as_str()),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body,
        )
    };
    let r = post(
        &format!("/tickets/{evil}/comentar"),
        &form(&[("texto", "sin token")]),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post(
        &format!("/tickets/{evil}/comentar"),
        &form(&[("texto", "sin token"), ("csrf", "0000")]),
    );
    assert_eq!(r.status, 403);
    assert!(!d.show_json(&evil).to_string().contains("sin token"));

    // The attachment downloads as a file, never rendered.
    let page = get(&format!("/tickets/{evil}"), &cookie);
    assert_eq!(page.status, 200);
    let body = page.body.replace("&#x2f;", "/");
    let href = body
        .split("href=\"")
        .find(|s| s.contains("/attachments/"))
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("an attachment link in {}", page.body))
        .to_string();
    let file = get(&href, &cookie);
    assert_eq!(file.status, 200);
    assert_eq!(file.header("content-type"), Some("application/pdf"));
    let disposition = file.header("content-disposition").unwrap_or("");
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        !disposition.contains('<') || disposition.contains("filename*="),
        "{disposition}"
    );
    assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
    assert!(file.bytes.starts_with(b"%PDF-1.4"));

    // Failed logins are limited per person: the right password is refused
    // after ten wrong ones, with a clear message.
    for _ in 0..9 {
        assert_eq!(login("milagros", "mal").status, 401);
    }
    let r = login("milagros", "clave-de-milagros");
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.body.contains("Demasiados intentos fallidos"),
        "{}",
        r.body
    );
    assert!(r.cookie("buzon_session").is_none());

    // Seed 001's filters live in the URL: area, channel, search.
    let tray = |q: &str| get(&format!("/?{q}"), &cookie).body;
    assert!(tray("area=Legal").contains("No hay tickets"));
    assert!(tray("medio=email").contains(&format!(">{evil}<")));
    assert!(tray("medio=phone").contains("No hay tickets"));
    assert!(
        tray("q=hostil%2B").contains(&format!(">{evil}<")),
        "search by address"
    );
    // A search's excerpt is the mail's text, escaped; only the marks are
    // the page's.
    let found = tray("q=onerror");
    assert!(found.contains("<mark>onerror</mark>"), "{found}");
    assert!(found.contains("&lt;img src=x"), "{found}");
    assert!(!found.contains("<img src=x"), "{found}");

    // What a mail carried is escaped in the page as served.
    assert!(
        page.body
            .contains("&lt;script&gt;window.pwned=2&lt;&#x2f;script&gt;"),
        "{}",
        page.body
    );
    for raw in [
        "<script>window",
        "<img src=x",
        "href=\"javascript:",
        "tracker.example",
    ] {
        assert!(!page.body.contains(raw), "{raw} in the page");
    }

    // /healthz and /metrics answer GET only.
    assert_eq!(
        http::request(health, "GET", "/metrics", &[], "").status,
        200
    );
    assert_eq!(
        http::request(health, "POST", "/metrics", &[], "").status,
        405
    );
    assert_eq!(
        http::request(health, "POST", "/healthz", &[], "").status,
        405
    );

    // Logging out ends the session.
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    // A call written down in "Nuevo ingreso" becomes a ticket like `tickets new`.
    let r = post(
        "/new",
        &form(&[
            ("csrf", &csrf),
            ("canal", "phone"),
            ("buzon", "finanzas"),
            ("nombre", "Inés Carrasco"),
            ("asunto", "Llamó por su rescate"),
            ("descripcion", "Pide el estado del rescate de marzo."),
        ]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let created = r.header("location").unwrap_or("").to_string();
    assert!(created.contains("aviso=creado"), "{created}");
    let shown = get(&created, &cookie);
    assert!(
        shown.body.contains("Llamó por su rescate"),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("Ticket creado."));
    // Administration is for administrators.
    assert_eq!(get("/admin", &cookie).status, 403);

    let r = post("/logout", &form(&[("csrf", &csrf)]));
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    assert_eq!(get("/", &cookie).status, 303);
}

on_both_backends!(
    an_agent_works_the_tray_in_a_browser,
    the_web_refuses_what_it_must,
);
