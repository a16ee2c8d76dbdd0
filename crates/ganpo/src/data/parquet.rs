//! Preference records from Parquet, in the layout of a Hugging Face dataset saved with
//! `Dataset.to_parquet`: columns `prompt` (optional), `chosen`, `rejected`, each of type `string`
//! or `list<struct<role: string, content: string>>` (large and view variants accepted). Only
//! these columns are read; others are ignored. Rows are numbered from 0, as `dataset[N]`.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::{Array, GenericListArray, LargeStringArray, OffsetSizeTrait};
use arrow_array::{StringArray, StringViewArray, StructArray};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::record::{CHOSEN, EXPECTED, Field, PROMPT, REJECTED, Record};
use crate::tokenize::Message;
use crate::{Error, Result};

const COLUMN_TYPES: &str = "`string` or `list<struct<role: string, content: string>>`";

/// Reads every record of a Parquet file. The Arrow/Parquet decoders panic on some corrupt files;
/// that becomes an error naming the file (see [`crate::decoder_guard`]).
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
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(unreadable)?;
    let schema = builder.schema().clone();
    let mut roots = Vec::new();
    for (column, required) in [(PROMPT, false), (CHOSEN, true), (REJECTED, true)] {
        match schema.index_of(column) {
            Ok(index) => {
                check_type(schema.field(index).data_type(), &name, column)?;
                roots.push(index);
            }
            Err(_) if required => {
                let found: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(Error::data(
                    &name,
                    format!(
                        "no `{column}` column (found: {}); preference data needs `{CHOSEN}` and `{REJECTED}` \
                         columns and, for plain text, `{PROMPT}`",
                        found.join(", ")
                    ),
                ));
            }
            Err(_) => {}
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).build().map_err(unreadable)?;
    let mut records = Vec::new();
    for batch in reader {
        let batch =
            batch.map_err(|e| Error::data(&name, format!("cannot read as Parquet: {e}")))?;
        let columns = [PROMPT, CHOSEN, REJECTED].map(|c| batch.column_by_name(c).cloned());
        for row in 0..batch.num_rows() {
            let location = format!("{name}:row {}", records.len());
            let cell = |index: usize, column: &str| -> Result<Option<Field>> {
                let Some(array) = &columns[index] else {
                    return Ok(None);
                };
                let field = read_cell(array.as_ref(), row)
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
            let prompt = cell(0, PROMPT)?;
            // Both columns exist (checked against the schema above).
            let missing = |c: &str| Error::data(&location, format!("no `{c}` column"));
            let chosen = cell(1, CHOSEN)?.ok_or_else(|| missing(CHOSEN))?;
            let rejected = cell(2, REJECTED)?.ok_or_else(|| missing(REJECTED))?;
            records.push(Record {
                location,
                prompt,
                chosen,
                rejected,
            });
        }
    }
    if records.is_empty() {
        return Err(Error::data(name, "contains no rows"));
    }
    Ok(records)
}

fn is_string(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Accepts a string column or a list of `{role, content}` string structs (extra struct fields are
/// ignored); anything else is an error naming the column and its type.
fn check_type(data_type: &DataType, file: &str, column: &str) -> Result<()> {
    let ok = match data_type {
        t if is_string(t) => true,
        DataType::List(item) | DataType::LargeList(item) => match item.data_type() {
            DataType::Struct(fields) => ["role", "content"].iter().all(|key| {
                fields
                    .iter()
                    .any(|f| f.name() == key && is_string(f.data_type()))
            }),
            _ => false,
        },
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::data(
            file,
            format!("column `{column}` has type `{data_type}`; expected {COLUMN_TYPES}"),
        ))
    }
}

/// A string column of any of Arrow's three string layouts.
enum Strings<'a> {
    Small(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    fn new(array: &'a dyn Array) -> Option<Self> {
        if let Some(a) = array.as_string_opt::<i32>() {
            Some(Strings::Small(a))
        } else if let Some(a) = array.as_string_opt::<i64>() {
            Some(Strings::Large(a))
        } else {
            array.as_string_view_opt().map(Strings::View)
        }
    }

    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strings::Small(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strings::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strings::View(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }
}

/// One cell: `Ok(None)` for null; `Err` describes a malformed message list.
fn read_cell(array: &dyn Array, row: usize) -> std::result::Result<Option<Field>, String> {
    if array.is_null(row) {
        return Ok(None);
    }
    if let Some(strings) = Strings::new(array) {
        return Ok(strings.get(row).map(|s| Field::Text(s.to_owned())));
    }
    if let Some(list) = array.as_list_opt::<i32>() {
        return read_messages(list, row).map(Some);
    }
    if let Some(list) = array.as_list_opt::<i64>() {
        return read_messages(list, row).map(Some);
    }
    Err(format!(
        "unsupported type `{}`; expected {COLUMN_TYPES}",
        array.data_type()
    ))
}

fn read_messages<O: OffsetSizeTrait>(
    list: &GenericListArray<O>,
    row: usize,
) -> std::result::Result<Field, String> {
    let values = list.values();
    let messages: &StructArray = values
        .as_struct_opt()
        .ok_or_else(|| format!("list items have type `{}`", values.data_type()))?;
    let child = |key: &str| {
        messages
            .column_by_name(key)
            .and_then(|c| Strings::new(c.as_ref()))
            .ok_or_else(|| format!("messages have no string field `{key}`"))
    };
    let (roles, contents) = (child("role")?, child("content")?);
    let offsets = list.value_offsets();
    let (start, end) = (offsets[row].as_usize(), offsets[row + 1].as_usize());
    (start..end)
        .enumerate()
        .map(|(i, j)| {
            if messages.is_null(j) {
                return Err(format!("message [{i}] is null"));
            }
            let text = |strings: &Strings, key: &str| {
                strings
                    .get(j)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("message [{i}] has a null `{key}`"))
            };
            Ok(Message {
                role: text(&roles, "role")?,
                content: text(&contents, "content")?,
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Field::Messages)
}
