//! The two formats of GeoReport v2: every answer is built once as a `Node` (fields in the spec's
//! order) and written as JSON or as XML from it, so the two can never say different things.
//! A list is a JSON array and, in XML, an element holding one element per item (`<services>`
//! of `<service>`, `<attributes>` of `<attribute>`).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde::ser::{SerializeMap, SerializeSeq};

/// A value of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Number(i64),
    Bool(bool),
    /// Absent: `null` in JSON, an empty element in XML.
    Nothing,
    /// Fields in order.
    Record(Vec<(&'static str, Node)>),
    /// Items, each named `item` in XML.
    List {
        item: &'static str,
        items: Vec<Node>,
    },
}

impl Node {
    pub fn text(text: impl Into<String>) -> Node {
        Node::Text(text.into())
    }

    pub fn maybe(text: Option<impl Into<String>>) -> Node {
        text.map_or(Node::Nothing, Node::text)
    }

    pub fn list(item: &'static str, items: impl IntoIterator<Item = Node>) -> Node {
        Node::List { item, items: items.into_iter().collect() }
    }
}

impl serde::Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Text(text) => s.serialize_str(text),
            Node::Number(n) => s.serialize_i64(*n),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Nothing => s.serialize_none(),
            Node::Record(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
            Node::List { items, .. } => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

/// JSON or XML, as the path's extension says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// `services.json` → (`services`, JSON); an unknown or missing extension → `None`.
    pub fn split(file: &str) -> Option<(&str, Format)> {
        let (name, extension) = file.rsplit_once('.')?;
        match extension {
            "json" => Some((name, Format::Json)),
            "xml" => Some((name, Format::Xml)),
            _ => None,
        }
    }

    /// The format a path under `/open311/` asks for; JSON when it names none.
    pub fn of_path(path: &str) -> Format {
        let file = path.rsplit('/').next().unwrap_or_default();
        Format::split(file).map_or(Format::Json, |(_, format)| format)
    }

    /// `root` (the XML document element) holding `node`, with `status`.
    pub fn answer(self, status: StatusCode, root: &'static str, node: &Node) -> Response {
        match self {
            Format::Json => {
                let body = serde_json::to_vec(node).unwrap_or_default();
                (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body)
                    .into_response()
            }
            Format::Xml => {
                let body = xml(root, node);
                (status, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
            }
        }
    }
}

/// The XML document: its declaration, then `root` holding `node`.
pub fn xml(root: &'static str, node: &Node) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
    element(&mut writer, root, node);
    writer.into_inner()
}

fn element(writer: &mut Writer<Vec<u8>>, name: &str, node: &Node) {
    if *node == Node::Nothing {
        let _ = writer.write_event(Event::Empty(BytesStart::new(name)));
        return;
    }
    let _ = writer.write_event(Event::Start(BytesStart::new(name)));
    match node {
        Node::Text(text) => {
            // XML 1.0 has no way to say most control characters, escaped or not.
            let legal = |c: char| !c.is_control() || matches!(c, '\t' | '\n' | '\r');
            let text: String = text
                .chars()
                .map(|c| if legal(c) { c } else { char::REPLACEMENT_CHARACTER })
                .collect();
            let _ = writer.write_event(Event::Text(BytesText::new(&text)));
        }
        Node::Number(n) => {
            let _ = writer.write_event(Event::Text(BytesText::new(&n.to_string())));
        }
        Node::Bool(b) => {
            let _ =
                writer.write_event(Event::Text(BytesText::new(if *b { "true" } else { "false" })));
        }
        Node::Record(fields) => {
            fields.iter().for_each(|(name, value)| element(writer, name, value))
        }
        Node::List { item, items } => items.iter().for_each(|value| element(writer, item, value)),
        Node::Nothing => {}
    }
    let _ = writer.write_event(Event::End(BytesEnd::new(name)));
}

/// A refusal in the spec's shape: `[{"code", "description"}]`, `<errors><error>…`.
pub fn refusal(format: Format, status: StatusCode, description: &str) -> Response {
    let error = Node::Record(vec![
        ("code", Node::Number(i64::from(status.as_u16()))),
        ("description", Node::text(description)),
    ]);
    format.answer(status, "errors", &Node::list("error", [error]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_answer_reads_the_same_in_both_formats() {
        let node = Node::list(
            "service",
            [Node::Record(vec![
                ("service_code", Node::text("repair")),
                ("metadata", Node::Bool(true)),
                ("group", Node::Nothing),
                ("keywords", Node::text("楼道灯坏了,<水管>")),
            ])],
        );
        let json = serde_json::to_string(&node).unwrap();
        assert_eq!(
            json,
            r#"[{"service_code":"repair","metadata":true,"group":null,"keywords":"楼道灯坏了,<水管>"}]"#
        );
        let xml = String::from_utf8(xml("services", &node)).unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><services><service><service_code>repair</service_code><metadata>true</metadata><group/><keywords>楼道灯坏了,&lt;水管&gt;</keywords></service></services>"
        );
    }

    /// A control character someone typed cannot make the XML unreadable.
    #[test]
    fn xml_never_carries_a_character_it_cannot_say() {
        let xml = xml("text", &Node::text("灯\u{b}坏了\u{1}\n"));
        assert_eq!(
            String::from_utf8(xml).unwrap(),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><text>灯\u{fffd}坏了\u{fffd}\n</text>"
        );
    }

    #[test]
    fn the_format_is_the_extension() {
        assert_eq!(Format::split("services.json"), Some(("services", Format::Json)));
        assert_eq!(Format::split("12.xml"), Some(("12", Format::Xml)));
        assert_eq!(Format::split("services.csv"), None);
        assert_eq!(Format::split("services"), None);
        assert_eq!(Format::of_path("/open311/v2/requests/7.xml"), Format::Xml);
        assert_eq!(Format::of_path("/open311/v2/requests"), Format::Json);
    }
}
