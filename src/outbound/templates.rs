//! The words of every mail buzon writes: template files beside the rules,
//! checked when they are loaded, with built-in Spanish defaults.
//!
//! A template `NAME` is the file `NAME.txt` in `templates.dir`: the first
//! line is `Subject: ...`, then a blank line, then the plain-text body. An
//! optional `NAME.html` adds an HTML alternative (auto-escaped). All three
//! parts are minijinja templates over the same variables ([`Vars`]). A
//! misspelt variable, a syntax error or a missing `Subject:` line is a load
//! error naming `file:line`, like `rules check` does, so a broken template
//! never reaches a customer. Names without a file use the built-in text.
//!
//! Owns no I/O beyond reading the directory at load; rendering is pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::ticket::Priority;

/// The acknowledgement of a new ticket (rules may name others).
pub const ACKNOWLEDGEMENT: &str = "acknowledgement";
/// To the customer when an agent finishes the ticket.
pub const CLOSING: &str = "closing";
/// To the owner: a new ticket is theirs.
pub const OWNER_NEW: &str = "owner_new";
/// To the owner: someone assigned them an existing ticket.
pub const OWNER_ASSIGNED: &str = "owner_assigned";
/// To the owner: the customer answered.
pub const OWNER_REPLY: &str = "owner_reply";
/// To the additional recipients the rules name (`notify = [...]`).
pub const NOTIFY: &str = "notify";
/// To the owner: someone else acted on their ticket (seed 001's
/// "notificaciones": ejecutar, finalizar, comentario, enviar mail).
pub const OWNER_ACTIVITY: &str = "owner_activity";
/// To the owner: one of their tickets missed a deadline.
pub const OVERDUE_ALERT: &str = "overdue_alert";
/// To the escalation list (`[deadlines] escalation`): a ticket missed a
/// deadline.
pub const ESCALATION: &str = "escalation";

/// What every template may use. Values absent for a given mail are empty
/// strings, so `{% if owner %}` works and a typo is caught at load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Vars {
    /// `T-1042`.
    pub ticket: String,
    /// `[#T-1042]`, what keeps answers on the ticket.
    pub tag: String,
    /// The customer's subject, without ticket tags.
    pub subject: String,
    /// The customer's name (may be empty).
    pub name: String,
    /// The customer's address.
    pub customer: String,
    pub pipeline: String,
    /// The owner's display name; empty when they have none (mail never
    /// shows the internal id in its place: see `owner_id`).
    pub owner: String,
    /// The owner as `buzon alerts --owner` takes it: the name in `[people]`,
    /// quoted for the shell when it needs to be.
    pub owner_id: String,
    /// The priority's label ("alta").
    pub priority: String,
    /// The due date in the team's time zone ("lunes 2 de noviembre de 2026, 18:00").
    pub due: String,
    /// The team's name (`deployment.name`).
    pub team: String,
    /// The customer's text (for staff notifications), shortened.
    pub text: String,
    /// The agent's closing note.
    pub note: String,
    /// "finalizada con éxito" / "finalizada sin éxito".
    pub outcome: String,
    /// Which deadline was missed: "primera respuesta" / "resolución".
    pub target: String,
    /// How late, when the alert was written ("2 h 15 min").
    pub late: String,
    /// Who acted (an agent's name), for the owner's activity notice.
    pub actor: String,
    /// What they did, in words ("agregó un comentario").
    pub activity: String,
}

/// Variable names and a sample value each, for load-time checks and hints.
const SAMPLE: &[(&str, &str)] = &[
    ("ticket", "T-1042"),
    ("tag", "[#T-1042]"),
    ("subject", "Documento observado por Notaría"),
    ("name", "Ana Pérez"),
    ("customer", "ana@cliente.example"),
    ("pipeline", "Soporte"),
    ("owner", "Camila"),
    ("owner_id", "camila"),
    ("priority", "alta"),
    ("due", "lunes 2 de noviembre de 2026, 18:00"),
    ("team", "Soporte"),
    ("text", "Hola, adjunto el documento."),
    ("note", "Se reenvió el documento a la notaría."),
    ("outcome", "finalizada con éxito"),
    ("target", "primera respuesta"),
    ("late", "2 h 15 min"),
    ("actor", "Rodrigo"),
    ("activity", "agregó un comentario"),
];

