//! Who may do what to a ticket: the one check below every front end (the
//! command line, the web workspace, agents' mail, the API). Pure.
//!
//! Seed 001's rule, which the teams work under: an administrator may do
//! everything on every ticket; an agent everything on the tickets they own,
//! and on someone else's only read, comment and mail. An unowned ticket may
//! be taken by any agent of its pipeline.

use std::fmt;

use crate::config::Role;

/// Something a person does to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the ticket and its history.
    Read,
    /// Add an internal note.
    Comment,
    /// Mail the client: a reply or a case update ("novedad").
    Mail,
    /// Assign the ticket to themselves when nobody owns it.
    Take,
    /// Give the ticket to someone.
    Assign,
    /// Move it to another open state.
    State,
    /// Move a finished ticket back to an open state.
    Reopen,
    /// Finish it, with an outcome.
    Close,
    /// Change priority, type, category, area, pipeline or the team's fields.
    Classify,
    /// Move a deadline by hand.
    Due,
    /// Ask the client for documents, or mark one received.
    Documents,
    /// Hide the ticket from the client, or show it again.
    Visibility,
    /// Open a ticket by hand (a phone call, a visit).
    Create,
}

impl Action {
    /// The action as an infinitive, for the sentence that refuses it.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Read => "ver el ticket",
            Action::Comment => "comentar",
            Action::Mail => "escribir al cliente",
            Action::Take => "tomar el ticket",
            Action::Assign => "asignar el ticket",
            Action::State => "cambiar el estado",
            Action::Reopen => "reabrir el ticket",
            Action::Close => "finalizar el ticket",
            Action::Classify => "reclasificar el ticket",
            Action::Due => "mover la fecha límite",
            Action::Documents => "pedir o marcar documentos",
            Action::Visibility => "ocultar o mostrar el ticket al cliente",
            Action::Create => "crear tickets",
        }
    }

    /// What an agent may do on a ticket that is not theirs.
    fn open_to_all(self) -> bool {
        matches!(self, Action::Read | Action::Comment | Action::Mail)
    }
}

/// A person of `[people]`, as the checks see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// The key of `[people.NAME]`: what tickets record as their owner.
    pub id: String,
    /// The display name ("Camila Rojas"), or the id.
    pub name: String,
    pub role: Role,
    /// The pipelines they work; empty: all.
    pub pipelines: Vec<String>,
}

impl Staff {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether they work `pipeline` (case and accents aside).
    pub fn works(&self, pipeline: &str) -> bool {
        self.pipelines.is_empty()
            || self
                .pipelines
                .iter()
                .any(|p| crate::rules::fold_text(p) == crate::rules::fold_text(pipeline))
    }
}

/// What the check needs to know of a ticket.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The ticket as people write it (`GF-5`).
    pub number: &'a str,
    /// The owner's id and display name.
    pub owner: Option<(&'a str, &'a str)>,
    pub pipeline: &'a str,
}

/// Why an action was refused, in words that say what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The ticket is someone else's.
    NotOwner {
        action: Action,
        number: String,
        owner: String,
    },
    /// Nobody owns the ticket: take it first.
    Unowned { action: Action, number: String },
    /// Outside the pipelines the person works.
    NotTheirPipeline {
        action: Action,
        pipeline: String,
        theirs: Vec<String>,
    },
    /// Someone else already owns it.
    AlreadyTaken { number: String, owner: String },
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::NotOwner {
                action,
                number,
                owner,
            } => write!(
                f,
                "{number} está a cargo de {owner}: solo su responsable o un administrador puede {}; en un ticket ajeno usted puede ver el historial, comentar y escribir al cliente",
                action.verb()
            ),
            Denied::Unowned { action, number } => write!(
                f,
                "{number} no tiene responsable: tómelo primero (`buzon tickets take {number}`) para {}",
                action.verb()
            ),
            Denied::NotTheirPipeline {
                action,
                pipeline,
                theirs,
            } => write!(
                f,
                "no puede {} en el pipeline «{pipeline}»: su perfil trabaja en {}",
                action.verb(),
                theirs
                    .iter()
                    .map(|p| format!("«{p}»"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Denied::AlreadyTaken { number, owner } => write!(
                f,
                "{number} ya está a cargo de {owner}: pídale que se lo asigne, o a un administrador"
            ),
        }
    }
}

