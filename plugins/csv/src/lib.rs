//! Weir's `csv` plugin: `parse` turns CSV text into rows (objects keyed by the header, or
//! arrays of cells) and `write` turns rows back into CSV text.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weir_sdk::{Error, Result, task};

// The component's exports. Only a wasm build is a component: unit tests build the crate
// for the host, where the exports' names cannot be linked.
#[cfg(target_family = "wasm")]
weir_sdk::export!();

/// Declares task arguments as transparent wrappers: each one's doc comment becomes the
/// description of its parameter in the task's schema (a parameter cannot carry one).
macro_rules! arguments {
    ($($(#[$meta:meta])* $name:ident($(#[$field:meta])* $ty:ty);)*) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
        #[serde(transparent)]
        #[schemars(inline)]
        pub struct $name($(#[$field])* pub $ty);

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                $name(value)
            }
        }
    )*};
}

arguments! {
    /// The CSV text.
    Text(String);
    /// The character between cells: one ASCII character, such as "," (the default), ";",
    /// "|" or a tab.
    Delimiter(#[schemars(length(equal = 1))] String);
    /// Whether the first line names the columns: rows are then objects keyed by those
    /// names; otherwise arrays of cells.
    Header(bool);
    /// Whether to write a header line first: the columns' names (for rows that are arrays,
    /// only when `columns` gives them).
    HeaderLine(bool);
    /// Whether cells that look like values become values: integers and floats (written
    /// as in JSON) become numbers, true/false (any case) booleans, and empty cells null.
    /// Otherwise every cell is a string.
    InferTypes(bool);
    /// The rows: an array of objects (one column per key) or an array of arrays of
    /// cells. A null or missing cell is written empty; an object or array cell as its
    /// JSON text.
    Rows(#[schemars(with = "Vec<RowSchema>")] Vec<Value>);
    /// For rows that are objects: the columns, in order (and the header line). Keys not
    /// listed are left out. Default: the keys of the first object in order, then any
    /// other keys in the order they appear. For rows that are arrays: the header line.
    Columns(Vec<String>);
}

/// A row: an object (one cell per key) or an array of cells.
#[derive(JsonSchema)]
#[schemars(inline, untagged)]
#[allow(dead_code)]
enum RowSchema {
    Object(Map<String, Value>),
    Array(Vec<Value>),
}

/// Parses CSV text into rows.
///
/// Returns an array of objects keyed by the header line (`header`, the default) or an
/// array of arrays of cells. Cells are strings unless `infer_types`. Rows of a different
/// length than the first are an error naming their line.
#[task]
fn parse(
    text: Text,
    #[default(String::from(","))] delimiter: Delimiter,
    #[default(true)] header: Header,
    #[default(false)] infer_types: InferTypes,
) -> Result<Vec<Value>> {
    let delimiter = delimiter_byte(&delimiter.0)?;
    parse_csv(&text.0, delimiter, header.0, infer_types.0)
}

/// Writes rows (objects or arrays) as CSV text.
///
/// A header line comes first unless `header` is false; cells are quoted when they need
/// it, and lines end with "\n".
#[task]
fn write(
    rows: Rows,
    #[default(String::from(","))] delimiter: Delimiter,
    columns: Option<Columns>,
    #[default(true)] header: HeaderLine,
) -> Result<String> {
    let delimiter = delimiter_byte(&delimiter.0)?;
    write_csv(
        &rows.0,
        delimiter,
        columns.as_ref().map(|c| c.0.as_slice()),
        header.0,
    )
}

/// An error in the arguments: the same call would fail again.
fn invalid(argument: &str, message: impl std::fmt::Display) -> Error {
    Error::msg(format!("{argument}: {message}"))
        .kind("invalid-argument")
        .retryable(false)
}

/// The delimiter as a byte: one ASCII character that cannot be confused with quoting or
/// line ends.
pub fn delimiter_byte(delimiter: &str) -> Result<u8> {
    let mut chars = delimiter.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() && !matches!(c, '"' | '\n' | '\r') => Ok(c as u8),
        (Some(c), None) if c.is_ascii() => Err(invalid(
            "delimiter",
            format!("{c:?} cannot separate cells (it quotes or ends lines)"),
        )),
        _ => Err(invalid(
            "delimiter",
            format!("{delimiter:?} is not one ASCII character"),
        )),
    }
}

/// Parses `text` (see the task `parse`).
pub fn parse_csv(text: &str, delimiter: u8, header: bool, infer_types: bool) -> Result<Vec<Value>> {
    // A byte order mark (as spreadsheets write) is not part of the first column's name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(false)
        .from_reader(text.as_bytes());
    let cell = |text: &str| {
        if infer_types {
            infer(text)
        } else {
            Value::String(text.to_owned())
        }
    };
    let mut records = reader.records();
    let mut rows = Vec::new();
    let mut names: Option<Vec<String>> = None;
    if header {
        match records.next() {
            None => return Ok(rows),
            Some(record) => {
                let record = record.map_err(csv_error)?;
                let names_found: Vec<String> = record.iter().map(str::to_owned).collect();
                check_unique(&names_found)?;
                names = Some(names_found);
            }
        }
    }
    for record in records {
        let record = record.map_err(csv_error)?;
        let row = match &names {
            Some(names) => Value::Object(
                names
                    .iter()
                    .zip(record.iter())
                    .map(|(name, text)| (name.clone(), cell(text)))
                    .collect(),
            ),
            None => Value::Array(record.iter().map(cell).collect()),
        };
        rows.push(row);
    }
    Ok(rows)
}

/// Header names key the row objects: each may appear once.
fn check_unique(names: &[String]) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        if let Some(first) = seen.insert(name, i) {
            return Err(Error::msg(format!(
                "text: the header line names column {} and column {} both {name:?}; rows \
                 are objects keyed by the header, so names must differ (or pass header: \
                 false)",
                first + 1,
                i + 1
            ))
            .kind("csv-syntax")
            .retryable(false));
        }
    }
    Ok(())
}