/// A rendered mail text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// One problem in a template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Every problem found while loading the templates, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateErrors(pub Vec<TemplateProblem>);

impl fmt::Display for TemplateErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the mail templates", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  {}:{}: {}", p.file, p.line, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for TemplateErrors {}

/// Why a mail could not be rendered (only for a name that does not exist:
/// everything else was checked at load).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("unknown mail template '{0}'")]
    Unknown(String),
    #[error("template {name}: {cause}")]
    Render {
        name: String,
        cause: minijinja::Error,
    },
}

/// The loaded, checked templates.
#[derive(Clone)]
pub struct Templates {
    env: Environment<'static>,
    /// Template name → whether it has an HTML part.
    names: BTreeMap<String, bool>,
    /// Names read from files (the rest are built in).
    from_files: BTreeSet<String>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.names)
            .field("from_files", &self.from_files)
            .finish()
    }
}

/// Where a part's text starts in its file, to turn minijinja's line
/// numbers (relative to the part) back into file lines.
struct Part {
    /// The environment's name for it (`NAME.subject`, `NAME.txt`, `NAME.html`).
    key: String,
    file: String,
    first_line: usize,
    source: String,
}

impl Templates {
    /// The built-in Spanish templates only.
    pub fn builtin() -> Templates {
        // The built-in texts are tested; a failure here is a bug caught by
        // the unit tests, so the problems are dropped rather than returned.
        Self::build(Vec::new(), BTreeSet::new()).unwrap_or_else(|_| Templates {
            env: new_env(),
            names: BTreeMap::new(),
            from_files: BTreeSet::new(),
        })
    }

