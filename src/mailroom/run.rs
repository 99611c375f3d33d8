//! Carries out the agents' mails the pipeline queued: their commands in
//! order, then their words to the customer (or as a note, or as the
//! closing note). Each step goes through the action layer, as the agent,
//! with its permissions, and is counted in the transaction of its change:
//! after a crash a job resumes at the first step not counted, and a step
//! counted by another instance is not done twice.
//!
//! A refused or unknown command stops the job there: nothing more is done,
//! nothing reaches the customer, and the agent is told why by mail.

use super::commands::{self, Command, Instructions};
use super::words::new_words;
use crate::actions::{ActionError, Agent};
use crate::live::Snapshot;
use crate::outbound::compose::FileToSend;
use crate::store::{JobStep, StaffJob, Store, StoreError, now_ms};
use crate::ticket::{Classification, Outcome, Priority, State};

/// What a pass over the queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Jobs carried out to the end.
    pub done: usize,
    /// Jobs stopped by a refused or unknown command (the agent was told).
    pub refused: usize,
}

/// One thing a job does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Take,
    Assign(String),
    State(State),
    Priority(Priority),
    Note(String),
    Close(Outcome, String),
    Reply(String),
}

/// Carries out every pending job. A failure of the database stops the pass
/// (the job stays queued and is tried again); anything about the job
/// itself is answered to the agent.
pub async fn run_pending(snap: &Snapshot, store: &Store) -> Result<Report, StoreError> {
    let mut report = Report::default();
    for job in store.pending_staff_mail().await? {
        match run_job(snap, store, &job).await {
            Ok(true) => report.done += 1,
            Ok(false) => report.refused += 1,
            Err(ActionError::Store(e)) if e.is_transient() => return Err(e),
            Err(e) => {
                // The job cannot go on (the person left [people], the
                // ticket is gone): closed, and logged for the admin.
                tracing::warn!(job = %job.key, error = %e, "An agent's mail cannot be carried out.");
                store.finish_staff_mail(&job.key, now_ms()).await?;
            }
        }
    }
    Ok(report)
}

