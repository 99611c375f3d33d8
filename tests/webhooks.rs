//! Webhooks against a real HTTP receiver the test starts on loopback (an
//! axum server in this process): each event arrives once, in order per
//! ticket, signed; a 500 is retried; a receiver down for a while gets
//! everything when it comes back; a daemon killed with SIGKILL in the middle
//! of a delivery loses nothing (at most one repeat, with the same id); a
//! template with an error is refused with `file:line`; the README's example
//! bodies have the shapes Slack, HubSpot and Odoo document.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, Deployment, ticket_numbers};

const SECRET: &str = "s3cr3t-de-prueba";

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Hit {
    delivery: String,
    event: String,
    signature: String,
    body: String,
    json: serde_json::Value,
    /// What the receiver answered.
    status: u16,
}

#[derive(Default)]
struct Script {
    /// Status codes to answer, in order; then 200.
    answers: VecDeque<u16>,
    /// Wait this long before answering the first request (a delivery in
    /// flight when the daemon is killed).
    stall_first: Option<Duration>,
    hits: Vec<Hit>,
}

/// A real HTTP server on 127.0.0.1, on its own thread and runtime.
struct Receiver {
    port: u16,
    script: Arc<Mutex<Script>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16, script: Arc<Mutex<Script>>) -> Receiver {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let s = script.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .unwrap();
                ready_tx
                    .send(listener.local_addr().unwrap().port())
                    .unwrap();
                let app = axum::Router::new()
                    .route("/hook", axum::routing::post(hit))
                    .with_state(s);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let port = ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Receiver {
            port,
            script,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn hits(&self) -> Vec<Hit> {
        self.script.lock().unwrap().hits.clone()
    }

    fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn hit(
    axum::extract::State(script): axum::extract::State<Arc<Mutex<Script>>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (status, stall) = {
        let mut s = script.lock().unwrap();
        let status = s.answers.pop_front().unwrap_or(200);
        let stall = if s.hits.is_empty() {
            s.stall_first
        } else {
            None
        };
        s.hits.push(Hit {
            delivery: header("x-buzon-delivery"),
            event: header("x-buzon-event"),
            signature: header("x-buzon-signature"),
            json: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            body,
            status,
        });
        (status, stall)
    };
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    axum::http::StatusCode::from_u16(status).unwrap()
}

/// HMAC-SHA256 written here from RFC 2104, independently of buzon's.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// What a receiver does: `t=..,v1=..`, HMAC of "{t}.{body}", a recent t.
fn verify(hit: &Hit) {
    let (t, v1) = hit
        .signature
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("bad signature header {:?}", hit.signature));
    let expected: String = hmac_sha256(SECRET.as_bytes(), format!("{t}.{}", hit.body).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "signature of {}", hit.body);
    let age = jiff::Timestamp::now().as_second() - t.parse::<i64>().unwrap();
    assert!((0..300).contains(&age), "timestamp {t} is {age} s old");
}

/// A deployment with one endpoint at `url` for every event.
fn deployment(backend: Backend, url: &str, extra: &str) -> Deployment {
    let d = Deployment::with_extra(
        backend,
        &format!(
            "[people.camila]\nname = \"Camila Rojas\"\nrole = \"agent\"\npipelines = [\"Soporte\"]\n\n\
             [daemon]\nlisten = \"\"\noutbox_poll_seconds = 1\n\n\
             [web]\npublic_url = \"https://soporte.example.cl/\"\n\n\
             [[webhooks]]\nname = \"prueba\"\nurl = \"{url}\"\n\
             events = [\"ticket.created\", \"ticket.updated\", \"ticket.closed\", \"message.received\", \"message.sent\", \"deadline.missed\"]\n\
             secret_file = \"hook.secret\"\nretry_schedule = [\"1s\"]\ntimeout = \"2s\"\n{extra}\n"
        ),
    );
    std::fs::write(d.dir.path().join("hook.secret"), format!("{SECRET}\n")).unwrap();
    d
}

fn mail(
    d: &Deployment,
    name: &str,
    from: &str,
    subject: &str,
    reply_to: Option<&str>,
) -> std::path::PathBuf {
    let refs = reply_to
        .map(|id| format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n"))
        .unwrap_or_default();
    let raw = format!(
        "From: Cliente <{from}>\r\nTo: soporte@tupatrimonio.example\r\nSubject: {subject}\r\n\
         Message-ID: <{name}@cliente.example>\r\n{refs}Date: Sat, 05 Dec 2026 10:00:00 -0300\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nHola, \"necesito\" ayuda.\r\nGracias\r\n"
    );
    let path = d.dir.path().join(format!("{name}.eml"));
    std::fs::write(&path, raw).unwrap();
    path
}

fn ingest(d: &Deployment, file: &Path) -> String {
    ticket_numbers(&d.ingest("soporte", file))[0].clone()
}

fn list(d: &Deployment, failed: bool) -> Vec<serde_json::Value> {
    let mut args = vec!["webhooks", "list", "--format", "json"];
    if failed {
        args.push("--failed");
    }
    let v: serde_json::Value = serde_json::from_str(&d.ok(&args)).unwrap();
    v["webhooks"].as_array().unwrap().clone()
}

/// The events each ticket got, in arrival order (first arrival of each id).
fn per_ticket(hits: &[Hit]) -> BTreeMap<String, Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in hits.iter().filter(|h| h.status == 200) {
        if seen.insert(h.delivery.clone()) {
            out.entry(h.json["ticket"]["number"].as_str().unwrap().to_string())
                .or_default()
                .push(h.event.clone());
        }
    }
    out
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every kind of event of one ticket, each once, in the order they
/// happened, signed, with the documented JSON.
fn each_event_arrives_once_in_order_and_signed(backend: Backend) {
    let script = Arc::new(Mutex::new(Script::default()));
    let receiver = Receiver::start(0, script.clone());
    let d = deployment(backend, &receiver.url(), "");
    let t = ingest(
        &d,
        &mail(
            &d,
            "a1",
            "cliente@example.cl",
            "Consulta \"urgente\" sobre mi escritura",
            None,
        ),
    );
    ingest(
        &d,
        &mail(
            &d,
            "a2",
            "cliente@example.cl",
            "Re: Consulta",
            Some("a1@cliente.example"),
        ),
    );
    d.ok(&["tickets", "assign", &t, "camila"]);
    d.ok(&[
        "tickets",
        "classify",
        &t,
        "--priority",
        "high",
        "--field",
        "rut=12.345.678-9",
    ]);
    d.ok(&["tickets", "close", &t, "--outcome", "success"]);
    // A second ticket's events interleave; each ticket keeps its order.
    let u = ingest(
        &d,
        &mail(&d, "b1", "otra@example.cl", "Otra consulta", None),
    );
    // The customer writes again: the mail reopens the ticket.
    ingest(
        &d,
        &mail(
            &d,
            "a3",
            "cliente@example.cl",
            "Re: Consulta",
            Some("a1@cliente.example"),
        ),
    );
    d.ok(&["run", "--once"]);
    let hits = receiver.hits();
    assert!(hits.iter().all(|h| h.status == 200));
    for h in &hits {
        verify(h);
        assert_eq!(h.json["id"], h.delivery.as_str());
        assert_eq!(h.json["event"], h.event.as_str());
    }
    let ids: std::collections::HashSet<&str> = hits.iter().map(|h| h.delivery.as_str()).collect();
    assert_eq!(ids.len(), hits.len(), "each event once: {hits:#?}");
    let got = per_ticket(&hits);
    let events = &got[&t];
    // `ingest` delivers the acknowledgement right away (outbox.dir): it
    // left before the follow-up came; the closing mail left last.
    assert_eq!(
        *events,
        [
            "ticket.created",
            "message.sent",
            "message.received",
            "ticket.updated",
            "ticket.updated",
            "ticket.updated",
            "ticket.closed",
            "message.sent",
            "message.received",
            "ticket.updated",
        ],
    );
    assert_eq!(got[&u][0], "ticket.created");
    let of = |kind: &str| {
        hits.iter()
            .filter(|h| h.event == kind && h.json["ticket"]["number"] == t.as_str())
            .map(|h| h.json.clone())
            .collect::<Vec<_>>()
    };
    let created = &of("ticket.created")[0];
    assert_eq!(
        created["ticket"]["subject"],
        "Consulta \"urgente\" sobre mi escritura"
    );
    assert_eq!(created["ticket"]["state"], "new");
    assert_eq!(
        created["ticket"]["url"],
        format!("https://soporte.example.cl/tickets/{}", &t[2..])
    );
    assert_eq!(created["message"]["from"], "cliente@example.cl");
    assert!(
        created["message"]["text"]
            .as_str()
            .unwrap()
            .contains("\"necesito\"")
    );
    let updates = of("ticket.updated");
    assert_eq!(
        updates[0]["changes"]["owner"],
        serde_json::json!({ "from": null, "to": "camila" })
    );
    assert_eq!(updates[1]["changes"]["priority"]["to"], "high");
    assert_eq!(updates[1]["changes"]["fields"]["to"]["rut"], "12.345.678-9");
    assert_eq!(updates[2]["changes"]["state"]["to"], "done");
    assert_eq!(updates[3]["changes"]["state"]["from"], "done");
    assert_eq!(
        updates[3]["ticket"]["state"],
        updates[3]["changes"]["state"]["to"]
    );
    assert_eq!(of("ticket.closed")[0]["outcome"], "success");
    assert_eq!(of("ticket.closed")[0]["ticket"]["outcome"], "success");
    let sent = of("message.sent");
    assert!(
        sent.iter()
            .any(|s| s["message"]["kind"] == "acknowledgement"),
        "{sent:?}"
    );
    // Nothing left, nothing repeated by another run.
    assert!(list(&d, false).iter().all(|r| r["status"] == "sent"));
    d.ok(&["run", "--once"]);
    assert_eq!(receiver.hits().len(), hits.len());
    receiver.stop();
}

/// A 500 is retried on the schedule with the same delivery id; a 410 is
/// retried too and shows the endpoint failing; a 400 gives up, is listed,
/// and `webhooks retry` sends it again.
fn failures_are_retried_or_listed(backend: Backend) {
    let script = Arc::new(Mutex::new(Script {
        answers: [500, 200].into(),
        ..Script::default()
    }));
    let receiver = Receiver::start(0, script.clone());
    let d = deployment(backend, &receiver.url(), "");
    // Only the ticket's creation: the acknowledgement's message.sent would
    // come after it.
    let t = ingest(&d, &mail(&d, "r1", "cliente@example.cl", "Reintento", None));
    d.ok(&["run", "--once"]);
    let first = receiver.hits();
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0].status, 500);
    let queued = list(&d, false);
    let created = queued
        .iter()
        .find(|r| r["kind"] == "ticket.created")
        .unwrap();
    assert_eq!(created["status"], "queued");
    assert!(
        created["last_error"].as_str().unwrap().contains("500"),
        "{created}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    d.ok(&["run", "--once"]);
    let hits = receiver.hits();
    assert_eq!(hits[1].status, 200);
    assert_eq!(hits[1].delivery, hits[0].delivery, "a retry keeps its id");
    assert_eq!(hits[1].event, "ticket.created");
    assert_eq!(per_ticket(&hits)[&t][0], "ticket.created");

    // 400: given up at once, listed, retried by hand.
    script.lock().unwrap().answers = [400].into();
    d.ok(&["tickets", "comment", &t, "nota"]);
    d.ok(&["tickets", "assign", &t, "camila"]);
    d.ok(&["run", "--once"]);
    let failed = list(&d, true);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["kind"], "ticket.updated");
    let id = failed[0]["id"].as_i64().unwrap().to_string();
    let text = d.ok(&["webhooks", "list", "--failed"]);
    assert!(
        text.contains("ticket.updated") && text.contains("HTTP 400"),
        "{text}"
    );
    let out = d.ok(&["webhooks", "retry", &id]);
    assert!(out.contains("1 delivered"), "{out}");
    assert!(list(&d, true).is_empty());
    let last = receiver.hits().last().unwrap().clone();
    assert_eq!(last.delivery, failed[0]["delivery_id"].as_str().unwrap());
    receiver.stop();
}