    /// Loads `dir/*.txt` (and `*.html`) over the built-in defaults; `None`
    /// means the built-ins only.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateErrors> {
        let Some(dir) = dir else {
            return Self::build(Vec::new(), BTreeSet::new());
        };
        let mut problems = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                return Err(TemplateErrors(vec![TemplateProblem {
                    file: dir.display().to_string(),
                    line: 0,
                    message: format!("cannot read the templates directory: {e}"),
                }]));
            }
        };
        let mut files: Vec<std::path::PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("txt" | "html")))
            .collect();
        files.sort();
        let mut parts = Vec::new();
        let mut names = BTreeSet::new();
        let mut html_only = Vec::new();
        for path in &files {
            let file = path.display().to_string();
            let (Some(stem), Some(ext)) = (
                path.file_stem().and_then(|s| s.to_str()),
                path.extension().and_then(|s| s.to_str()),
            ) else {
                continue;
            };
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(TemplateProblem {
                        file,
                        line: 0,
                        message: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            if ext == "html" {
                html_only.push((stem.to_string(), file.clone()));
                parts.push(Part {
                    key: format!("{stem}.html"),
                    file,
                    first_line: 1,
                    source: text,
                });
                continue;
            }
            names.insert(stem.to_string());
            match split_subject(&text) {
                Ok((subject, body, body_line)) => {
                    parts.push(Part {
                        key: format!("{stem}.subject"),
                        file: file.clone(),
                        first_line: 1,
                        source: subject,
                    });
                    parts.push(Part {
                        key: format!("{stem}.txt"),
                        file,
                        first_line: body_line,
                        source: body,
                    });
                }
                Err((line, message)) => problems.push(TemplateProblem {
                    file,
                    line,
                    message,
                }),
            }
        }
        for (stem, file) in html_only {
            if !names.contains(&stem) && !BUILTIN.iter().any(|(n, _, _)| *n == stem) {
                problems.push(TemplateProblem {
                    file,
                    line: 1,
                    message: format!(
                        "an HTML part needs its text part: add {stem}.txt (Subject: line, blank line, body)"
                    ),
                });
            }
        }
        match Self::build(parts, names) {
            Ok(t) if problems.is_empty() => Ok(t),
            Ok(_) => Err(TemplateErrors(problems)),
            Err(TemplateErrors(more)) => {
                problems.extend(more);
                Err(TemplateErrors(problems))
            }
        }
    }

    /// Adds the built-ins, then the files' parts (which replace them),
    /// and checks everything.
    fn build(parts: Vec<Part>, from_files: BTreeSet<String>) -> Result<Templates, TemplateErrors> {
        let mut env = new_env();
        let mut names: BTreeMap<String, bool> = BTreeMap::new();
        let mut all: Vec<Part> = Vec::new();
        for (name, subject, body) in BUILTIN {
            if from_files.contains(*name) {
                continue;
            }
            names.insert(name.to_string(), false);
            let file = format!("<built-in {name}>");
            all.push(Part {
                key: format!("{name}.subject"),
                file: file.clone(),
                first_line: 1,
                source: subject.to_string(),
            });
            all.push(Part {
                key: format!("{name}.txt"),
                file,
                first_line: 3,
                source: body.to_string(),
            });
        }
        for name in &from_files {
            names.insert(name.clone(), false);
        }
        for part in &parts {
            if let Some(stem) = part.key.strip_suffix(".html") {
                names.insert(stem.to_string(), true);
            }
        }
        all.extend(parts);
        let mut problems = Vec::new();
        let mut parsed = Vec::new();
        for part in &all {
            match env.add_template_owned(part.key.clone(), part.source.clone()) {
                Ok(()) => parsed.push(part),
                Err(e) => problems.push(problem_at(part, &e)),
            }
        }
        for part in parsed {
            check_part(&env, part, &mut problems);
        }
        if problems.is_empty() {
            Ok(Templates {
                env,
                names,
                from_files,
            })
        } else {
            Err(TemplateErrors(problems))
        }
    }

    /// Every template name (built-in and from files), for the rules'
    /// `ack = "NAME"` check.
    pub fn names(&self) -> BTreeSet<String> {
        self.names.keys().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// Renders template `name`. Only an unknown name can fail in practice:
    /// the templates were checked against every variable at load.
    pub fn render(&self, name: &str, vars: &Vars) -> Result<Rendered, RenderError> {
        let Some(has_html) = self.names.get(name) else {
            return Err(RenderError::Unknown(name.to_string()));
        };
        let part = |suffix: &str| -> Result<String, RenderError> {
            let key = format!("{name}.{suffix}");
            self.env
                .get_template(&key)
                .and_then(|t| t.render(Serde(vars)))
                .map_err(|cause| RenderError::Render { name: key, cause })
        };
        let subject = crate::parse::collapse_ws(&part("subject")?);
        let mut text = part("txt")?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let html = if *has_html { Some(part("html")?) } else { None };
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }
}

fn new_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// `Subject: ...`, blank line, body → (subject, body, body's first line).
fn split_subject(text: &str) -> Result<(String, String, usize), (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("").trim_end();
    let Some(subject) = first
        .strip_prefix("Subject:")
        .or_else(|| first.strip_prefix("Asunto:"))
    else {
        return Err((
            1,
            "the first line must be `Subject: ...` (the mail's subject), then a blank line, then the body".into(),
        ));
    };
    match lines.next() {
        Some(l) if l.trim().is_empty() => {}
        _ => {
            return Err((
                2,
                "the line after `Subject:` must be blank; the body starts after it".into(),
            ));
        }
    }
    let body: String = lines.collect();
    if body.trim().is_empty() {
        return Err((3, "the body is empty".into()));
    }
    Ok((subject.trim().to_string(), body, 3))
}

fn problem_at(part: &Part, e: &minijinja::Error) -> TemplateProblem {
    let line = e.line().unwrap_or(1);
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    TemplateProblem {
        file: part.file.clone(),
        line: part.first_line + line.saturating_sub(1),
        message: format!("{}{detail}", e.kind()),
    }
}

/// Unknown variables (with the line that uses them and a suggestion), then
/// a trial render that catches the rest (unknown filters, bad calls).
fn check_part(env: &Environment<'static>, part: &Part, problems: &mut Vec<TemplateProblem>) {
    let Ok(tmpl) = env.get_template(&part.key) else {
        return;
    };
    let known: Vec<&str> = SAMPLE.iter().map(|(n, _)| *n).collect();
    let globals: BTreeSet<String> = env.globals().map(|(n, _)| n.to_string()).collect();
    let mut unknown: Vec<String> = tmpl
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !known.contains(&v.as_str()) && !globals.contains(v))
        .collect();
    unknown.sort();
    for name in &unknown {
        let hint = crate::config::closest(name, &known)
            .map(|c| format!("did you mean `{c}`? "))
            .unwrap_or_default();
        problems.push(TemplateProblem {
            file: part.file.clone(),
            line: part.first_line + line_of(&part.source, name).saturating_sub(1),
            message: format!(
                "unknown variable `{name}`: {hint}the variables are {}",
                known.join(", ")
            ),
        });
    }
    if !unknown.is_empty() {
        return;
    }
    // Both with every value present and with the optional ones empty, so
    // that both branches of an `{% if owner %}` are exercised.
    let full: BTreeMap<&str, &str> = SAMPLE.iter().copied().collect();
    let sparse: BTreeMap<&str, &str> = SAMPLE
        .iter()
        .map(|(n, v)| {
            (
                *n,
                if matches!(*n, "ticket" | "tag" | "team") {
                    *v
                } else {
                    ""
                },
            )
        })
        .collect();
    for ctx in [full, sparse] {
        if let Err(e) = tmpl.render(Serde(&ctx)) {
            problems.push(problem_at(part, &e));
            return;
        }
    }
}

