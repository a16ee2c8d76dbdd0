//! Preference records from Parquet, in the layout of a Hugging Face dataset saved with
//! `Dataset.to_parquet`: columns `prompt` (optional), `chosen`, `rejected`, each of type `string`
//! or `list<struct<role: string, content: string>>` (Arrow's large and view layouts are stored as
//! the same Parquet types and read alike). Only these columns are read; others are ignored. Rows
//! are numbered from 0, as `dataset[N]`.
//!
//! Read with the `parquet` crate's row API, without its Arrow layer: preference files are small
//! next to training, and the Arrow crates (arrow-select, -array, -cmp, -ipc, ...) were among the
//! slowest of a cold build (`cargo build --timings`, docs/performance.md).

use std::path::Path;

use parquet::basic::{ConvertedType, LogicalType, Repetition, Type as Physical};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field as Cell, List};
use parquet::schema::types::{Type, TypePtr};

use super::record::{CHOSEN, EXPECTED, Field, PROMPT, REJECTED, Record};
use crate::tokenize::Message;
use crate::{Error, Result};

const COLUMN_TYPES: &str = "`string` or `list<struct<role: string, content: string>>`";

/// Reads every record of a Parquet file. The Parquet decoder panics on some corrupt files; that
/// becomes an error naming the file (see [`crate::decoder_guard`]).
pub fn read_parquet(path: &Path) -> Result<Vec<Record>> {
    crate::decoder_guard::guard(|| read_unguarded(path)).unwrap_or_else(|failure| {
        Err(Error::data(
            path.display().to_string(),
            format!("the Parquet file is corrupt (its decoder failed: {failure}); export it again"),
        ))
    })
}

fn read_unguarded(path: &Path) -> Result<Vec<Record>> {
    let name = path.display().to_string();
    let file =
        std::fs::File::open(path).map_err(|e| Error::io(format!("opening data file {name}"), e))?;
    let unreadable = |e: parquet::errors::ParquetError| {
        Error::data(&name, format!("cannot read as Parquet: {e}"))
    };
    let reader = SerializedFileReader::new(file).map_err(unreadable)?;
    let schema = reader.metadata().file_metadata().schema();
    let mut selected: Vec<TypePtr> = Vec::new();
    for (column, required) in [(PROMPT, false), (CHOSEN, true), (REJECTED, true)] {
        match schema.get_fields().iter().find(|f| f.name() == column) {
            Some(field) => {
                if !(is_string(field) || message_struct(field).is_some()) {
                    return Err(Error::data(
                        &name,
                        format!(
                            "column `{column}` has type `{}`; expected {COLUMN_TYPES}",
                            describe(field)
                        ),
                    ));
                }
                selected.push(field.clone());
            }
            None if required => {
                let found: Vec<&str> = schema.get_fields().iter().map(|f| f.name()).collect();
                return Err(Error::data(
                    &name,
                    format!(
                        "no `{column}` column (found: {}); preference data needs `{CHOSEN}` and `{REJECTED}` \
                         columns and, for plain text, `{PROMPT}`",
                        found.join(", ")
                    ),
                ));
            }
            None => {}
        }
    }
    let projection = Type::group_type_builder(schema.name())
        .with_fields(selected)
        .build()
        .map_err(unreadable)?;
    let rows = reader.get_row_iter(Some(projection)).map_err(unreadable)?;
    let mut records = Vec::new();
    for row in rows {
        let row = row.map_err(unreadable)?;
        let location = format!("{name}:row {}", records.len());
        let cell = |column: &str| -> Result<Option<Field>> {
            let Some((_, value)) = row.get_column_iter().find(|(n, _)| n.as_str() == column) else {
                return Ok(None);
            };
            let field = read_cell(value)
                .map_err(|e| Error::data(&location, format!("column `{column}`: {e}")))?;
            let field = field.ok_or_else(|| {
                Error::data(
                    &location,
                    format!("field `{column}` is null; expected {EXPECTED}"),
                )
            })?;
            field.check_not_empty(&location, column)?;
            Ok(Some(field))
        };
        let prompt = cell(PROMPT)?;
        // Both columns exist (checked against the schema above).
        let missing = |c: &str| Error::data(&location, format!("no `{c}` column"));
        let chosen = cell(CHOSEN)?.ok_or_else(|| missing(CHOSEN))?;
        let rejected = cell(REJECTED)?.ok_or_else(|| missing(REJECTED))?;
        records.push(Record {
            location,
            prompt,
            chosen,
            rejected,
        });
    }
    if records.is_empty() {
        return Err(Error::data(name, "contains no rows"));
    }
    Ok(records)
}

