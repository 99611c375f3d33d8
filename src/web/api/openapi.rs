//! The OpenAPI 3.1 document of the API (`GET /api/v1/openapi.json`),
//! written from the same route list the router is built from: every route
//! served is described, and nothing else.

use std::sync::{Arc, OnceLock};

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::error::CODES;
use super::{BASE, Endpoint, Route, json_response, routes};
use crate::ticket::Channel;

/// The query parameters of the list: the tray's (`web/tray.rs`), with what
/// each one selects.
pub const LIST_PARAMETERS: [(&str, &str); 13] = [
    (
        "estado",
        "Un estado (new, open, waiting_on_contact, waiting_on_us, done); repetible. Sin él: los tickets en curso (todos menos done). `todos`: también los finalizados.",
    ),
    (
        "responsable",
        "La clave de una persona de [people]; `mios`: los del dueño del token.",
    ),
    ("prioridad", "low, medium, high o urgent."),
    ("pipeline", "Un pipeline, por nombre."),
    ("buzon", "Un buzón de [mailboxes], por clave."),
    ("tipo", "Un tipo de las reglas."),
    ("categoria", "Una categoría."),
    ("area", "Un área."),
    ("medio", "Medio de ingreso: email, phone o in_person."),
    (
        "vencidos",
        "Con cualquier valor: solo los que pasaron su fecha límite.",
    ),
    (
        "q",
        "La búsqueda de la bandeja (ver «Search» en el README): número (`TP-12`), claves, direcciones, asuntos y textos; en todos los estados salvo que se indique `estado`; los mejores primero.",
    ),
    ("orden", "actividad (por defecto), vence o numero."),
    ("pagina", "La página, desde 1 (50 tickets por página)."),
];

pub async fn serve() -> Response {
    static DOCUMENT: OnceLock<Arc<Value>> = OnceLock::new();
    json_response(DOCUMENT.get_or_init(|| Arc::new(document())))
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in routes() {
        let entry = paths.entry(route.path.clone()).or_insert_with(|| json!({}));
        entry[route.method.name()] = operation(&route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "buzon",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "La bandeja, los tickets y las acciones de buzon para scripts. \
                Cada pedido lleva `Authorization: Bearer TOKEN` con un token de \
                `buzon token create PERSONA`; el token actúa como esa persona, con su rol y \
                los mismos permisos que en la web. Los errores son \
                `{\"error\": {\"code\": \"…\", \"message\": \"…\"}}`: el código es estable, \
                el mensaje en castellano. Las fechas son RFC 3339 en UTC con milisegundos.",
        },
        "servers": [{ "url": BASE }],
        "security": [{ "token": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": { "type": "http", "scheme": "bearer", "description": "Un token de `buzon token create`." },
            },
            "schemas": schemas(),
            "responses": error_responses(),
        },
    })
}

fn operation(route: &Route) -> Value {
    let mut op = match route.endpoint {
        Endpoint::List => json!({
            "operationId": "listTickets",
            "summary": "La bandeja: tickets con los filtros y la búsqueda de la web",
            "parameters": LIST_PARAMETERS.iter().map(|(name, description)| {
                let schema = if *name == "estado" {
                    json!({ "type": "array", "items": { "type": "string" } })
                } else if *name == "pagina" {
                    json!({ "type": "integer", "minimum": 1 })
                } else {
                    json!({ "type": "string" })
                };
                json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema, "explode": true })
            }).collect::<Vec<_>>(),
            "responses": ok("200", "Una página de tickets", "TicketList"),
        }),
        Endpoint::Create => json!({
            "operationId": "createTicket",
            "summary": "Abrir un ticket a mano (un llamado, una visita), como `buzon tickets new`",
            "requestBody": body(json!({ "$ref": "#/components/schemas/NewTicket" })),
            "responses": ok("201", "El ticket creado; Location es su dirección", "Done"),
        }),
        Endpoint::Show => json!({
            "operationId": "showTicket",
            "summary": "Un ticket: campos, claves, documentos, mensajes, historial y alertas (como `buzon tickets show --format json`)",
            "responses": ok("200", "El ticket", "Ticket"),
        }),
        Endpoint::Act(verb) => json!({
            "operationId": format!("{}Ticket", verb.name()),
            "summary": verb.summary(),
            "requestBody": body(verb.schema()),
            "responses": ok("200", "Lo que hizo la acción y los correos que dejó en cola", "Done"),
        }),
        Endpoint::OpenApi => json!({
            "operationId": "openApi",
            "summary": "Este documento",
            "security": [],
            "responses": { "200": { "description": "OpenAPI 3.1", "content": { "application/json": {} } } },
        }),
    };
    if route.path.contains("{number}") {
        op["parameters"] = json!([{
            "name": "number", "in": "path", "required": true,
            "description": "El número del ticket, con o sin el prefijo del equipo (`TP-12` o `12`).",
            "schema": { "type": "string" },
        }]);
    }
    if route.endpoint != Endpoint::OpenApi {
        let with_body = op.get("requestBody").is_some();
        let responses = op["responses"].as_object_mut();
        if let Some(responses) = responses {
            let statuses = ["400", "401", "403", "404", "409", "422", "429"];
            let large = with_body.then_some("413");
            for status in statuses.into_iter().chain(large) {
                responses.insert(
                    status.into(),
                    json!({ "$ref": format!("#/components/responses/E{status}") }),
                );
            }
        }
    }
    op
}