/// The first line (1-based) where `name` appears as a whole word inside a
/// `{{ }}` or `{% %}` tag; 1 if it cannot be found.
fn line_of(source: &str, name: &str) -> usize {
    for (i, line) in source.lines().enumerate() {
        let mut rest = line;
        while let Some(open) = rest.find("{{").or_else(|| rest.find("{%")) {
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .or_else(|| after.find("%}"))
                .unwrap_or(after.len());
            let inside = &after[..close];
            let word = |c: char| c.is_alphanumeric() || c == '_';
            if inside.split(|c: char| !word(c)).any(|w| w == name) {
                return i + 1;
            }
            rest = &after[close..];
        }
    }
    1
}

/// The Spanish label of a priority (until the rules' labels are passed in).
pub fn priority_label(p: Priority) -> &'static str {
    match p {
        Priority::Low => "baja",
        Priority::Medium => "media",
        Priority::High => "alta",
        Priority::Urgent => "urgente",
    }
}

/// A date as Spanish speakers write it, in the team's time zone:
/// "lunes 2 de noviembre de 2026, 18:00".
pub fn spanish_date(at_ms: i64, tz: &jiff::tz::TimeZone) -> String {
    const DAYS: [&str; 7] = [
        "lunes",
        "martes",
        "miércoles",
        "jueves",
        "viernes",
        "sábado",
        "domingo",
    ];
    const MONTHS: [&str; 12] = [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ];
    let Ok(ts) = jiff::Timestamp::from_millisecond(at_ms) else {
        return String::new();
    };
    let z = ts.to_zoned(tz.clone());
    let day = DAYS
        .get(usize::from(
            z.weekday().to_monday_zero_offset().unsigned_abs(),
        ))
        .copied()
        .unwrap_or("");
    let month = MONTHS
        .get(usize::from(z.month().unsigned_abs()).saturating_sub(1))
        .copied()
        .unwrap_or("");
    format!(
        "{day} {} de {month} de {}, {:02}:{:02}",
        z.day(),
        z.year(),
        z.hour(),
        z.minute()
    )
}