/// The receiver is down: every first event of each ticket fails, the later
/// ones wait behind it; when it is back, everything arrives, in order.
fn a_receiver_down_for_a_while_gets_everything(backend: Backend) {
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let d = deployment(backend, &url, "");
    let mut tickets = Vec::new();
    for i in 0..3 {
        let first = format!("d{i}");
        let t = ingest(
            &d,
            &mail(
                &d,
                &first,
                &format!("c{i}@example.cl"),
                &format!("Caso {i}"),
                None,
            ),
        );
        ingest(
            &d,
            &mail(
                &d,
                &format!("d{i}r"),
                &format!("c{i}@example.cl"),
                "Re: caso",
                Some(&format!("{first}@cliente.example")),
            ),
        );
        tickets.push(t);
    }
    d.ok(&["run", "--once"]);
    let rows = list(&d, false);
    assert!(rows.iter().all(|r| r["status"] == "queued"), "{rows:?}");
    // Only the first event of each ticket was tried.
    let tried: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["attempts"].as_i64().unwrap() > 0)
        .collect();
    assert_eq!(tried.len(), 3, "{rows:?}");
    assert!(tried.iter().all(|r| r["kind"] == "ticket.created"));
    std::thread::sleep(Duration::from_millis(1100));
    d.ok(&["run", "--once"]);
    let script = Arc::new(Mutex::new(Script::default()));
    let receiver = Receiver::start(port, script);
    std::thread::sleep(Duration::from_millis(1100));
    d.ok(&["run", "--once"]);
    let hits = receiver.hits();
    let got = per_ticket(&hits);
    for t in &tickets {
        let events = &got[t];
        assert_eq!(
            *events,
            ["ticket.created", "message.sent", "message.received"],
            "{t}"
        );
    }
    let rows = list(&d, false);
    assert!(rows.iter().all(|r| r["status"] == "sent"), "{rows:?}");
    assert_eq!(hits.len(), rows.len(), "each once");
    receiver.stop();
}

