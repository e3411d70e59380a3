//! The code tables of the docs against the code: clients are written from
//! `docs/protocol.md` and `docs/api.md` alone, so every error code and close
//! code the server can send must be in their tables, with the same HTTP
//! status, retry flag, reason and reconnect advice, and nothing else; and
//! the `Error` schema of `docs/openapi.json` must list the same codes.

use std::collections::BTreeMap;

use fanfare_protocol::{CloseCode, ErrorCode};

const PROTOCOL_MD: &str = include_str!("../../../docs/protocol.md");
const API_MD: &str = include_str!("../../../docs/api.md");
const OPENAPI_JSON: &str = include_str!("../../../docs/openapi.json");

#[test]
fn the_protocol_error_table_lists_every_error_code_and_no_other() {
    let documented = code_table(PROTOCOL_MD, "## 7. Error codes", 3);
    let mut expected = error_rows(ErrorCode::ALL);
    expected.extend(error_rows([ErrorCode::Unknown]));
    assert_same_rows("docs/protocol.md §7", documented, expected);
}

#[test]
fn the_api_error_table_lists_every_error_code_and_no_other() {
    let documented = code_table(API_MD, "## 4. Errors", 3);
    assert_same_rows("docs/api.md §4", documented, error_rows(ErrorCode::ALL));
}

#[test]
fn the_openapi_error_schema_lists_every_error_code_and_no_other() {
    let openapi: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("docs/openapi.json is JSON");
    let listed =
        &openapi["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"];
    let documented = listed
        .as_array()
        .expect("the Error schema lists its codes in an enum")
        .iter()
        .map(|code| (code.as_str().expect("codes are strings").to_owned(), Vec::new()))
        .collect();
    let expected = ErrorCode::ALL.into_iter().map(|code| (code.as_str().to_owned(), Vec::new())).collect();
    assert_same_rows("docs/openapi.json (schema Error)", documented, expected);
}

#[test]
fn the_protocol_close_table_lists_every_close_code_the_server_chooses() {
    let documented = code_table(PROTOCOL_MD, "## 8. Close codes", 3);
    // 1000 only answers a client's own close; §8 explains it below the
    // table, with the other codes Fanfare does not choose.
    let chosen = CloseCode::ALL.into_iter().filter(|close| *close != CloseCode::Normal);
    let expected = chosen
        .map(|close| {
            let reconnect = if close.reconnect() { "yes" } else { "no" };
            (close.code().to_string(), vec![close.reason().to_owned(), reconnect.to_owned()])
        })
        .collect();
    assert_same_rows("docs/protocol.md §8", documented, expected);
}

/// Code → (HTTP status, retry), as the tables write them.
fn error_rows(codes: impl IntoIterator<Item = ErrorCode>) -> BTreeMap<String, Vec<String>> {
    codes
        .into_iter()
        .map(|code| {
            (code.as_str().to_owned(), vec![code.http_status().to_string(), code.retry().to_string()])
        })
        .collect()
}

/// The rows of the table headed `| Code |` in the section under `heading`:
/// the first `columns` cells of each, without backticks, keyed by the first.
/// A code listed twice fails here.
fn code_table(doc: &str, heading: &str, columns: usize) -> BTreeMap<String, Vec<String>> {
    let start = doc.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("no section {heading:?}"));
    let section = &doc[start + heading.len() + 2..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut lines = section.lines().skip_while(|line| !line.starts_with("| Code |"));
    assert!(lines.next().is_some(), "no table headed `| Code |` under {heading:?}");
    let mut rows = BTreeMap::new();
    for line in lines.skip(1).take_while(|line| line.starts_with('|')) {
        let cells: Vec<String> =
            line.split('|').skip(1).take(columns).map(|cell| cell.trim().replace('`', "")).collect();
        let code = cells[0].clone();
        assert!(rows.insert(code.clone(), cells[1..].to_vec()).is_none(), "{heading:?} lists `{code}` twice");
    }
    rows
}

fn assert_same_rows(
    doc: &str,
    documented: BTreeMap<String, Vec<String>>,
    expected: BTreeMap<String, Vec<String>>,
) {
    let mut problems = Vec::new();
    for (code, row) in &expected {
        match documented.get(code) {
            None if row.is_empty() => problems.push(format!("`{code}` is missing from {doc}")),
            None => problems.push(format!("`{code}` ({}) is missing from {doc}", row.join(", "))),
            Some(written) if written != row => problems.push(format!(
                "{doc} says `{code}` is ({}); the code says ({})",
                written.join(", "),
                row.join(", ")
            )),
            Some(_) => {}
        }
    }
    for code in documented.keys().filter(|code| !expected.contains_key(*code)) {
        problems.push(format!("{doc} lists `{code}`, which the code does not have"));
    }
    assert!(problems.is_empty(), "{doc} and crates/protocol/src/error.rs disagree:\n{}", problems.join("\n"));
}