/// May `who` do `action` on the ticket `on`?
pub fn check(who: &Staff, action: Action, on: &Subject<'_>) -> Result<(), Denied> {
    if who.is_admin() || action.open_to_all() {
        return Ok(());
    }
    let mine = on.owner.is_some_and(|(id, _)| id == who.id);
    let elsewhere = || Denied::NotTheirPipeline {
        action,
        pipeline: on.pipeline.to_string(),
        theirs: who.pipelines.clone(),
    };
    match action {
        Action::Take => match on.owner {
            Some((_, name)) if !mine => Err(Denied::AlreadyTaken {
                number: on.number.to_string(),
                owner: name.to_string(),
            }),
            _ if !who.works(on.pipeline) => Err(elsewhere()),
            _ => Ok(()),
        },
        Action::Create if !who.works(on.pipeline) => Err(elsewhere()),
        Action::Create => Ok(()),
        _ if mine => Ok(()),
        _ => match on.owner {
            Some((_, name)) => Err(Denied::NotOwner {
                action,
                number: on.number.to_string(),
                owner: name.to_string(),
            }),
            None => Err(Denied::Unowned {
                action,
                number: on.number.to_string(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(id: &str, role: Role, pipelines: &[&str]) -> Staff {
        Staff {
            id: id.into(),
            name: id.to_uppercase(),
            role,
            pipelines: pipelines.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn ticket<'a>(owner: Option<(&'a str, &'a str)>, pipeline: &'a str) -> Subject<'a> {
        Subject {
            number: "SAC-7",
            owner,
            pipeline,
        }
    }

    const EVERYTHING: [Action; 13] = [
        Action::Read,
        Action::Comment,
        Action::Mail,
        Action::Take,
        Action::Assign,
        Action::State,
        Action::Reopen,
        Action::Close,
        Action::Classify,
        Action::Due,
        Action::Documents,
        Action::Visibility,
        Action::Create,
    ];

    #[test]
    fn an_admin_may_do_everything_anywhere() {
        let admin = staff("rosa", Role::Admin, &["Posventa"]);
        for t in [
            ticket(Some(("ana", "Ana")), "Comercial"),
            ticket(None, "Comercial"),
        ] {
            for a in EVERYTHING {
                assert_eq!(check(&admin, a, &t), Ok(()), "{a:?}");
            }
        }
    }

    #[test]
    fn an_agent_may_do_everything_on_their_own_ticket() {
        let ana = staff("ana", Role::Agent, &[]);
        let t = ticket(Some(("ana", "Ana")), "Comercial");
        for a in EVERYTHING {
            assert_eq!(check(&ana, a, &t), Ok(()), "{a:?}");
        }
    }

    #[test]
    fn on_someone_elses_ticket_an_agent_reads_comments_and_mails_only() {
        let ana = staff("ana", Role::Agent, &[]);
        let t = ticket(Some(("luis", "Luis Soto")), "Comercial");
        for a in EVERYTHING {
            let got = check(&ana, a, &t);
            if matches!(
                a,
                Action::Read | Action::Comment | Action::Mail | Action::Create
            ) {
                assert_eq!(got, Ok(()), "{a:?}");
            } else {
                let e = got.expect_err("refused");
                assert!(e.to_string().contains("Luis Soto"), "{e}");
            }
        }
        let e = check(&ana, Action::Close, &t).unwrap_err().to_string();
        assert!(e.starts_with("SAC-7 está a cargo de Luis Soto"), "{e}");
    }

    #[test]
    fn an_unowned_ticket_is_taken_by_an_agent_of_its_pipeline() {
        let ana = staff("ana", Role::Agent, &["Comercial"]);
        assert_eq!(
            check(&ana, Action::Take, &ticket(None, "comercial")),
            Ok(())
        );
        let e = check(&ana, Action::Take, &ticket(None, "Finanzas")).unwrap_err();
        assert!(matches!(e, Denied::NotTheirPipeline { .. }), "{e}");
        let e = check(&ana, Action::Close, &ticket(None, "Comercial")).unwrap_err();
        assert!(e.to_string().contains("tickets take SAC-7"), "{e}");
        let e = check(
            &ana,
            Action::Take,
            &ticket(Some(("luis", "Luis")), "Comercial"),
        );
        assert!(matches!(e, Err(Denied::AlreadyTaken { .. })));
    }

    #[test]
    fn an_agent_creates_tickets_only_in_their_pipelines() {
        let ana = staff("ana", Role::Agent, &["Posventa"]);
        assert_eq!(
            check(&ana, Action::Create, &ticket(None, "Posventa")),
            Ok(())
        );
        let e = check(&ana, Action::Create, &ticket(None, "Finanzas")).unwrap_err();
        assert!(e.to_string().contains("«Posventa»"), "{e}");
        let anyone = staff("luis", Role::Agent, &[]);
        assert_eq!(
            check(&anyone, Action::Create, &ticket(None, "Finanzas")),
            Ok(())
        );
    }
}