/// `buzon run` killed with SIGKILL while a request is in flight: after a
/// restart every event arrives, at once (the restarted daemon takes back
/// its own claims, not waiting for their lease); the one in flight at most
/// twice, with the same id.
fn sigkill_mid_delivery_loses_none(backend: Backend) {
    let script = Arc::new(Mutex::new(Script {
        stall_first: Some(Duration::from_secs(4)),
        ..Script::default()
    }));
    let receiver = Receiver::start(0, script.clone());
    // The lease is twice the timeout plus 5 s: 65 s here, far longer than
    // the restart may take.
    let d = deployment(backend, &receiver.url(), "").retimed("30s");
    let t = ingest(&d, &mail(&d, "k1", "cliente@example.cl", "Caída", None));
    ingest(
        &d,
        &mail(
            &d,
            "k1r",
            "cliente@example.cl",
            "Re: Caída",
            Some("k1@cliente.example"),
        ),
    );
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_buzon"))
            .env_remove("BUZON_DATABASE_URL")
            .env_remove("BUZON_OUTBOX_DIR")
            .arg("--config")
            .arg(&d.config)
            .arg("run")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut daemon = spawn();
    wait_for("the first request", 20, || !receiver.hits().is_empty());
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();
    let restarted = Instant::now();
    let mut daemon = spawn();
    wait_for("every event, before the lease of 65 s", 20, || {
        list(&d, false).iter().all(|r| r["status"] == "sent")
    });
    let took = restarted.elapsed();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let hits = receiver.hits();
    let rows = list(&d, false);
    let ids: std::collections::HashSet<&str> = hits.iter().map(|h| h.delivery.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "every event arrived: {hits:#?}");
    assert!(
        hits.len() <= rows.len() + 1,
        "at most one repeat: {hits:#?}"
    );
    if hits.len() == rows.len() + 1 {
        assert_eq!(
            hits[0].delivery, hits[1].delivery,
            "the repeat is the one in flight"
        );
    }
    let events = &per_ticket(&hits)[&t];
    assert_eq!(
        *events,
        ["ticket.created", "message.sent", "message.received"]
    );
    for h in &hits {
        verify(h);
    }
    eprintln!("every event sent {took:?} after the restart");
    receiver.stop();
}