fn ok(status: &str, description: &str, schema: &str) -> Value {
    json!({ status: {
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } },
    } })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn error_responses() -> Value {
    let mut out = Map::new();
    for (status, description) in [
        (
            "400",
            "El pedido está mal formado (una ruta que no se puede leer)",
        ),
        (
            "401",
            "Sin token, o un token desconocido, revocado, vencido, o de alguien que ya no está en [people]",
        ),
        (
            "403",
            "La persona del token no puede hacer eso (el mensaje dice por qué)",
        ),
        ("404", "No existe el ticket (o la ruta)"),
        (
            "409",
            "Otra persona cambió el ticket entretanto (lo tomó): nada se escribió",
        ),
        ("413", "El cuerpo pasa de 2 MB"),
        (
            "422",
            "El pedido no tiene sentido así (un campo que falta, un valor desconocido)",
        ),
        ("429", "Demasiados tokens no válidos desde esta dirección"),
    ] {
        out.insert(
            format!("E{status}"),
            json!({
                "description": description,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
            }),
        );
    }
    Value::Object(out)
}

fn schemas() -> Value {
    let text = json!({ "type": "string" });
    let maybe_text = json!({ "type": ["string", "null"] });
    let time = json!({ "type": ["string", "null"], "format": "date-time" });
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": { "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": { "type": "string", "enum": CODES },
                    "message": { "type": "string", "description": "En castellano, para personas." },
                },
            } },
        },
        "TicketList": {
            "type": "object",
            "required": ["tickets", "page", "next_page"],
            "properties": {
                "tickets": { "type": "array", "items": { "$ref": "#/components/schemas/TicketSummary" } },
                "page": { "type": "integer" },
                "next_page": { "type": ["integer", "null"], "description": "La página siguiente, si hay más." },
            },
        },
        "TicketSummary": {
            "type": "object",
            "description": "Como `buzon tickets list --format json`.",
            "properties": {
                "number": text, "id": { "type": "integer" }, "subject": text,
                "state": text, "outcome": maybe_text, "pipeline": text, "owner": maybe_text,
                "priority": text, "type": maybe_text, "category": maybe_text, "area": maybe_text,
                "tags": { "type": "array", "items": text },
                "fields": { "type": "object", "additionalProperties": text },
                "keys": { "type": "object", "additionalProperties": text },
                "requester": maybe_text, "mailbox": text, "needs_review": { "type": "boolean" },
                "linked_ticket": maybe_text, "due_at": time, "first_response_due_at": time,
                "first_response_at": time, "paused_at": time,
                "created_at": { "type": "string", "format": "date-time" },
                "updated_at": { "type": "string", "format": "date-time" },
                "message_count": { "type": "integer" },
            },
        },
        "Ticket": {
            "type": "object",
            "description": "Como `buzon tickets show --format json`.",
            "required": ["ticket", "requests", "participants", "messages", "events", "alerts"],
            "properties": {
                "ticket": { "type": "object" },
                "requests": { "type": "array", "items": { "type": "object" } },
                "participants": { "type": "array", "items": { "type": "object" } },
                "messages": { "type": "array", "items": { "type": "object" } },
                "events": { "type": "array", "items": { "type": "object" } },
                "alerts": { "type": "array", "items": { "type": "object" } },
            },
        },
        "NewTicket": {
            "type": "object",
            "additionalProperties": false,
            "required": ["subject", "body"],
            "properties": {
                "channel": { "type": "string", "enum": Channel::ALL.map(|c| c.as_str()), "default": "phone" },
                "mailbox": { "type": "string", "description": "Un buzón de [mailboxes]; sin él, el único." },
                "requester": { "type": "string", "description": "El correo del cliente, si lo dio (recibe el acuse)." },
                "name": text, "subject": text,
                "body": { "type": "string", "description": "Lo que pidió, en palabras del agente." },
                "owner": { "type": "string", "description": "Una persona de [people], sobre la elección de las reglas." },
            },
        },
        "Done": {
            "type": "object",
            "required": ["number", "id", "changes", "queued"],
            "properties": {
                "number": text, "id": { "type": "integer" },
                "changes": { "type": "array", "items": {
                    "type": "object", "required": ["change"],
                    "properties": { "change": { "type": "string", "enum": [
                        "created", "owner", "state", "reopened", "closed", "commented", "mailed",
                        "classified", "due", "visibility", "documents_requested", "document_received",
                    ] } },
                } },
                "queued": { "type": "array", "items": {
                    "type": "object",
                    "properties": { "kind": text, "message_id": text, "to": { "type": "array", "items": text } },
                } },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::tray::Filters;

    #[test]
    fn every_route_is_in_the_document_and_nothing_else() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        let mut served: Vec<(String, String)> = routes()
            .iter()
            .map(|r| (r.method.name().to_string(), r.path.clone()))
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
        assert_eq!(served.len(), 3 + 13 + 1);
        let ids: std::collections::BTreeSet<_> = paths
            .values()
            .flat_map(|ops| ops.as_object().unwrap().values())
            .map(|op| op["operationId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), served.len(), "operationIds are unique");
    }

    #[test]
    fn every_documented_list_parameter_is_a_filter_of_the_tray() {
        let none = format!("{:?}", Filters::from_query(None));
        for (name, _) in LIST_PARAMETERS {
            let some = format!("{:?}", Filters::from_query(Some(&format!("{name}=2"))));
            assert_ne!(some, none, "{name} is not a filter of the tray");
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/").skip(1) {
            let pointer = piece.split('"').next().unwrap();
            assert!(
                doc.pointer(&format!("/{pointer}")).is_some(),
                "{pointer} is not in the document"
            );
        }
    }
}
