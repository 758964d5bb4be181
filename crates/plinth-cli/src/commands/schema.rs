//! `plinth schema register|get|list|check|delete|validate|config`: the schema registry over gRPC.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use plinth_proto::ids::{SchemaId, Subject};
use plinth_proto::schemaregistry::v1 as pb;
use plinth_proto::schemaregistry::v1::schema_registry_service_client::SchemaRegistryServiceClient;
use serde_json::json;

use super::ConnectArgs;

/// `plinth schema ...`
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The schema command.
    #[command(subcommand)]
    pub command: SchemaCommand,
}

/// Schema registry commands.
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Register a JSON Schema under a subject (prints its global id and version).
    ///
    /// Example: plinth schema register orders-value --file orders.schema.json
    Register {
        /// The subject, e.g. `orders-value`.
        subject: String,
        /// The schema file (`-` for stdin).
        #[arg(long, short)]
        file: PathBuf,
        /// A reference the schema's `$ref` uses: NAME=SUBJECT:VERSION (repeatable).
        #[arg(long = "reference", short = 'r', value_parser = parse_reference)]
        references: Vec<pb::SchemaReference>,
    },
    /// Show a schema by subject and version, or by global id.
    ///
    /// Example: plinth schema get orders-value --version latest
    Get {
        /// The subject (omit with --id).
        #[arg(required_unless_present = "id")]
        subject: Option<String>,
        /// The version number or `latest`.
        #[arg(long, short, default_value = "latest")]
        version: String,
        /// A global schema id instead of a subject.
        #[arg(long, conflicts_with = "subject")]
        id: Option<u32>,
    },
    /// List subjects, or the versions of one subject.
    List {
        /// List this subject's versions instead of all subjects.
        subject: Option<String>,
        /// Only subjects starting with this prefix.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Include soft-deleted subjects or versions.
        #[arg(long)]
        deleted: bool,
    },
    /// Check whether a schema may be registered under a subject (exit code 1 if incompatible).
    ///
    /// Example: plinth schema check orders-value --file orders.v2.schema.json
    Check {
        /// The subject.
        subject: String,
        /// The candidate schema file (`-` for stdin).
        #[arg(long, short)]
        file: PathBuf,
        /// Check against this version only (default: the versions the subject's level names).
        #[arg(long, short)]
        version: Option<String>,
        /// A reference the schema's `$ref` uses: NAME=SUBJECT:VERSION (repeatable).
        #[arg(long = "reference", short = 'r', value_parser = parse_reference)]
        references: Vec<pb::SchemaReference>,
    },
    /// Delete a subject or one version (soft; --permanent after a soft delete).
    Delete {
        /// The subject.
        subject: String,
        /// Only this version (number or `latest`).
        #[arg(long, short)]
        version: Option<String>,
        /// Delete for good (the subject or version must be soft-deleted first).
        #[arg(long)]
        permanent: bool,
    },
    /// Validate JSON documents (one JSON value per line, or one document) against a subject's schema.
    Validate {
        /// The subject.
        subject: String,
        /// The documents file (`-` for stdin): JSON lines, or a single JSON document.
        #[arg(long, short)]
        file: PathBuf,
        /// The version number or `latest`.
        #[arg(long, short, default_value = "latest")]
        version: String,
    },
    /// Show or set the compatibility level, global or for a subject.
    Config {
        /// The subject (omit for the global level).
        subject: Option<String>,
        /// Set this level: NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE.
        #[arg(long)]
        set: Option<String>,
    },
}

fn parse_reference(text: &str) -> Result<pb::SchemaReference, String> {
    let usage =
        || format!("`{text}` is not NAME=SUBJECT:VERSION, e.g. address.json=address-value:1");
    let (name, target) = text.split_once('=').ok_or_else(usage)?;
    let (subject, version) = target.rsplit_once(':').ok_or_else(usage)?;
    let version = version.parse::<i32>().map_err(|_| usage())?;
    Ok(pb::SchemaReference {
        name: name.to_owned(),
        subject: Some(Subject::new(subject)),
        version,
    })
}