/// Another instance finds neither a mail nor a delivery to claim: every
/// one is leased.
async fn assert_nothing_free(store: &buzon::store::Store, now: i64, lease: i64) {
    let mails = store.outbox_claim(now, lease, 10, "x").await.unwrap();
    assert!(mails.is_empty(), "{} mails were free", mails.len());
    let hooks = store.hook_claim(now, lease, 10, "x").await.unwrap();
    assert!(hooks.is_empty(), "{} deliveries were free", hooks.len());
}

/// What a restart takes back: the claims its own name holds (its previous
/// process's), never another instance's, which run until their lease ends.
fn a_restart_takes_back_only_its_own_claims(backend: Backend) {
    let d = deployment(backend, "http://127.0.0.1:9/hook", "");
    ingest(&d, &mail(&d, "c1", "uno@example.cl", "Uno", None));
    ingest(&d, &mail(&d, "c2", "dos@example.cl", "Dos", None));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = buzon::store::Store::open(&d.database_url, 4).await.unwrap();
        // The acknowledgements went to files: queued again, they are the
        // mails the two instances were sending.
        sql_exec(&d.database_url, "UPDATE outbox SET status = 'queued'").await;
        let config = buzon::config::Config::load(buzon::config::Sources {
            file: Some(d.config.clone()),
            env: Vec::new(),
        })
        .unwrap();
        let hooks = buzon::webhooks::Webhooks::load(&config).unwrap();
        let now = buzon::store::now_ms();
        buzon::webhooks::deliver::fan_out(&store, &hooks, now)
            .await
            .unwrap();
        let lease = now + 600_000;
        // "mail1" (killed) claimed the first ticket's, "mail2" (alive) the
        // second's: one mail and one delivery a ticket per claim.
        let mine = store.outbox_claim(now, lease, 1, "mail1").await.unwrap();
        let theirs = store.outbox_claim(now, lease, 10, "mail2").await.unwrap();
        assert_eq!((mine.len(), theirs.len()), (1, 1));
        let hooks_mine = store.hook_claim(now, lease, 1, "mail1").await.unwrap();
        let hooks_theirs = store.hook_claim(now, lease, 10, "mail2").await.unwrap();
        assert_eq!((hooks_mine.len(), hooks_theirs.len()), (1, 1));
        assert_nothing_free(&store, now, lease).await;
        // "mail1" starts again: its own claims come back at once.
        assert_eq!(store.release_claims("mail1").await.unwrap(), (1, 1));
        let again = store.outbox_claim(now, lease, 10, "mail1").await.unwrap();
        assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), [mine[0].id]);
        let again = store.hook_claim(now, lease, 10, "mail1").await.unwrap();
        assert_eq!(
            again.iter().map(|j| j.delivery.id).collect::<Vec<_>>(),
            [hooks_mine[0].delivery.id]
        );
        // A name nobody holds gives back nothing; "mail2" keeps its lease.
        assert_eq!(store.release_claims("mail3").await.unwrap(), (0, 0));
        assert_nothing_free(&store, now, lease).await;
    });
}

