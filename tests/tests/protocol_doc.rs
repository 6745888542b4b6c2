//! docs/protocol.md shows every message and every error code, and every example parses.

use std::collections::BTreeSet;

use hongfan_shared::protocol::{CLIENT_TYPES, ClientMessage, ErrorCode, ServerMessage};

/// Every `type` a server message can have.
const SERVER_TYPES: &[&str] = &[
    "hello",
    "snapshot",
    "resumed",
    "event",
    "alert",
    "reported",
    "done",
    "revealed",
    "found",
    "duty_set",
    "roster",
    "community",
    "error",
];

fn examples() -> Vec<String> {
    let doc = include_str!("../../docs/protocol.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim()) {
            (None, "```json") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_example_parses_and_every_message_and_error_code_is_shown() {
    let mut client_types = BTreeSet::new();
    let mut server_types = BTreeSet::new();
    let mut codes = BTreeSet::new();
    let examples = examples();
    assert!(examples.len() > 30, "found {} examples", examples.len());
    for example in examples {
        let value: serde_json::Value =
            serde_json::from_str(&example).unwrap_or_else(|e| panic!("{e}:\n{example}"));
        let kind =
            value["type"].as_str().unwrap_or_else(|| panic!("no type:\n{example}")).to_owned();
        if CLIENT_TYPES.contains(&kind.as_str()) {
            let message =
                ClientMessage::decode(&example).unwrap_or_else(|e| panic!("{e}:\n{example}"));
            assert_eq!(serde_json::to_value(&message).unwrap(), value, "round trip:\n{example}");
            client_types.insert(kind);
        } else {
            let message: ServerMessage =
                serde_json::from_str(&example).unwrap_or_else(|e| panic!("{e}:\n{example}"));
            // Nothing in the example is silently ignored or defaulted.
            assert_eq!(serde_json::to_value(&message).unwrap(), value, "round trip:\n{example}");
            if let ServerMessage::Error(body) = &message {
                codes.insert(format!("{:?}", body.code));
            }
            server_types.insert(kind);
        }
    }
    assert_eq!(client_types, CLIENT_TYPES.iter().map(|t| t.to_string()).collect());
    assert_eq!(server_types, SERVER_TYPES.iter().map(|t| t.to_string()).collect());
    let all: BTreeSet<String> = ErrorCode::all().iter().map(|c| format!("{c:?}")).collect();
    assert_eq!(codes, all, "every error code has an example");
}

/// The rows of the markdown table that follows `heading` in docs/protocol.md, each split into
/// its cells.
fn table_after(heading: &str) -> Vec<Vec<String>> {
    let doc = include_str!("../../docs/protocol.md");
    let (_, after) = doc.split_once(heading).unwrap_or_else(|| panic!("no {heading:?}"));
    after
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| line.trim_matches('|').split(" | ").map(|c| c.trim().to_owned()).collect())
        .collect()
}

/// The live feed's table of codes names each code once, and every one.
#[test]
fn the_error_table_names_every_code_once() {
    let listed: Vec<String> = table_after("### error")
        .into_iter()
        .map(|row| row[0].trim_matches('`').to_owned())
        .collect();
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "a code listed twice: {listed:?}");
    let all: BTreeSet<String> = ErrorCode::all()
        .iter()
        .map(|c| serde_json::to_value(c).unwrap().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), all);
}

/// "Every refusal" is shared/src/error.rs's table as it is: the live feed's codes, then the
/// HTTP API's own refusals, each with its status, Chinese and meaning.
#[test]
fn every_refusal_is_the_table_of_the_code() {
    let mut rows = Vec::new();
    for code in ErrorCode::all() {
        let name = serde_json::to_value(code).unwrap().as_str().unwrap().to_owned();
        rows.push([
            name,
            code.http_status().to_string(),
            code.message_zh().into(),
            code.meaning_en().into(),
        ]);
    }
    for refusal in hongfan_shared::error::Refusal::all() {
        rows.push([
            refusal.code().into(),
            refusal.http_status().to_string(),
            refusal.message_zh().into(),
            refusal.meaning_en().into(),
        ]);
    }
    let expected: Vec<Vec<String>> = rows
        .into_iter()
        .map(|[code, status, zh, en]| vec![format!("`{code}`"), status, zh, en])
        .collect();
    let listed = table_after("## Every refusal");
    let render = |rows: &[Vec<String>]| {
        rows.iter().map(|r| format!("| {} |", r.join(" | "))).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(
        render(&listed),
        render(&expected),
        "docs/protocol.md, \"Every refusal\", should read:\n{}",
        render(&expected)
    );
}
