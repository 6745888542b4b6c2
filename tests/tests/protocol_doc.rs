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