/// The daemon deletes delivered webhooks past `[daemon] webhooks_retention`
/// (at start, then hourly), with their events; what gave up, what waits and
/// what is recent stay.
fn delivered_webhooks_are_pruned_after_the_retention(backend: Backend) {
    let script = Arc::new(Mutex::new(Script::default()));
    let receiver = Receiver::start(0, script.clone());
    let d = deployment(backend, &receiver.url(), "");
    let old = ingest(&d, &mail(&d, "p1", "uno@example.cl", "Antiguo", None));
    let recent = ingest(&d, &mail(&d, "p2", "dos@example.cl", "Reciente", None));
    d.ok(&["run", "--once"]);
    let rows = list(&d, false);
    assert!(rows.iter().all(|r| r["status"] == "sent"), "{rows:?}");
    let url = d.database_url.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (old_id, recent_id) = (&old[2..], &recent[2..]);
    rt.block_on(async {
        // The first ticket's were delivered 40 days ago; one of the second's
        // gave up long ago, the other was delivered now.
        sql_exec(
            &url,
            &format!("UPDATE webhook_deliveries SET sent_at = 1000 WHERE ticket_id = {old_id}"),
        )
        .await;
        sql_exec(&url, "UPDATE webhook_events SET created_at = 1000").await;
        sql_exec(
            &url,
            &format!(
                "UPDATE webhook_deliveries SET status = 'failed', sent_at = NULL WHERE id = \
                 (SELECT MIN(id) FROM webhook_deliveries WHERE ticket_id = {recent_id})"
            ),
        )
        .await;
    });
    let count = |q: String| rt.block_on(sql_count(&url, q));
    let recent_rows = count(format!(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE ticket_id = {recent_id}"
    ));
    assert!(recent_rows >= 2, "two deliveries of the second ticket");
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_buzon"))
        .env_remove("BUZON_DATABASE_URL")
        .env_remove("BUZON_OUTBOX_DIR")
        .arg("--config")
        .arg(&d.config)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the old deliveries deleted", 20, || {
        count(format!(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE ticket_id = {old_id}"
        )) == 0
    });
    wait_for("their events deleted", 10, || {
        count(format!(
            "SELECT COUNT(*) FROM webhook_events WHERE ticket_id = {old_id}"
        )) == 0
    });
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert_eq!(
        count(format!(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE ticket_id = {recent_id}"
        )),
        recent_rows,
        "the recent and the given-up deliveries stay"
    );
    assert_eq!(
        count(format!(
            "SELECT COUNT(*) FROM webhook_events WHERE ticket_id = {recent_id}"
        )),
        recent_rows,
        "and their events"
    );
    receiver.stop();
}