fn csv_error(error: csv::Error) -> Error {
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => {
            let line = pos
                .as_ref()
                .map_or_else(|| "a row".to_owned(), |p| format!("line {}", p.line()));
            format!(
                "text: {line} has {len} cells where the first line has {expected_len}; \
                 every row needs the same number of cells"
            )
        }
        _ => format!("text: {error}"),
    };
    Error::msg(message).kind("csv-syntax").retryable(false)
}

/// A cell's value when types are inferred: JSON numbers, true/false in any case, empty as
/// null; anything else (including integers too large to keep exactly) stays text.
pub fn infer(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    if text.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if text.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    let starts_like_a_number = text
        .bytes()
        .next()
        .is_some_and(|b| b == b'-' || b.is_ascii_digit());
    if starts_like_a_number && let Ok(number) = serde_json::from_str::<serde_json::Number>(text) {
        let integral = !text.contains(['.', 'e', 'E']);
        // An integer beyond 64 bits parses as a rounded float: keep its digits instead.
        if !integral || number.is_i64() || number.is_u64() {
            return Value::Number(number);
        }
    }
    Value::String(text.to_owned())
}

/// Writes `rows` as CSV (see the task `write`).
pub fn write_csv(
    rows: &[Value],
    delimiter: u8,
    columns: Option<&[String]>,
    header: bool,
) -> Result<String> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_writer(Vec::new());
    let objects = match rows.first() {
        None => false,
        Some(Value::Object(_)) => true,
        Some(Value::Array(_)) => false,
        Some(other) => return Err(not_a_row(0, other)),
    };
    for (i, row) in rows.iter().enumerate() {
        match (objects, row) {
            (true, Value::Object(_)) | (false, Value::Array(_)) => {}
            (_, Value::Object(_) | Value::Array(_)) => {
                let (this, first) = if objects {
                    ("an array", "an object")
                } else {
                    ("an object", "an array")
                };
                return Err(invalid(
                    "rows",
                    format!(
                        "rows[{i}] is {this} but rows[0] is {first}; rows are all objects or all arrays"
                    ),
                ));
            }
            (_, other) => return Err(not_a_row(i, other)),
        }
    }
    let write_error = |e: csv::Error| Error::msg(format!("writing the CSV failed: {e}"));
    if objects {
        let columns: Vec<String> = match columns {
            Some(columns) => {
                check_unique_columns(columns)?;
                columns.to_vec()
            }
            None => object_columns(rows),
        };
        if header {
            writer.write_record(&columns).map_err(write_error)?;
        }
        for row in rows {
            let Value::Object(object) = row else {
                unreachable!("checked above")
            };
            let cells = columns
                .iter()
                .map(|name| object.get(name).map(cell_text).unwrap_or_default());
            writer.write_record(cells).map_err(write_error)?;
        }
    } else {
        let width = columns
            .map(<[String]>::len)
            .or_else(|| rows.first().and_then(Value::as_array).map(Vec::len));
        if let (Some(columns), true) = (columns, header) {
            writer.write_record(columns).map_err(write_error)?;
        }
        for (i, row) in rows.iter().enumerate() {
            let Value::Array(cells) = row else {
                unreachable!("checked above")
            };
            if Some(cells.len()) != width {
                let expected = match columns {
                    Some(_) => "the columns name",
                    None => "rows[0] has",
                };
                return Err(invalid(
                    "rows",
                    format!(
                        "rows[{i}] has {} cells where {expected} {}; every row needs the \
                         same number of cells",
                        cells.len(),
                        width.unwrap_or_default()
                    ),
                ));
            }
            writer
                .write_record(cells.iter().map(cell_text))
                .map_err(write_error)?;
        }
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| Error::msg(format!("writing the CSV failed: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::msg(format!("the CSV is not UTF-8: {e}")))
}

fn not_a_row(i: usize, value: &Value) -> Error {
    let what = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    invalid(
        "rows",
        format!("rows[{i}] is {what}; each row is an object or an array of cells"),
    )
}

fn check_unique_columns(columns: &[String]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    match columns.iter().find(|c| !seen.insert(c.as_str())) {
        Some(twice) => Err(invalid("columns", format!("{twice:?} is listed twice"))),
        None => Ok(()),
    }
}

/// The keys of the first object in order, then the other keys as they appear.
fn object_columns(rows: &[Value]) -> Vec<String> {
    let mut columns = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for object in rows.iter().filter_map(Value::as_object) {
        for key in object.keys() {
            if seen.insert(key.as_str()) {
                columns.push(key.clone());
            }
        }
    }
    columns
}

/// A cell's text: strings as they are, null as empty, other values as JSON.
fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_text(text: &str) -> Vec<Value> {
        parse_csv(text, b',', true, false).unwrap()
    }

    #[test]
    fn header_rows_become_objects_in_column_order() {
        let rows = parse_text("name,age\nada,36\n\"Lovelace, A\",\"say \"\"hi\"\"\"\n");
        assert_eq!(
            rows,
            vec![
                json!({"name": "ada", "age": "36"}),
                json!({"name": "Lovelace, A", "age": "say \"hi\""}),
            ]
        );
        let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["name", "age"]);
    }

    #[test]
    fn without_a_header_rows_are_arrays_of_strings() {
        let rows = parse_csv("a;1\nb;2", b';', false, false).unwrap();
        assert_eq!(rows, vec![json!(["a", "1"]), json!(["b", "2"])]);
    }

    #[test]
    fn empty_text_and_header_only_give_no_rows() {
        assert!(parse_text("").is_empty());
        assert!(parse_text("a,b\n").is_empty());
        assert!(parse_csv("", b',', false, false).unwrap().is_empty());
    }

    #[test]
    fn a_byte_order_mark_and_empty_lines_are_skipped() {
        assert_eq!(
            parse_text("\u{feff}a,b\n\n1,2\n\n"),
            vec![json!({"a": "1", "b": "2"})]
        );
    }

    #[test]
    fn crlf_line_ends_and_a_missing_last_newline_are_read() {
        assert_eq!(
            parse_text("a,b\r\n1,2\r\n3,4"),
            vec![json!({"a": "1", "b": "2"}), json!({"a": "3", "b": "4"})]
        );
    }

    #[test]
    fn ragged_rows_name_their_line() {
        let error = parse_csv("a,b\n1,2\n3\n", b',', true, false).unwrap_err();
        assert_eq!(error.get_kind(), "csv-syntax");
        assert_eq!(error.get_retryable(), Some(false));
        assert!(error.message().contains("line 3 has 1 cells"), "{error:?}");
        assert!(error.message().contains("first line has 2"), "{error:?}");
        let error = parse_csv("1,2\n3,4,5\n", b',', false, false).unwrap_err();
        assert!(error.message().contains("line 2 has 3 cells"), "{error:?}");
    }

    #[test]
    fn a_quoted_newline_stays_in_its_cell_and_lines_still_count() {
        let error = parse_csv("a,b\n\"x\ny\",1\n2\n", b',', true, false).unwrap_err();
        assert!(error.message().contains("line 4"), "{error:?}");
        assert_eq!(
            parse_text("a,b\n\"x\ny\",1\n"),
            vec![json!({"a": "x\ny", "b": "1"})]
        );
    }

    #[test]
    fn duplicate_header_names_are_an_error() {
        let error = parse_csv("id,name,id\n1,a,2\n", b',', true, false).unwrap_err();
        assert!(
            error.message().contains("column 1 and column 3"),
            "{error:?}"
        );
        assert!(parse_csv("id,id\n1,2\n", b',', false, false).is_ok());
    }

    #[test]
    fn types_are_inferred_when_asked() {
        let rows = parse_csv(
            "i,f,b,n,s,zip,big,neg,exp\n42,1.5,TRUE,,x,02134,123456789012345678901,-3,2e3\n",
            b',',
            true,
            true,
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![json!({
                "i": 42, "f": 1.5, "b": true, "n": null, "s": "x", "zip": "02134",
                "big": "123456789012345678901", "neg": -3, "exp": 2000.0
            })]
        );
        for text in [
            "+1", ".5", "1.", "NaN", "inf", "0x10", " 1", "1_000", "1e999",
        ] {
            assert_eq!(infer(text), json!(text), "{text}");
        }
        assert_eq!(infer("false"), json!(false));
        assert_eq!(
            infer("18446744073709551615"),
            json!(18446744073709551615u64)
        );
        let arrays = parse_csv("1,,true\n", b',', false, true).unwrap();
        assert_eq!(arrays, vec![json!([1, null, true])]);
    }

    #[test]
    fn delimiters_are_one_ascii_character() {
        assert_eq!(delimiter_byte(",").unwrap(), b',');
        assert_eq!(delimiter_byte("\t").unwrap(), b'\t');
        for bad in ["", ";;", "é", "\"", "\n"] {
            let error = delimiter_byte(bad).unwrap_err();
            assert!(error.message().starts_with("delimiter: "), "{error:?}");
            assert_eq!(error.get_retryable(), Some(false));
        }
    }

    #[test]
    fn objects_are_written_with_the_keys_in_order_of_appearance() {
        let rows = vec![
            json!({"b": 1, "a": "x, y"}),
            json!({"a": "say \"hi\"", "c": true}),
            json!({"c": null, "b": {"k": [1]}}),
        ];
        let text = write_csv(&rows, b',', None, true).unwrap();
        assert_eq!(
            text,
            "b,a,c\n1,\"x, y\",\n,\"say \"\"hi\"\"\",true\n\"{\"\"k\"\":[1]}\",,\n"
        );
    }

    #[test]
    fn columns_choose_and_order_the_fields() {
        let rows = vec![json!({"a": 1, "b": 2, "c": 3})];
        assert_eq!(
            write_csv(
                &rows,
                b';',
                Some(&["c".into(), "a".into(), "z".into()]),
                true
            )
            .unwrap(),
            "c;a;z\n3;1;\n"
        );
        assert_eq!(write_csv(&rows, b',', None, false).unwrap(), "1,2,3\n");
        let error = write_csv(&rows, b',', Some(&["a".into(), "a".into()]), true).unwrap_err();
        assert!(error.message().starts_with("columns: "), "{error:?}");
    }

    #[test]
    fn arrays_are_written_with_columns_as_the_header() {
        let rows = vec![json!(["x", 1, null]), json!(["y", 2.5, [1, 2]])];
        assert_eq!(
            write_csv(&rows, b',', None, true).unwrap(),
            "x,1,\ny,2.5,\"[1,2]\"\n"
        );
        let columns = ["name".to_owned(), "n".to_owned(), "extra".to_owned()];
        assert_eq!(
            write_csv(&rows, b'\t', Some(&columns), true).unwrap(),
            "name\tn\textra\nx\t1\t\ny\t2.5\t[1,2]\n"
        );
        let error = write_csv(&rows, b',', Some(&columns[..2]), true).unwrap_err();
        assert!(
            error
                .message()
                .contains("rows[0] has 3 cells where the columns name 2"),
            "{error:?}"
        );
    }

    #[test]
    fn rows_are_all_objects_or_all_arrays() {
        let error = write_csv(&[json!({"a": 1}), json!([1])], b',', None, true).unwrap_err();
        assert!(error.message().contains("rows[1] is an array"), "{error:?}");
        let error = write_csv(&[json!([1]), json!([1, 2])], b',', None, true).unwrap_err();
        assert!(error.message().contains("rows[1] has 2 cells"), "{error:?}");
        let error = write_csv(&[json!([1]), json!("x")], b',', None, true).unwrap_err();
        assert!(error.message().contains("rows[1] is a string"), "{error:?}");
        assert_eq!(write_csv(&[], b',', None, true).unwrap(), "");
    }

    #[test]
    fn writing_and_parsing_round_trip() {
        let rows = vec![
            json!({"id": "1", "note": "line one\nline two", "quote": "\"", "empty": ""}),
            json!({"id": "2", "note": "a,b;c", "quote": "it's", "empty": ""}),
        ];
        for delimiter in [b',', b';', b'\t', b'|'] {
            let text = write_csv(&rows, delimiter, None, true).unwrap();
            assert_eq!(parse_csv(&text, delimiter, true, false).unwrap(), rows);
        }
        let typed = vec![json!({"n": 1, "x": 2.5, "ok": false, "none": null, "s": "text"})];
        let text = write_csv(&typed, b',', None, true).unwrap();
        assert_eq!(parse_csv(&text, b',', true, true).unwrap(), typed);
        let arrays = vec![json!(["a", "b"]), json!(["", "c d"])];
        let text = write_csv(&arrays, b',', None, true).unwrap();
        assert_eq!(parse_csv(&text, b',', false, false).unwrap(), arrays);
    }

    /// The task's parameters schema, as the component's manifest gives it to the host.
    fn schema(task: &str) -> Value {
        weir_sdk::__private::inventory::iter::<weir_sdk::__private::Registration>
            .into_iter()
            .find(|r| r.name == task)
            .map(|r| (r.parameters_schema)())
            .expect("the task is registered")
    }

    /// Checks the parameters in order, the required ones, and that each is described.
    fn check_parameters(task: &str, names: &[&str], required: &[&str]) -> Value {
        let schema = schema(task);
        let properties = schema["properties"].as_object().unwrap();
        assert_eq!(properties.keys().collect::<Vec<_>>(), names, "{task}");
        assert_eq!(schema["required"], json!(required), "{task}");
        for (name, property) in properties {
            assert!(
                property["description"].is_string(),
                "{task}: {name} has no description"
            );
        }
        schema
    }

    #[test]
    fn the_schema_describes_each_argument() {
        let schema = check_parameters(
            "parse",
            &["text", "delimiter", "header", "infer_types"],
            &["text"],
        );
        let p = &schema["properties"];
        assert_eq!(p["delimiter"]["default"], ",");
        assert_eq!(p["delimiter"]["maxLength"], 1);
        assert_eq!(p["header"]["default"], true);
        assert_eq!(p["infer_types"]["default"], false);
        let schema = check_parameters(
            "write",
            &["rows", "delimiter", "columns", "header"],
            &["rows"],
        );
        assert_eq!(
            schema["properties"]["rows"]["items"]["anyOf"][0]["type"],
            "object"
        );
    }
}