/// A UTF-8 string column (`BYTE_ARRAY` annotated `STRING`/`UTF8`).
fn is_string(t: &Type) -> bool {
    let info = t.get_basic_info();
    t.is_primitive()
        && t.get_physical_type() == Physical::BYTE_ARRAY
        && (matches!(info.logical_type_ref(), Some(LogicalType::String))
            || info.converted_type() == ConvertedType::UTF8)
}

/// Whether `t` is annotated as a list.
fn is_list(t: &Type) -> bool {
    let info = t.get_basic_info();
    t.is_group()
        && (matches!(info.logical_type_ref(), Some(LogicalType::List))
            || info.converted_type() == ConvertedType::LIST)
}

/// The element type of a list group: the child of its repeated group in the standard three-level
/// layout, or the repeated group itself in the legacy two-level one.
fn list_element(t: &Type) -> Option<&Type> {
    if !t.is_group() {
        return None;
    }
    let [repeated] = t.get_fields() else {
        return None;
    };
    if repeated.get_basic_info().repetition() != Repetition::REPEATED {
        return None;
    }
    if !repeated.is_group() {
        return Some(repeated);
    }
    match repeated.get_fields() {
        [element] => Some(element),
        _ => Some(repeated),
    }
}

/// The message struct of a `list<struct<role: string, content: string, ...>>` column (extra struct
/// fields are allowed and ignored), or `None` for any other type.
fn message_struct(t: &Type) -> Option<&Type> {
    let element = list_element(t).filter(|_| is_list(t))?;
    let has = |key: &str| {
        element
            .get_fields()
            .iter()
            .any(|f| f.name() == key && is_string(f))
    };
    (element.is_group() && has("role") && has("content")).then_some(element)
}

/// A column type in the words of [`COLUMN_TYPES`]: `string`, `int64`, `list<…>`, `struct<…>`.
fn describe(t: &Type) -> String {
    if is_string(t) {
        return "string".into();
    }
    if t.is_primitive() {
        return match t.get_physical_type() {
            Physical::BYTE_ARRAY => "binary".into(),
            other => format!("{other}").to_lowercase(),
        };
    }
    if is_list(t)
        && let Some(element) = list_element(t)
    {
        return format!("list<{}>", describe(element));
    }
    let fields: Vec<String> = t
        .get_fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), describe(f)))
        .collect();
    format!("struct<{}>", fields.join(", "))
}

/// One cell: `Ok(None)` for null; `Err` describes a malformed message list.
fn read_cell(cell: &Cell) -> std::result::Result<Option<Field>, String> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Str(s) => Ok(Some(Field::Text(s.clone()))),
        Cell::ListInternal(list) => read_messages(list).map(Some),
        other => Err(format!(
            "unsupported value `{other}`; expected {COLUMN_TYPES}"
        )),
    }
}

fn read_messages(list: &List) -> std::result::Result<Field, String> {
    list.elements()
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let fields = match message {
                Cell::Group(row) => row,
                Cell::Null => return Err(format!("message [{i}] is null")),
                other => return Err(format!("message [{i}] is `{other}`, not a struct")),
            };
            let text = |key: &str| match fields.get_column_iter().find(|(n, _)| n.as_str() == key) {
                Some((_, Cell::Str(s))) => Ok(s.clone()),
                Some((_, Cell::Null)) => Err(format!("message [{i}] has a null `{key}`")),
                Some((_, other)) => Err(format!(
                    "message [{i}] has `{key}` = `{other}`, not a string"
                )),
                None => Err(format!("messages have no string field `{key}`")),
            };
            Ok(Message {
                role: text("role")?,
                content: text("content")?,
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Field::Messages)
}