/// One statement on the test's database.
async fn sql_exec(url: &str, q: &str) {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(q))
            .execute(&pool)
            .await
            .unwrap();
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(q))
            .execute(&pool)
            .await
            .unwrap();
    }
}

trait Retimed {
    fn retimed(self, timeout: &str) -> Self;
}

impl Retimed for Deployment {
    fn retimed(self, timeout: &str) -> Self {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(
            &self.config,
            text.replace("timeout = \"2s\"", &format!("timeout = \"{timeout}\"")),
        )
        .unwrap();
        self
    }
}

/// One number from the test's database.
async fn sql_count(url: &str, q: String) -> i64 {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(q))
            .fetch_one(&pool)
            .await
            .unwrap()
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(q))
            .fetch_one(&pool)
            .await
            .unwrap()
    }
}

/// Without `[[webhooks]]`, no change writes webhook events (nobody would
/// deliver them), whether mail piped into `buzon ingest`, an agent's
/// command or `run`; what an older buzon left is dropped by the command
/// or `run`.
fn without_webhooks_events_are_dropped(backend: Backend) {
    let d = Deployment::with_extra(backend, "[daemon]\nlisten = \"\"\n");
    let t = ingest(
        &d,
        &mail(&d, "n1", "cliente@example.cl", "Sin webhooks", None),
    );
    d.ok(&["tickets", "assign", &t, "supervisora"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let count = || {
        rt.block_on(sql_count(
            &d.database_url,
            "SELECT COUNT(*) FROM webhook_events".into(),
        ))
    };
    assert_eq!(count(), 0);
    d.ok(&["run", "--once"]);
    assert_eq!(count(), 0);
    assert!(list(&d, false).is_empty());
}

/// Marking a round sent takes the locks of the tickets that are free and
/// marks a busy ticket's mails on their own, waiting for that one lock
/// only: a ticket locked by another transaction (an intake batch) holds
/// back nothing else, and its `message.sent` comes after that transaction.
fn a_busy_ticket_does_not_hold_back_the_round(backend: Backend) {
    let d = deployment(backend, "http://127.0.0.1:9/hook", "");
    ingest(&d, &mail(&d, "m1", "uno@example.cl", "Uno", None));
    ingest(&d, &mail(&d, "m2", "dos@example.cl", "Dos", None));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = buzon::store::Store::open(&d.database_url, 4).await.unwrap();
        // Outbox ids nobody has: what is checked is the events and locks.
        let sent = |ticket: i64| {
            let e = buzon::ticket::NewHookEvent::new(
                buzon::ticket::HookKind::MessageSent,
                serde_json::json!({ "message": { "kind": "prueba" } }),
            );
            (1_000_000 + ticket, Some((ticket, e)))
        };
        let count = |ticket: i64| {
            sql_count(
                &d.database_url,
                format!(
                    "SELECT COUNT(*) FROM webhook_events WHERE ticket_id = {ticket} \
                     AND kind = 'message.sent' AND detail LIKE '%prueba%'"
                ),
            )
        };
        let round = vec![sent(1), sent(2)];
        if backend == Backend::Sqlite {
            store.outbox_sent(&round, 1).await.unwrap();
            assert_eq!((count(1).await, count(2).await), (1, 1));
            return;
        }
        use sqlx::Connection;
        let mut holder = sqlx::PgConnection::connect(&d.database_url).await.unwrap();
        let mut tx = holder.begin().await.unwrap();
        sqlx::query("SELECT id FROM tickets WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let s = store.clone();
        let task = tokio::spawn(async move { s.outbox_sent(&round, 1).await });
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            count(2).await,
            1,
            "the free ticket's mail is marked at once"
        );
        assert_eq!(count(1).await, 0, "the busy ticket's waits for its lock");
        assert!(!task.is_finished());
        tx.commit().await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(count(1).await, 1);
    });
}