/// `true`: done to the end; `false`: stopped at a refusal.
async fn run_job(snap: &Snapshot, store: &Store, job: &StaffJob) -> Result<bool, ActionError> {
    let agent = snap.agent(store, &job.person)?;
    let message_id = job.key.strip_prefix("mid:");
    let instructions = commands::parse(&new_words(&job.body_text));
    let steps = match plan(&agent, &instructions) {
        Ok(steps) => steps,
        Err(why) => return refuse(&agent, job, job.steps_done, &why, message_id).await,
    };
    if steps.is_empty() {
        let why = "el correo no tenía texto ni comandos";
        return refuse(&agent, job, job.steps_done, why, message_id).await;
    }
    // The files go only with a reply; a command or a note never reads them.
    let files = if steps.iter().any(|s| matches!(s, Step::Reply(_))) {
        attachments(store, job).await?
    } else {
        Vec::new()
    };
    let count = steps.len() as i64;
    for (i, step) in steps
        .iter()
        .enumerate()
        .skip(usize::try_from(job.steps_done).unwrap_or(0))
    {
        let index = i as i64;
        let marker = JobStep {
            key: job.key.clone(),
            index,
            last: index + 1 == count,
        };
        match execute(&agent.for_step(marker), job.ticket, step, &files).await {
            Ok(()) => {}
            // Another instance did this step: it carries on from there.
            Err(ActionError::Store(StoreError::Stale(_))) => return Ok(true),
            Err(ActionError::Denied(d)) => {
                return refuse(&agent, job, index, &d.to_string(), message_id).await;
            }
            Err(
                ActionError::Invalid(why)
                | ActionError::UnknownPerson(why)
                | ActionError::Store(StoreError::Conflict(why)),
            ) => {
                return refuse(&agent, job, index, &why, message_id).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The files of the agent's mail, to go to the customer with the reply.
async fn attachments(store: &Store, job: &StaffJob) -> Result<Vec<FileToSend>, ActionError> {
    let mut files = Vec::new();
    for index in 0.. {
        match store.attachment(job.ticket, job.message_row, index).await? {
            Some(a) => files.push(FileToSend {
                name: a.name,
                content_type: a.content_type,
                content: a.content,
            }),
            None => break,
        }
    }
    Ok(files)
}

/// The agent is told why, in the step's transaction; the job ends.
async fn refuse(
    agent: &Agent<'_>,
    job: &StaffJob,
    index: i64,
    why: &str,
    message_id: Option<&str>,
) -> Result<bool, ActionError> {
    let marker = JobStep {
        key: job.key.clone(),
        index,
        last: true,
    };
    match agent
        .for_step(marker)
        .tell_sender(job.ticket, why, message_id)
        .await
    {
        Ok(_) | Err(ActionError::Store(StoreError::Stale(_))) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The steps of what the agent wrote, or why it cannot be done at all.
fn plan(agent: &Agent<'_>, ins: &Instructions) -> Result<Vec<Step>, String> {
    if let Some(unknown) = ins.unknown.first() {
        return Err(format!(
            "no conozco «{unknown}»: los comandos son #nota, #cerrar, #cerrar sin éxito, #asignar NOMBRE, #tomar, #estado PALABRA y #prioridad PALABRA"
        ));
    }
    let labels = |text: &str, all: &[(State, Vec<String>)]| {
        crate::actions::words::pick(text, all, "un estado del equipo")
    };
    let states: Vec<(State, Vec<String>)> = State::ALL
        .into_iter()
        .filter(|s| *s != State::Done)
        .map(|s| {
            (
                s,
                vec![
                    agent.state_label(s).to_string(),
                    s.as_str().replace('_', " "),
                ],
            )
        })
        .collect();
    let priorities: Vec<(Priority, Vec<String>)> = Priority::ALL
        .into_iter()
        .map(|p| {
            let label = crate::view::Labels::of(Some(agent.rules()))
                .priority(p)
                .to_string();
            (
                p,
                vec![
                    label,
                    agent.rules().priority_label(p).to_string(),
                    p.as_str().to_string(),
                ],
            )
        })
        .collect();
    let mut steps = Vec::new();
    let mut closing = None;
    let mut note = false;
    for c in &ins.commands {
        match c {
            Command::Note => note = true,
            Command::Close(o) => closing = Some(*o),
            Command::Take => steps.push(Step::Take),
            Command::Assign(who) => steps.push(Step::Assign(who.clone())),
            Command::State(word) => steps.push(Step::State(labels(word, &states)?)),
            Command::Priority(word) => steps.push(Step::Priority(crate::actions::words::pick(
                word,
                &priorities,
                "una prioridad",
            )?)),
        }
    }
    let text = ins.text.trim().to_string();
    match (closing, note) {
        (Some(outcome), _) => steps.push(Step::Close(outcome, text)),
        (None, true) if !text.is_empty() => steps.push(Step::Note(text)),
        (None, true) => return Err("#nota sin texto: escriba el comentario debajo".into()),
        (None, false) if !text.is_empty() => steps.push(Step::Reply(text)),
        (None, false) => {}
    }
    Ok(steps)
}

async fn execute(
    agent: &Agent<'_>,
    ticket: i64,
    step: &Step,
    files: &[FileToSend],
) -> Result<(), ActionError> {
    match step {
        Step::Take => agent.take(ticket).await?,
        Step::Assign(who) => agent.assign(ticket, who).await?,
        Step::State(s) => agent.set_state(ticket, *s).await?,
        Step::Priority(p) => {
            let change = Classification {
                priority: Some(*p),
                ..Classification::default()
            };
            agent.classify(ticket, change, &[]).await?
        }
        Step::Note(text) => agent.comment(ticket, text).await?,
        Step::Close(outcome, note) => {
            let note = (!note.is_empty()).then_some(note.as_str());
            agent.close(ticket, *outcome, note).await?
        }
        Step::Reply(text) => agent.reply_with(ticket, text, files.to_vec()).await?,
    };
    Ok(())
}