fn parse_version(text: &str) -> anyhow::Result<i32> {
    if text.eq_ignore_ascii_case("latest") {
        return Ok(-1);
    }
    match text.parse::<i32>() {
        Ok(version) if version >= 1 => Ok(version),
        _ => bail!("`{text}` is not a version; use a number from 1 or `latest`"),
    }
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn schema_message(text: String, references: Vec<pb::SchemaReference>) -> pb::Schema {
    pb::Schema {
        schema: text,
        schema_type: pb::SchemaType::Json.into(),
        references,
    }
}

type Client = SchemaRegistryServiceClient<plinth_runtime::client::AuthChannel>;

async fn connect(args: &ConnectArgs) -> anyhow::Result<Client> {
    let channel = super::channel(&args.registry, args).await?;
    Ok(SchemaRegistryServiceClient::new(channel))
}

/// Runs a schema command.
pub async fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let output = args.connect.output;
    let mut client = connect(&args.connect).await?;
    match args.command {
        SchemaCommand::Register {
            subject,
            file,
            references,
        } => {
            let schema = schema_message(read_input(&file)?, references);
            let request = pb::RegisterSchemaRequest {
                subject: Some(Subject::new(subject)),
                schema: Some(schema),
                ..Default::default()
            };
            let registered = super::call(client.register_schema(request).await)?
                .registered
                .unwrap_or_default();
            let id = registered.id.unwrap_or_default().value;
            let subject = registered.subject.unwrap_or_default();
            output.print(
                &json!({"subject": subject.as_str(), "version": registered.version, "id": id}),
                || {
                    format!(
                        "registered {subject} version {} (schema id {id})",
                        registered.version
                    )
                },
            );
        }
        SchemaCommand::Get {
            subject,
            version,
            id,
        } => {
            let (schema, header) = match (id, subject) {
                (Some(id), _) => {
                    let request = pb::GetSchemaRequest {
                        id: Some(SchemaId::new(id)),
                    };
                    let schema = super::call(client.get_schema(request).await)?
                        .schema
                        .unwrap_or_default();
                    (schema, json!({"id": id}))
                }
                (None, Some(subject)) => {
                    let request = pb::GetSubjectVersionRequest {
                        subject: Some(Subject::new(subject)),
                        version: parse_version(&version)?,
                        deleted: false,
                    };
                    let found = super::call(client.get_subject_version(request).await)?
                        .version
                        .unwrap_or_default();
                    let header = json!({
                        "subject": found.subject.unwrap_or_default().as_str(),
                        "version": found.version,
                        "id": found.id.unwrap_or_default().value,
                    });
                    (found.schema.unwrap_or_default(), header)
                }
                (None, None) => bail!("give a subject or --id"),
            };
            let parsed: serde_json::Value =
                serde_json::from_str(&schema.schema).unwrap_or(serde_json::Value::Null);
            let mut body = header.clone();
            body["schema"] = parsed.clone();
            output.print(&body, || {
                format!(
                    "{header}\n{}",
                    serde_json::to_string_pretty(&parsed).unwrap_or(schema.schema.clone())
                )
            });
        }
        SchemaCommand::List {
            subject: Some(subject),
            deleted,
            ..
        } => {
            let request = pb::ListVersionsRequest {
                subject: Some(Subject::new(subject)),
                deleted,
                deleted_only: false,
            };
            let versions = super::call(client.list_versions(request).await)?.versions;
            output.print(&json!(versions), || {
                versions
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        SchemaCommand::List {
            subject: None,
            prefix,
            deleted,
        } => {
            let request = pb::ListSubjectsRequest {
                subject_prefix: prefix,
                deleted,
                deleted_only: false,
            };
            let subjects: Vec<String> = super::call(client.list_subjects(request).await)?
                .subjects
                .into_iter()
                .map(|s| s.value)
                .collect();
            output.print(&json!(subjects), || subjects.join("\n"));
        }
        SchemaCommand::Check {
            subject,
            file,
            version,
            references,
        } => {
            let request = pb::CheckCompatibilityRequest {
                subject: Some(Subject::new(subject.clone())),
                schema: Some(schema_message(read_input(&file)?, references)),
                version: version.as_deref().map(parse_version).transpose()?,
                verbose: true,
            };
            let answer = super::call(client.check_compatibility(request).await)?;
            output.print(
                &json!({"is_compatible": answer.is_compatible, "messages": answer.messages}),
                || {
                    if answer.is_compatible {
                        format!("compatible with {subject}")
                    } else {
                        format!(
                            "INCOMPATIBLE with {subject}:\n  {}",
                            answer.messages.join("\n  ")
                        )
                    }
                },
            );
            if !answer.is_compatible {
                return Ok(ExitCode::from(1));
            }
        }
        SchemaCommand::Delete {
            subject,
            version: None,
            permanent,
        } => {
            let request = pb::DeleteSubjectRequest {
                subject: Some(Subject::new(subject.clone())),
                permanent,
            };
            let versions = super::call(client.delete_subject(request).await)?.versions;
            let kind = if permanent {
                "permanently deleted"
            } else {
                "soft-deleted"
            };
            output.print(&json!(versions), || {
                format!("{kind} {subject} versions {versions:?}")
            });
        }
        SchemaCommand::Delete {
            subject,
            version: Some(version),
            permanent,
        } => {
            let request = pb::DeleteSubjectVersionRequest {
                subject: Some(Subject::new(subject.clone())),
                version: parse_version(&version)?,
                permanent,
            };
            let version = super::call(client.delete_subject_version(request).await)?.version;
            let kind = if permanent {
                "permanently deleted"
            } else {
                "soft-deleted"
            };
            output.print(&json!(version), || {
                format!("{kind} {subject} version {version}")
            });
        }
        SchemaCommand::Validate {
            subject,
            file,
            version,
        } => {
            let text = read_input(&file)?;
            let documents: Vec<String> = if serde_json::from_str::<serde_json::Value>(&text).is_ok()
            {
                vec![text]
            } else {
                text.lines()
                    .filter(|line| !line.trim().is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            let request = pb::ValidatePayloadsRequest {
                target: Some(pb::validate_payloads_request::Target::SubjectVersion(
                    pb::SubjectVersionRef {
                        subject: Some(Subject::new(subject)),
                        version: parse_version(&version)?,
                    },
                )),
                documents,
            };
            let answer = super::call(client.validate_payloads(request).await)?;
            let invalid = answer.results.iter().filter(|result| !result.valid).count();
            let results: Vec<_> = answer
                .results
                .iter()
                .map(|result| {
                    json!({"index": result.index, "valid": result.valid, "errors": result.errors.iter().map(|err| json!({"instance_path": err.instance_path, "message": err.message})).collect::<Vec<_>>()})
                })
                .collect();
            output.print(
                &json!({"id": answer.id.unwrap_or_default().value, "results": results}),
                || {
                    let mut lines = vec![format!(
                        "{} valid, {invalid} invalid",
                        answer.results.len() - invalid
                    )];
                    for result in answer.results.iter().filter(|result| !result.valid) {
                        for err in &result.errors {
                            lines.push(format!(
                                "  document {}: at `{}`: {}",
                                result.index, err.instance_path, err.message
                            ));
                        }
                    }
                    lines.join("\n")
                },
            );
            if invalid > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        SchemaCommand::Config { subject, set } => {
            let subject = subject.map(Subject::new);
            let config = match set {
                Some(level) => {
                    let level = pb::CompatibilityLevel::from_str_name(&format!(
                        "COMPATIBILITY_LEVEL_{}",
                        level.to_ascii_uppercase()
                    ))
                    .with_context(|| {
                        format!("`{level}` is not a level; use NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE")
                    })?;
                    let request = pb::SetConfigRequest {
                        subject,
                        config: Some(pb::Config { compatibility_level: level.into(), compatibility_policy: 0 }),
                    };
                    super::call(client.set_config(request).await)?.config
                }
                None => {
                    let request = pb::GetConfigRequest { subject, default_to_global: true };
                    super::call(client.get_config(request).await)?.config
                }
            }
            .unwrap_or_default();
            let level = config
                .compatibility_level()
                .as_str_name()
                .trim_start_matches("COMPATIBILITY_LEVEL_")
                .to_owned();
            output.print(&json!({"compatibilityLevel": level}), || level.clone());
        }
    }
    Ok(ExitCode::SUCCESS)
}