on_both_backends!(
    each_event_arrives_once_in_order_and_signed,
    failures_are_retried_or_listed,
    a_receiver_down_for_a_while_gets_everything,
    sigkill_mid_delivery_loses_none,
    a_restart_takes_back_only_its_own_claims,
    delivered_webhooks_are_pruned_after_the_retention,
    a_busy_ticket_does_not_hold_back_the_round,
    without_webhooks_events_are_dropped,
);

/// `buzon check` and `buzon run` refuse a template with an error, naming
/// the file and the line; a misspelt event is named with its key.
#[test]
fn a_template_with_an_error_is_refused_at_load() {
    let d = deployment(
        Backend::Sqlite,
        "http://127.0.0.1:9/hook",
        "template = \"slack.json\"\n",
    );
    std::fs::write(
        d.dir.path().join("slack.json"),
        "{\n  \"text\": \"Nuevo ticket {{ ticket.number }}\",\n  \"extra\": \"{{ tiket.subject }}\"\n}\n",
    )
    .unwrap();
    for args in [&["check"][..], &["run", "--once"][..]] {
        let out = d.run(args);
        assert_eq!(out.status.code(), Some(78), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(err.contains("slack.json:3:"), "{args:?}: {err}");
        assert!(err.contains("did you mean `ticket`"), "{err}");
    }
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replace("\"ticket.closed\"", "\"ticket.close\""),
    )
    .unwrap();
    let out = d.run(&["check"]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("webhooks[0].events") && err.contains("did you mean \"ticket.closed\""),
        "{err}"
    );
}

