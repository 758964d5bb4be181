//! How a dataset's lake schema changes when its subject gets a new schema version, and how batches read
//! from older files are projected into the evolved schema.
//!
//! Rules, so that every file already in the lake still reads:
//!
//! - A field only in the new schema becomes a new nullable column (older files hold nulls for it),
//!   appended after the existing user columns; inside a struct it is appended to the struct's fields.
//! - A field only in the old schema stays, nullable (newer records hold nulls for it).
//! - A field in both keeps its position; it is nullable if either side is.
//! - Its type must be the same on both sides, apart from `Int64` widening to `Float64` (`integer` to
//!   `number`); structs and lists evolve field by field. Any other change is refused with the field's
//!   path: older files could not be read as the new type. A plain string column and a JSON text column
//!   are different types.
//! - The lake's system columns stay last.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, StructArray, new_null_array};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;

use crate::domain::lake_schema::{SYSTEM_COLUMNS, is_json_text};

/// Why a schema cannot evolve, or a batch cannot be projected.
#[derive(Debug, thiserror::Error)]
pub enum EvolutionError {
    /// A field changes to a type older files cannot be read as.
    #[error(
        "field `{path}` changes type from {old} to {new}, which the lake's older files cannot be read as; \
         add a field with a new name instead of changing this one"
    )]
    IncompatibleType {
        /// The field path, `.` between struct fields and `[]` for list items.
        path: String,
        /// The type in the lake today.
        old: String,
        /// The type the new schema asks for.
        new: String,
    },
    /// A batch cannot be projected into a schema: a non-null column is missing or a type differs.
    #[error(
        "a batch read from the lake does not fit the dataset's schema at `{path}`: {reason}; evolve the \
         dataset's schema with every schema its files were written with"
    )]
    Projection {
        /// The field path.
        path: String,
        /// What did not fit.
        reason: String,
    },
}

/// The schema that reads both the lake's files written with `old` and records of `new`.
pub fn evolve(old: &Schema, new: &Schema) -> Result<Schema, EvolutionError> {
    let is_user = |field: &&FieldRef| !SYSTEM_COLUMNS.contains(&field.name().as_str());
    let old_user: Fields = old.fields().iter().filter(is_user).cloned().collect();
    let new_user: Fields = new.fields().iter().filter(is_user).cloned().collect();
    let mut fields: Vec<FieldRef> = evolve_fields(&old_user, &new_user, "")?
        .iter()
        .cloned()
        .collect();
    // System columns last, in their fixed order, from whichever side has them.
    for name in SYSTEM_COLUMNS {
        if let Some(system) = new
            .fields()
            .find(name)
            .or_else(|| old.fields().find(name))
            .map(|(_, field)| field)
        {
            fields.push(Arc::clone(system));
        }
    }
    Ok(Schema::new_with_metadata(fields, new.metadata().clone()))
}

fn evolve_fields(old: &Fields, new: &Fields, parent_path: &str) -> Result<Fields, EvolutionError> {
    let mut evolved: Vec<FieldRef> = Vec::with_capacity(old.len().max(new.len()));
    for old_field in old {
        let evolved_field = match new.find(old_field.name()) {
            Some((_, new_field)) => {
                evolve_field(old_field, new_field, &join(parent_path, old_field.name()))?
            }
            None => old_field.as_ref().clone().with_nullable(true),
        };
        evolved.push(Arc::new(evolved_field));
    }
    for new_field in new {
        if old.find(new_field.name()).is_none() {
            evolved.push(Arc::new(new_field.as_ref().clone().with_nullable(true)));
        }
    }
    Ok(Fields::from(evolved))
}

fn evolve_field(old: &Field, new: &Field, path: &str) -> Result<Field, EvolutionError> {
    let incompatible = || EvolutionError::IncompatibleType {
        path: path.to_owned(),
        old: describe(old),
        new: describe(new),
    };
    if is_json_text(old) != is_json_text(new) {
        return Err(incompatible());
    }
    let data_type = match (old.data_type(), new.data_type()) {
        (DataType::Struct(old_children), DataType::Struct(new_children)) => {
            DataType::Struct(evolve_fields(old_children, new_children, path)?)
        }
        (DataType::List(old_item), DataType::List(new_item)) => DataType::List(Arc::new(
            evolve_field(old_item, new_item, &format!("{path}[]"))?,
        )),
        (DataType::Int64, DataType::Float64) => DataType::Float64,
        (old_type, new_type) if old_type == new_type => new_type.clone(),
        _ => return Err(incompatible()),
    };
    Ok(new
        .clone()
        .with_data_type(data_type)
        .with_nullable(old.is_nullable() || new.is_nullable()))
}

fn describe(field: &Field) -> String {
    if is_json_text(field) {
        "JSON text".to_owned()
    } else {
        field.data_type().to_string()
    }
}

fn join(parent_path: &str, name: &str) -> String {
    if parent_path.is_empty() {
        name.to_owned()
    } else {
        format!("{parent_path}.{name}")
    }
}

/// Projects a batch read from a lake file into `schema`, an evolution of the file's schema: columns
/// are matched by name, columns the file lacks are all null, and `Int64` columns widen to `Float64`.
pub fn project(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, EvolutionError> {
    let num_rows = batch.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => project_array(column, field, field.name()),
            None => null_column(field, num_rows, field.name()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|error| projection_error("", &error))
}

fn null_column(field: &Field, len: usize, path: &str) -> Result<ArrayRef, EvolutionError> {
    if !field.is_nullable() {
        return Err(EvolutionError::Projection {
            path: path.to_owned(),
            reason: "the column is missing and not nullable".to_owned(),
        });
    }
    Ok(new_null_array(field.data_type(), len))
}

fn project_array(array: &ArrayRef, target: &Field, path: &str) -> Result<ArrayRef, EvolutionError> {
    if array.data_type() == target.data_type() {
        return Ok(Arc::clone(array));
    }
    match (array.data_type(), target.data_type()) {
        (DataType::Struct(_), DataType::Struct(target_fields)) => {
            let source = array.as_struct();
            let children = target_fields
                .iter()
                .map(|child| {
                    let child_path = join(path, child.name());
                    match source.column_by_name(child.name()) {
                        Some(column) => project_array(column, child, &child_path),
                        None => null_column(child, source.len(), &child_path),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let projected =
                StructArray::try_new(target_fields.clone(), children, source.nulls().cloned())
                    .map_err(|error| projection_error(path, &error))?;
            Ok(Arc::new(projected))
        }
        (DataType::List(_), DataType::List(target_item)) => {
            let source = array.as_list::<i32>();
            let values = project_array(source.values(), target_item, &format!("{path}[]"))?;
            let projected = ListArray::try_new(
                Arc::clone(target_item),
                source.offsets().clone(),
                values,
                source.nulls().cloned(),
            )
            .map_err(|error| projection_error(path, &error))?;
            Ok(Arc::new(projected))
        }
        (DataType::Int64, DataType::Float64) => arrow::compute::cast(array, target.data_type())
            .map_err(|error| projection_error(path, &error)),
        (source_type, target_type) => Err(EvolutionError::Projection {
            path: path.to_owned(),
            reason: format!("the file holds {source_type}, the schema asks for {target_type}"),
        }),
    }
}

fn projection_error(path: &str, error: &ArrowError) -> EvolutionError {
    EvolutionError::Projection {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests;
