//! The shapes of Open311's JSON answers, for the OpenAPI description only: the answers
//! themselves are built as `wire::Node`s, and tests/tests/openapi.rs holds every answer to these.
// Never built: utoipa reads their fields.
#![allow(dead_code)]

use utoipa::ToSchema;

#[derive(Debug, ToSchema)]
pub struct Discovery {
    changeset: String,
    /// The communities' names.
    contact: String,
    key_service: String,
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, ToSchema)]
pub struct Endpoint {
    specification: String,
    /// Absolute: the scheme and host the client used.
    url: String,
    changeset: String,
    r#type: String,
    /// `text/xml`, `application/json`.
    formats: Vec<String>,
}

/// A category of the community.
#[derive(Debug, ToSchema)]
pub struct Service {
    /// The category's id.
    service_code: String,
    /// Its Chinese name.
    service_name: String,
    /// Its English name.
    description: String,
    /// Always `true`: every service has the attributes `unit`, `room`, `urgency`.
    metadata: bool,
    /// Always `realtime`.
    r#type: String,
    /// The category's phrases, comma-separated.
    keywords: String,
    /// The community's name.
    group: String,
}

#[derive(Debug, ToSchema)]
pub struct ServiceDefinition {
    service_code: String,
    attributes: Vec<Attribute>,
}

#[derive(Debug, ToSchema)]
pub struct Attribute {
    variable: bool,
    /// `unit`, `room` or `urgency`: sent as `attribute[code]`.
    code: String,
    /// `string` or `singlevaluelist`.
    datatype: String,
    required: bool,
    datatype_description: String,
    order: u32,
    description: String,
    /// For a list.
    values: Option<Vec<AttributeValue>>,
}

#[derive(Debug, ToSchema)]
pub struct AttributeValue {
    key: String,
    name: String,
}

/// An incident, as anyone may see it (docs/open311.md).
#[derive(Debug, ToSchema)]
pub struct ServiceRequest {
    /// The incident's id.
    service_request_id: String,
    /// `open` (reported, claimed, handed over) or `closed` (resolved, cancelled).
    status: String,
    /// What was done, or why it was cancelled; never a worker's note; null for a private
    /// category.
    status_notes: Option<String>,
    service_name: Option<String>,
    service_code: String,
    /// Null for a private category.
    description: Option<String>,
    /// The compound's grid (网格).
    agency_responsible: Option<String>,
    service_notice: Option<String>,
    /// W3C, in Beijing time: `2026-11-02T09:00:00+08:00`.
    requested_datetime: String,
    /// When its last change was recorded.
    updated_datetime: String,
    /// The resolution promised for the handling running now.
    expected_datetime: String,
    /// The compound's name and the building.
    address: String,
    /// `<compound>/<building>`; `<compound>` alone for a private category.
    address_id: String,
    zipcode: Option<String>,
    lat: Option<f64>,
    long: Option<f64>,
    media_url: Option<String>,
}

/// The answer to a POST.
#[derive(Debug, ToSchema)]
pub struct Posted {
    service_request_id: String,
    /// The ticket (工单号) and the grid it went to.
    service_notice: String,
    account_id: Option<String>,
}

/// A refusal, in a list of one.
#[derive(Debug, ToSchema)]
pub struct Error {
    /// The HTTP status: 400, 403 or 404.
    code: u16,
    /// English, with the specifics.
    description: String,
}