/// The README's recipes: each example template loads, and what it produces
/// for every event it is meant for has the shape the service documents.
#[test]
fn the_example_bodies_have_the_documented_shapes() {
    use buzon::ticket::HookKind;
    use buzon::webhooks::{BodyTemplate, body};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/webhooks");
    let render = |file: &str, kinds: &[HookKind]| -> Vec<serde_json::Value> {
        let t = BodyTemplate::load(&dir.join(file), &kinds.iter().copied().collect())
            .unwrap_or_else(|e| panic!("{file}: {e:?}"));
        kinds
            .iter()
            .map(|k| {
                let ctx = body::context("id-1", &body::sample(*k), "Soporte");
                serde_json::from_str(&t.render(&ctx, "clave-api").unwrap()).unwrap()
            })
            .collect()
    };
    // Slack incoming webhook: `text` (the notification's fallback), with
    // blocks of type section / mrkdwn text.
    for v in render("slack.json", HookKind::ALL) {
        let text = v["text"].as_str().unwrap();
        assert!(text.contains("T-42"), "{v}");
        assert!(text.contains("&lt;factura&gt;"), "Slack's escapes: {text}");
        let block = v["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            block.contains("<https://soporte.example.cl/tickets/42|Abrir T-42>"),
            "{block}"
        );
        for b in v["blocks"].as_array().unwrap() {
            assert_eq!(b["type"], "section");
            assert_eq!(b["text"]["type"], "mrkdwn");
            assert!(b["text"]["text"].is_string());
        }
    }
    // HubSpot workflow webhook trigger: a flat JSON object of properties.
    for v in render("hubspot.json", &[HookKind::TicketCreated]) {
        let m = v.as_object().unwrap();
        assert!(m.values().all(|x| !x.is_object() && !x.is_array()), "{v}");
        assert_eq!(v["email"], "cliente@example.cl");
        assert_eq!(v["ticket_number"], "T-42");
    }
    // Odoo JSON-RPC: call object.execute_kw(db, uid, key, model, "create",
    // [values]) on helpdesk.ticket.
    for v in render("odoo-helpdesk.json", &[HookKind::TicketCreated]) {
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["method"], "call");
        assert_eq!(v["params"]["service"], "object");
        assert_eq!(v["params"]["method"], "execute_kw");
        let args = v["params"]["args"].as_array().unwrap();
        assert_eq!(args.len(), 6, "{v}");
        assert!(args[0].is_string() && args[1].is_i64() && args[2].is_string());
        assert_eq!(args[3], "helpdesk.ticket");
        assert_eq!(args[4], "create");
        let values = &args[5][0];
        assert!(values["name"].as_str().unwrap().contains("T-42"));
        assert_eq!(values["partner_email"], "cliente@example.cl");
        assert!(
            values["description"]
                .as_str()
                .unwrap()
                .contains("\"adjunto\"")
        );
    }
}

/// A receiver answering 410 Gone disables nothing: the delivery stays
/// queued (retried), and `/healthz` shows the endpoint failing at once.
#[test]
fn a_410_marks_the_endpoint_failing_in_healthz() {
    let script = Arc::new(Mutex::new(Script {
        answers: [410; 50].into(),
        ..Script::default()
    }));
    let receiver = Receiver::start(0, script);
    let port = common::free_port();
    let d = deployment(Backend::Sqlite, &receiver.url(), "");
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\"")),
    )
    .unwrap();
    ingest(&d, &mail(&d, "g1", "cliente@example.cl", "Gone", None));
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_buzon"))
        .env_remove("BUZON_DATABASE_URL")
        .env_remove("BUZON_OUTBOX_DIR")
        .arg("--config")
        .arg(&d.config)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut health = (0, String::new());
    wait_for("/healthz to show the endpoint failing", 20, || {
        health =
            std::panic::catch_unwind(|| common::http_get(port, "/healthz")).unwrap_or_default();
        health.0 == 503
    });
    let (_, metrics) = common::http_get(port, "/metrics");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let v: serde_json::Value = serde_json::from_str(&health.1).unwrap();
    assert_eq!(v["failing"], serde_json::json!(["webhook:prueba"]), "{v}");
    assert_eq!(v["webhooks"]["prueba"]["gone"], true, "{v}");
    assert!(
        v["webhooks"]["prueba"]["last_error"]
            .as_str()
            .unwrap()
            .contains("410")
    );
    assert!(
        metrics.contains("buzon_webhook_up{endpoint=\"prueba\"} 0"),
        "{metrics}"
    );
    let rows = list(&d, false);
    assert!(
        rows.iter().all(|r| r["status"] == "queued"),
        "still retried: {rows:?}"
    );
    receiver.stop();
}