/// The start of a customer's text for a staff notification.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let trimmed = text.trim();
    match trimmed.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{} […]", trimmed[..cut].trim_end()),
        None => trimmed.to_string(),
    }
}

/// Built-in Spanish texts: (name, subject, body).
const BUILTIN: &[(&str, &str, &str)] = &[
    (
        ACKNOWLEDGEMENT,
        "{{ tag }} Recibimos su solicitud: {{ subject }}",
        "\
Hola{% if name %} {{ name }}{% endif %}:

Recibimos su solicitud «{{ subject }}» y la registramos con el número {{ ticket }}.
{% if owner %}La atenderá {{ owner }}.
{% endif %}{% if due %}Le responderemos a más tardar el {{ due }}.
{% endif %}
Si desea agregar información, responda a este correo sin cambiar el asunto
(debe conservar {{ tag }}).

Saludos cordiales,
{{ team }}

--
Este es un mensaje automático de confirmación.
",
    ),
    (
        CLOSING,
        "{{ tag }} Su solicitud fue {{ outcome }}: {{ subject }}",
        "\
Hola{% if name %} {{ name }}{% endif %}:

Su solicitud {{ ticket }} «{{ subject }}» fue {{ outcome }}.
{% if note %}
{{ note }}
{% endif %}
Si necesita algo más, responda a este correo.

Saludos cordiales,
{{ team }}
",
    ),
    (
        OWNER_NEW,
        "{{ tag }} Nuevo ticket a su cargo: {{ subject }}",
        "\
Hola{% if owner %} {{ owner }}{% endif %}:

El ticket {{ ticket }} quedó a su cargo.

  Cliente:   {% if name %}{{ name }} <{{ customer }}>{% else %}{{ customer }}{% endif %}
  Asunto:    {{ subject }}
  Pipeline:  {{ pipeline }}
  Prioridad: {{ priority }}
{% if due %}  Vence:     {{ due }}
{% endif %}
{{ text }}

Para contestar al cliente, responda a este correo: el cliente recibe
sólo su texto, desde el buzón del equipo. En las primeras líneas puede
escribir #nota (comentario interno), #cerrar, #cerrar sin éxito,
#asignar NOMBRE, #tomar, #estado PALABRA o #prioridad PALABRA.

--
Aviso automático de {{ team }} para {{ owner }}.
",
    ),
    (
        OWNER_ASSIGNED,
        "{{ tag }} Le asignaron el ticket: {{ subject }}",
        "\
Hola{% if owner %} {{ owner }}{% endif %}:

Le asignaron el ticket {{ ticket }}.

  Cliente:   {% if name %}{{ name }} <{{ customer }}>{% else %}{{ customer }}{% endif %}
  Asunto:    {{ subject }}
  Pipeline:  {{ pipeline }}
  Prioridad: {{ priority }}
{% if due %}  Vence:     {{ due }}
{% endif %}
Para contestar al cliente, responda a este correo: el cliente recibe
sólo su texto, desde el buzón del equipo. En las primeras líneas puede
escribir #nota (comentario interno), #cerrar, #cerrar sin éxito,
#asignar NOMBRE, #tomar, #estado PALABRA o #prioridad PALABRA.

--
Aviso automático de {{ team }} para {{ owner }}.
",
    ),
    (
        OWNER_REPLY,
        "{{ tag }} El cliente respondió: {{ subject }}",
        "\
Hola{% if owner %} {{ owner }}{% endif %}:

{% if name %}{{ name }} <{{ customer }}>{% else %}{{ customer }}{% endif %} respondió en el ticket {{ ticket }} «{{ subject }}»:

{{ text }}

Para contestar al cliente, responda a este correo: el cliente recibe
sólo su texto, desde el buzón del equipo. En las primeras líneas puede
escribir #nota (comentario interno), #cerrar, #cerrar sin éxito,
#asignar NOMBRE, #tomar, #estado PALABRA o #prioridad PALABRA.

--
Aviso automático de {{ team }} para {{ owner }}.
",
    ),
    (
        NOTIFY,
        "{{ tag }} Aviso de solicitud: {{ subject }}",
        "\
Hola:

Le informamos que se registró la solicitud {{ ticket }} «{{ subject }}»{% if name %} de {{ name }}{% endif %},
a cargo del equipo {{ pipeline }}{% if owner %} ({{ owner }}){% endif %}.

Recibe este aviso porque su dirección está registrada para ser informada de
esta solicitud.

Saludos cordiales,
{{ team }}

--
Este es un mensaje automático.
",
    ),
    (
        OWNER_ACTIVITY,
        "{{ tag }} {{ actor }} {{ activity }}: {{ subject }}",
        "\
Hola{% if owner %} {{ owner }}{% endif %}:

{{ actor }} {{ activity }} en el ticket {{ ticket }} «{{ subject }}», que está
a su cargo.
{% if text %}
{{ text }}
{% endif %}
Para contestar al cliente, responda a este correo: el cliente recibe
sólo su texto, desde el buzón del equipo. En las primeras líneas puede
escribir #nota (comentario interno), #cerrar, #cerrar sin éxito,
#asignar NOMBRE, #tomar, #estado PALABRA o #prioridad PALABRA.

--
Aviso automático de {{ team }} para {{ owner }}.
",
    ),
    (
        OVERDUE_ALERT,
        "{{ tag }} Atrasado ({{ target }}): {{ subject }}",
        "\
Hola{% if owner %} {{ owner }}{% endif %}:

El ticket {{ ticket }} «{{ subject }}» a su cargo está atrasado: el plazo de
{{ target }} venció el {{ due }} (hace {{ late }}).

  Cliente:   {% if name %}{{ name }} <{{ customer }}>{% else %}{{ customer }}{% endif %}
  Pipeline:  {{ pipeline }}
  Prioridad: {{ priority }}

La alerta se elimina cuando el ticket se responde o se finaliza.
Para contestar al cliente, responda a este correo: el cliente recibe
sólo su texto, desde el buzón del equipo (#nota, #cerrar y los demás
comandos también sirven aquí).

--
Aviso automático de {{ team }}. Vea sus alertas con `buzon alerts --owner {{ owner_id }}`.
",
    ),
    (
        ESCALATION,
        "{{ tag }} Escalamiento: ticket atrasado ({{ target }}): {{ subject }}",
        "\
Hola:

El ticket {{ ticket }} «{{ subject }}» está atrasado: el plazo de {{ target }}
venció el {{ due }} (hace {{ late }}).

  Cliente:     {% if name %}{{ name }} <{{ customer }}>{% else %}{{ customer }}{% endif %}
  Pipeline:    {{ pipeline }}
  Responsable: {% if owner %}{{ owner }}{% elif owner_id %}{{ owner_id }}{% else %}(sin asignar){% endif %}
  Prioridad:   {{ priority }}

Recibe este correo porque está en la lista de escalamiento de {{ pipeline }}.

--
Aviso automático de {{ team }}.
",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            ticket: "T-7".into(),
            tag: "[#T-7]".into(),
            subject: "Pedido 75321".into(),
            name: "Ana".into(),
            customer: "ana@c.example".into(),
            pipeline: "Soporte".into(),
            owner: String::new(),
            priority: "media".into(),
            due: String::new(),
            team: "Soporte TP".into(),
            ..Vars::default()
        }
    }

    #[test]
    fn builtins_load_and_render() {
        let t = Templates::load(None).unwrap();
        for (name, _, _) in BUILTIN {
            let r = t.render(name, &vars()).unwrap();
            assert!(r.subject.contains("[#T-7]"), "{name}: {}", r.subject);
            assert!(r.text.contains("T-7"), "{name}");
            assert!(r.html.is_none());
        }
        let ack = t.render(ACKNOWLEDGEMENT, &vars()).unwrap();
        assert!(ack.text.starts_with("Hola Ana:"), "{}", ack.text);
        assert!(!ack.text.contains("La atenderá"));
    }

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn files_replace_builtins_and_add_names_with_html() {
        let dir = dir_with(&[
            (
                "acknowledgement.txt",
                "Subject: {{ tag }} Recibido\n\nHola {{ name }}, su número es {{ ticket }}.\n",
            ),
            (
                "acuse_finanzas.txt",
                "Subject: {{ tag }} Finanzas\n\nTicket {{ ticket }}\n",
            ),
            (
                "acuse_finanzas.html",
                "<p>Ticket {{ ticket }} de {{ name }}</p>\n",
            ),
        ]);
        let t = Templates::load(Some(dir.path())).unwrap();
        assert!(t.contains("acuse_finanzas") && t.contains(CLOSING));
        let mut v = vars();
        v.name = "<Ana & Co>".into();
        let r = t.render("acuse_finanzas", &v).unwrap();
        assert_eq!(r.subject, "[#T-7] Finanzas");
        assert_eq!(
            r.html.as_deref(),
            Some("<p>Ticket T-7 de &lt;Ana &amp; Co&gt;</p>")
        );
        let ack = t.render(ACKNOWLEDGEMENT, &vars()).unwrap();
        assert_eq!(ack.text, "Hola Ana, su número es T-7.\n");
    }

    #[test]
    fn problems_name_file_and_line() {
        let dir = dir_with(&[
            (
                "a.txt",
                "Subject: {{ tag }} ok\n\nHola {{ name }}\n{% if owner %}{{ ownr }}{% endif %}\n",
            ),
            ("b.txt", "Subject: x\n\nline\n{% if %}\n"),
            ("c.txt", "Hola sin asunto\n"),
            ("d.txt", "Subject: {{ ticket | nosuchfilter }}\n\nx\n"),
            ("e.html", "<p>{{ ticket }}</p>"),
        ]);
        let err = Templates::load(Some(dir.path())).unwrap_err();
        let text = err.to_string();
        let at = |file: &str, line: usize| {
            err.0
                .iter()
                .any(|p| p.file.ends_with(file) && p.line == line)
        };
        assert!(at("a.txt", 4), "{text}");
        assert!(
            text.contains("unknown variable `ownr`: did you mean `owner`?"),
            "{text}"
        );
        assert!(at("b.txt", 4), "{text}");
        assert!(at("c.txt", 1), "{text}");
        assert!(at("d.txt", 1), "{text}");
        assert!(at("e.html", 1), "{text}");
    }

    #[test]
    fn spanish_dates_in_the_team_time_zone() {
        let tz = jiff::tz::TimeZone::get("America/Santiago").unwrap();
        // 2026-11-02T21:00:00Z is 18:00 in Santiago (summer time, -03).
        let ms = jiff::Timestamp::from_second(1_793_653_200)
            .unwrap()
            .as_millisecond();
        assert_eq!(spanish_date(ms, &tz), "lunes 2 de noviembre de 2026, 18:00");
        let lima = jiff::tz::TimeZone::get("America/Lima").unwrap();
        assert_eq!(
            spanish_date(ms, &lima),
            "lunes 2 de noviembre de 2026, 16:00"
        );
    }

    #[test]
    fn excerpts_cut_on_characters() {
        assert_eq!(excerpt("  ñandú  ", 10), "ñandú");
        assert_eq!(excerpt("áéíóú extra", 5), "áéíóú […]");
    }
}
