//! Payload validation: compiled JSON Schema validators and per-document errors.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::schema::{InvalidSchema, SchemaDraft};

mod email;
mod fast;
mod stream;
#[cfg(test)]
mod tests;

/// One validation error in one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    /// JSON pointer into the document.
    pub instance_path: String,
    /// JSON pointer into the schema, to the keyword that failed.
    pub schema_path: String,
    /// What is wrong.
    pub message: String,
}

/// Referenced schemas by the name (URI) the referencing schema uses in `$ref`.
pub type ResolvedReferences = HashMap<String, Arc<Value>>;

/// A schema compiled for validation, with its references resolved in memory. Never fetches anything.
#[derive(Debug)]
pub struct CompiledValidator {
    validator: jsonschema::Validator,
    /// The same schema compiled for JSON text (see [`CompiledValidator::is_valid_text`]); `None` when
    /// that compile failed, and text is then parsed into a `Value` instead.
    text_validator: Option<jsonschema::Validator<fast::TextJson>>,
    /// The one-pass check of JSON text (see [`CompiledValidator::is_valid_text`]); `None` when the
    /// schema uses a keyword it does not handle.
    stream_validator: Option<stream::StreamValidator>,
}

#[derive(Clone)]
struct InMemoryRetriever {
    references: ResolvedReferences,
}

impl jsonschema::Retrieve for InMemoryRetriever {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let full = uri.as_str();
        let relative = full.strip_prefix("json-schema:///").unwrap_or(full);
        self.references
            .get(full)
            .or_else(|| self.references.get(relative))
            .map(|value| value.as_ref().clone())
            .ok_or_else(|| {
                format!("`{relative}` is not a registered reference; add it to `references` (name, subject, version)")
                    .into()
            })
    }
}

/// The options every validator of a schema is built with, whatever representation it validates: the
/// draft, formats asserted, and the registry's own `email` check.
fn house_rules<'i, R, F: jsonschema::json::Json>(
    options: jsonschema::ValidationOptions<'i, R, F>,
    draft: SchemaDraft,
) -> jsonschema::ValidationOptions<'i, R, F> {
    options
        .with_draft(draft.to_jsonschema())
        .should_validate_formats(true)
        .with_format("email", email::is_email)
}

impl CompiledValidator {
    /// Compiles `schema` read as `draft`, resolving `$ref`s to other documents from `references` only.
    pub fn compile(
        schema: &Value,
        draft: SchemaDraft,
        references: ResolvedReferences,
    ) -> Result<Self, InvalidSchema> {
        let retriever = InMemoryRetriever { references };
        let validator = house_rules(jsonschema::options(), draft)
            .with_retriever(retriever.clone())
            .build(schema)
            .map_err(|err| InvalidSchema::new(err.instance_path().to_string(), err.to_string()))?;
        // Same options, so both validators accept exactly the same documents.
        let text_validator = house_rules(jsonschema::options_for::<fast::TextJson>(), draft)
            .with_retriever(retriever)
            .build(schema)
            .inspect_err(|err| {
                tracing::warn!(error = %err, "schema did not compile for text validation; falling back to parsing documents");
            })
            .ok();
        // `pattern` and `format` of one subschema, compiled with the same options again.
        let string_check = |keywords: &Value| {
            house_rules(jsonschema::options(), draft)
                .build(keywords)
                .ok()
        };
        let stream_validator =
            stream::StreamValidator::compile(schema, draft == SchemaDraft::Draft4, &string_check);
        Ok(Self {
            validator,
            text_validator,
            stream_validator,
        })
    }

    /// Validates one document and returns every error (empty when valid).
    pub fn validate(&self, document: &Value) -> Vec<PayloadError> {
        if self.validator.is_valid(document) {
            return Vec::new();
        }
        self.validator
            .iter_errors(document)
            .map(|err| PayloadError {
                instance_path: err.instance_path().to_string(),
                schema_path: err.schema_path().to_string(),
                message: err.to_string(),
            })
            .collect()
    }

    /// Whether a document is valid (no error list built).
    pub fn is_valid(&self, document: &Value) -> bool {
        self.validator.is_valid(document)
    }

    /// Whether a JSON text is valid, without building a `serde_json::Value`. Schemas of the common
    /// keywords are checked in one pass over the text, with no document built; when that pass cannot
    /// show the text valid (or the schema uses other keywords), the text is parsed once into flat
    /// arenas that borrow its strings and validated there. Agrees with [`CompiledValidator::validate`]
    /// on every document; use that for the error details.
    ///
    /// # Errors
    ///
    /// The `serde_json` error when `text` is not JSON (the same text `serde_json::from_str` rejects).
    pub fn is_valid_text(&self, text: &str) -> Result<bool, serde_json::Error> {
        if let Some(stream) = &self.stream_validator
            && stream.is_valid(text)
        {
            return Ok(true);
        }
        match &self.text_validator {
            Some(validator) => {
                let document = fast::Document::parse(text)?;
                Ok(validator.is_valid(document.root()))
            }
            None => Ok(self
                .validator
                .is_valid(&serde_json::from_str::<Value>(text)?)),
        }
    }
}
